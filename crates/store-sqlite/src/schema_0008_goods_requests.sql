-- chainbreak schema, migration 8: the response to positive goods and environment samples
-- (issue 10), the supplier suspension list, and service requests in controlled zones.

-- One response per positive sample ('lab_test:<id>' or 'sentinel:<place>:<feed>:<date>:<category>'):
-- what the goods trace found then (recall list, places to seal, workers), as JSON.
CREATE TABLE goods_responses (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  subject_kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  positive_at INTEGER NOT NULL,
  -- the sampled place or the batch's first place, for scoped reads
  place INTEGER REFERENCES places(key),
  -- JSON, as the application layer wrote it
  response TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

-- Each positive sample counted at a foreign plant (once per plant and sample).
CREATE TABLE plant_positives (
  plant TEXT NOT NULL,
  sample TEXT NOT NULL,
  day TEXT NOT NULL,
  PRIMARY KEY (plant, sample)
);

-- The supplier suspension list: the nth positive at a plant suspends its imports from `from_day`
-- until (not including) `until_day`.
CREATE TABLE plant_suspensions (
  key INTEGER PRIMARY KEY,
  plant TEXT NOT NULL,
  nth INTEGER NOT NULL,
  from_day TEXT NOT NULL,
  until_day TEXT NOT NULL,
  sample TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (plant, nth)
);

-- Service requests, event-sourced like episodes: `service_request_events` is the record (the
-- engine's events as JSON), `service_requests` the state the last event left.
CREATE TABLE service_request_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  request TEXT NOT NULL,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL
);
CREATE INDEX service_request_events_request ON service_request_events(request, seq);

CREATE TABLE service_requests (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  person INTEGER NOT NULL REFERENCES persons(key),
  kind TEXT NOT NULL,
  priority TEXT NOT NULL,
  state TEXT NOT NULL,
  owner_unit TEXT NOT NULL,
  unit TEXT NOT NULL,
  due INTEGER NOT NULL,
  escalation INTEGER NOT NULL,
  outcome TEXT,
  filed_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  events INTEGER NOT NULL,
  -- JSON, the request as the engine left it
  request TEXT NOT NULL
);
CREATE INDEX service_requests_state ON service_requests(state, due);
CREATE INDEX service_requests_person ON service_requests(person);
