-- chainbreak schema, migration 1. Keys are dense integers; string ids are the external,
-- pseudonymous ids of the import files. Instants are Unix seconds (UTC); calendar dates are
-- ISO 8601 text in the deployment's zone.

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

-- The change feed: one entry per changed row (for visits and pings, per row-id range).
CREATE TABLE changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  entity TEXT NOT NULL,
  op TEXT NOT NULL,
  key_from INTEGER NOT NULL,
  key_to INTEGER NOT NULL
);

CREATE TABLE areas (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  level TEXT NOT NULL,
  parent INTEGER REFERENCES areas(key),
  geometry TEXT
);
CREATE INDEX areas_parent ON areas(parent);

CREATE TABLE units (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  parent INTEGER REFERENCES units(key),
  area INTEGER REFERENCES areas(key)
);

CREATE TABLE places (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT,
  kind TEXT NOT NULL,
  key_place INTEGER NOT NULL DEFAULT 0,
  lat REAL,
  lon REAL,
  area INTEGER REFERENCES areas(key)
);
CREATE INDEX places_area ON places(area);

CREATE TABLE persons (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  residence INTEGER REFERENCES places(key),
  birth_year INTEGER,
  sex TEXT,
  occupation TEXT,
  merged_into INTEGER REFERENCES persons(key)
);
CREATE INDEX persons_residence ON persons(residence);

-- Personal data, apart from the pseudonymous model.
CREATE TABLE person_identifiers (
  person INTEGER NOT NULL REFERENCES persons(key),
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (person, kind, value)
) WITHOUT ROWID;
CREATE INDEX person_identifiers_value ON person_identifiers(kind, value);

CREATE TABLE person_merges (
  id INTEGER PRIMARY KEY,
  survivor INTEGER NOT NULL REFERENCES persons(key),
  duplicate INTEGER NOT NULL REFERENCES persons(key),
  reason TEXT NOT NULL,
  actor TEXT NOT NULL,
  merged_at INTEGER NOT NULL,
  unmerged_at INTEGER
);
CREATE INDEX person_merges_survivor ON person_merges(survivor);
CREATE INDEX person_merges_duplicate ON person_merges(duplicate);

CREATE TABLE staff (
  place INTEGER NOT NULL REFERENCES places(key),
  person INTEGER NOT NULL REFERENCES persons(key),
  role TEXT,
  PRIMARY KEY (place, person)
) WITHOUT ROWID;
CREATE INDEX staff_person ON staff(person);

CREATE TABLE groups (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  name TEXT,
  place INTEGER REFERENCES places(key),
  t_start INTEGER,
  t_end INTEGER
);

CREATE TABLE memberships (
  grp INTEGER NOT NULL REFERENCES groups(key),
  person INTEGER NOT NULL REFERENCES persons(key),
  role TEXT,
  PRIMARY KEY (grp, person)
) WITHOUT ROWID;
CREATE INDEX memberships_person ON memberships(person);

-- Venue check-ins: append-only; id = arrival order, never reused (the change feed's unit).
CREATE TABLE visits (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  person INTEGER NOT NULL,
  place INTEGER NOT NULL,
  t_in INTEGER NOT NULL,
  t_out INTEGER,
  source INTEGER NOT NULL
);
CREATE INDEX visits_person ON visits(person, t_in);
CREATE INDEX visits_place ON visits(place, t_in);

CREATE TABLE trips (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  mode TEXT NOT NULL,
  number TEXT NOT NULL,
  departure INTEGER NOT NULL,
  arrival INTEGER,
  origin TEXT,
  destination TEXT,
  sealed INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE trip_passengers (
  trip INTEGER NOT NULL REFERENCES trips(key),
  person INTEGER NOT NULL REFERENCES persons(key),
  role TEXT NOT NULL,
  carriage INTEGER,
  seat_row INTEGER,
  seat TEXT,
  PRIMARY KEY (trip, person)
) WITHOUT ROWID;
CREATE INDEX trip_passengers_person ON trip_passengers(person);

CREATE TABLE pings (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  person INTEGER NOT NULL REFERENCES persons(key),
  t INTEGER NOT NULL,
  lat REAL NOT NULL,
  lon REAL NOT NULL,
  accuracy_m REAL
);
CREATE INDEX pings_person ON pings(person, t);
CREATE INDEX pings_t ON pings(t);

CREATE TABLE cases (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  person INTEGER NOT NULL REFERENCES persons(key),
  classification TEXT NOT NULL,
  onset TEXT,
  sampled_at INTEGER,
  reported_at INTEGER NOT NULL,
  imported INTEGER NOT NULL DEFAULT 0,
  detection TEXT,
  severity TEXT,
  outcome TEXT,
  vaccine_doses INTEGER,
  infector TEXT,
  cluster TEXT
);
CREATE INDEX cases_person ON cases(person);
CREATE INDEX cases_reported ON cases(reported_at);

CREATE TABLE case_classifications (
  case_key INTEGER NOT NULL REFERENCES cases(key),
  from_class TEXT,
  to_class TEXT NOT NULL,
  at INTEGER NOT NULL,
  seq INTEGER NOT NULL
);
CREATE INDEX case_classifications_case ON case_classifications(case_key);

CREATE TABLE lab_tests (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  subject_kind TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  person INTEGER REFERENCES persons(key),
  pool_id TEXT,
  method TEXT NOT NULL,
  result TEXT NOT NULL,
  ct REAL,
  sampled_at INTEGER NOT NULL,
  reported_at INTEGER,
  lab INTEGER REFERENCES places(key),
  variant TEXT
);
CREATE INDEX lab_tests_person ON lab_tests(person);
CREATE INDEX lab_tests_pool ON lab_tests(pool_id) WHERE pool_id IS NOT NULL;

CREATE TABLE arrivals (
  key INTEGER PRIMARY KEY,
  person INTEGER NOT NULL REFERENCES persons(key),
  origin TEXT NOT NULL,
  origin_risk TEXT NOT NULL,
  left_origin_at INTEGER NOT NULL,
  arrived_at INTEGER NOT NULL,
  trip INTEGER REFERENCES trips(key),
  destination INTEGER REFERENCES places(key),
  UNIQUE (person, arrived_at)
);

CREATE TABLE goods_batches (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  product TEXT NOT NULL,
  origin_country TEXT NOT NULL,
  plant TEXT,
  port TEXT,
  entry_date TEXT,
  inspection_cert TEXT,
  test_cert TEXT,
  disinfection_cert TEXT,
  trace_code TEXT,
  parent INTEGER REFERENCES goods_batches(key)
);

CREATE TABLE goods_hops (
  key INTEGER PRIMARY KEY,
  batch INTEGER NOT NULL REFERENCES goods_batches(key),
  kind TEXT NOT NULL,
  from_place INTEGER REFERENCES places(key),
  to_place INTEGER REFERENCES places(key),
  to_batch INTEGER REFERENCES goods_batches(key),
  date TEXT NOT NULL,
  quantity REAL
);
CREATE INDEX goods_hops_batch ON goods_hops(batch);

CREATE TABLE sentinel (
  place INTEGER NOT NULL REFERENCES places(key),
  feed TEXT NOT NULL,
  date TEXT NOT NULL,
  category TEXT NOT NULL DEFAULT '',
  area INTEGER REFERENCES areas(key),
  count INTEGER NOT NULL,
  positives INTEGER,
  PRIMARY KEY (place, feed, date, category)
) WITHOUT ROWID;
