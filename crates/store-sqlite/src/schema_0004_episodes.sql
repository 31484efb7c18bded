-- chainbreak schema, migration 4: closed-loop management. Measure episodes are event-sourced:
-- `episode_events` is the record (the engine's actions as JSON), `episodes` the current state
-- each event left, for lists and deadlines. Quarantine facilities and their rooms.

CREATE TABLE episode_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  episode TEXT NOT NULL,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  -- JSON, as the closed-loop engine wrote it
  action TEXT NOT NULL
);
CREATE INDEX episode_events_episode ON episode_events(episode, seq);

CREATE TABLE episodes (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  person INTEGER NOT NULL REFERENCES persons(key),
  category TEXT NOT NULL,
  state TEXT NOT NULL,
  owner_unit TEXT NOT NULL,
  deadline INTEGER,
  facility TEXT,
  room TEXT,
  opened_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  events INTEGER NOT NULL
);
CREATE INDEX episodes_state ON episodes(state, id);
CREATE INDEX episodes_person ON episodes(person);
CREATE INDEX episodes_deadline ON episodes(deadline) WHERE deadline IS NOT NULL;

CREATE TABLE facilities (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  area INTEGER REFERENCES areas(key)
);

CREATE TABLE rooms (
  facility INTEGER NOT NULL REFERENCES facilities(key),
  id TEXT NOT NULL,
  capacity INTEGER NOT NULL CHECK (capacity > 0),
  state TEXT NOT NULL,
  PRIMARY KEY (facility, id)
) WITHOUT ROWID;
