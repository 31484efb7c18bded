-- chainbreak schema, migration 5: surveillance (issue 7). Alerts and their triage events, the
-- review queue of aberration alarms (one item per series and period), and the response clock
-- of cases (one row per case and clock item of the profile).

CREATE TABLE alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  -- what makes two alerts one
  key TEXT NOT NULL UNIQUE,
  summary TEXT NOT NULL,
  owner_unit TEXT,
  area INTEGER REFERENCES areas(key),
  place INTEGER REFERENCES places(key),
  person INTEGER REFERENCES persons(key),
  subject TEXT,
  -- JSON, as the application layer wrote it
  details TEXT NOT NULL,
  outcome TEXT,
  raised_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX alerts_state ON alerts(state, id);

CREATE TABLE alert_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  alert INTEGER NOT NULL REFERENCES alerts(id),
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  owner_unit TEXT,
  outcome TEXT,
  note TEXT
);
CREATE INDEX alert_events_alert ON alert_events(alert, seq);

CREATE TABLE review_items (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  series TEXT NOT NULL,
  area INTEGER REFERENCES areas(key),
  feed TEXT NOT NULL,
  category TEXT,
  frequency TEXT NOT NULL,
  period TEXT NOT NULL,
  method TEXT NOT NULL,
  observed REAL NOT NULL,
  expected REAL,
  upperbound REAL NOT NULL,
  score REAL NOT NULL,
  status TEXT NOT NULL,
  decided_by TEXT,
  decided_at INTEGER,
  reason TEXT,
  alert INTEGER REFERENCES alerts(id),
  created_at INTEGER NOT NULL,
  UNIQUE (series, period)
);
CREATE INDEX review_items_queue ON review_items(status, score DESC, id);

CREATE TABLE response_clock (
  case_id TEXT NOT NULL,
  item TEXT NOT NULL,
  start_event TEXT NOT NULL,
  stop_event TEXT NOT NULL,
  limit_hours INTEGER NOT NULL,
  started_at INTEGER,
  due_at INTEGER,
  stopped_at INTEGER,
  PRIMARY KEY (case_id, item)
) WITHOUT ROWID;
