-- chainbreak schema, migration 6: risk zones (issue 8). Event-sourced like episodes:
-- `zone_events` is the history (the zone engine's actions as JSON), `zones` the state each
-- event left (the engine's zone as JSON, with the columns lists filter on).

CREATE TABLE zone_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  zone TEXT NOT NULL,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  -- JSON, as the zone engine wrote it
  action TEXT NOT NULL
);
CREATE INDEX zone_events_zone ON zone_events(zone, seq);

CREATE TABLE zones (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  target_kind TEXT NOT NULL CHECK (target_kind IN ('area', 'place')),
  target_id TEXT NOT NULL,
  -- where the zone lies, for scoped reads: the area itself, or the place's area
  area INTEGER REFERENCES areas(key),
  status TEXT NOT NULL,
  level TEXT NOT NULL,
  -- a local date (YYYY-MM-DD): the next day the zone's rules may change it
  next_review TEXT,
  updated_at INTEGER NOT NULL,
  events INTEGER NOT NULL,
  -- JSON, the zone as the engine left it
  state TEXT NOT NULL
);
CREATE INDEX zones_target ON zones(target_kind, target_id);
CREATE INDEX zones_status ON zones(status, id);
