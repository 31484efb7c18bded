-- chainbreak schema, migration 3: contact proposals (DESIGN.md §4a: the engine proposes,
-- people decide) and the trace requests they were recorded from.

-- One row per index: 'case:<case key>', or 'person:<person key>' when traced by person.
CREATE TABLE trace_records (
  index_ref TEXT PRIMARY KEY,
  case_key INTEGER REFERENCES cases(key),
  index_person INTEGER NOT NULL REFERENCES persons(key),
  t_from INTEGER NOT NULL,
  -- JSON, as the application layer wrote it
  request TEXT NOT NULL,
  digest TEXT NOT NULL,
  seq INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL
);

CREATE TABLE proposals (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  index_ref TEXT NOT NULL,
  case_key INTEGER REFERENCES cases(key),
  index_person INTEGER NOT NULL REFERENCES persons(key),
  contact INTEGER NOT NULL REFERENCES persons(key),
  category TEXT NOT NULL,
  tier INTEGER NOT NULL,
  first_exposure INTEGER NOT NULL,
  last_exposure INTEGER NOT NULL,
  exposures INTEGER NOT NULL,
  -- a JSON array, as the application layer wrote it (new evidence fields need no new columns)
  evidence TEXT NOT NULL,
  evidence_digest TEXT NOT NULL,
  needs_confirmation INTEGER NOT NULL,
  in_result INTEGER NOT NULL,
  status TEXT NOT NULL,
  decided_by TEXT,
  decided_at INTEGER,
  decision_reason TEXT,
  changed_since_decision INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (index_ref, contact, category)
);
CREATE INDEX proposals_case ON proposals(case_key, id);
CREATE INDEX proposals_status ON proposals(status, id);
CREATE INDEX proposals_contact ON proposals(contact);
