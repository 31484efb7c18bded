-- chainbreak schema, migration 2: accounts, API tokens and the audit trail.

CREATE TABLE users (
  key INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  unit TEXT NOT NULL,
  jurisdiction INTEGER NOT NULL REFERENCES areas(key),
  -- argon2id PHC string; never leaves this table
  password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user INTEGER NOT NULL REFERENCES users(key),
  -- SHA-256 of the token (tokens are 256 random bits, so a fast hash is enough)
  token_hash BLOB NOT NULL UNIQUE,
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user);

-- Append-only: the triggers refuse any change or deletion through SQL.
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  entity TEXT NOT NULL,
  record TEXT NOT NULL,
  via TEXT NOT NULL,
  reason TEXT
);
CREATE INDEX audit_record ON audit(entity, record);
CREATE INDEX audit_actor ON audit(actor, at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records cannot be changed'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records cannot be deleted'); END;
