-- chainbreak schema, migration 9: what the overview, the public summary and the board read at a
-- million cases.
--
-- The onset order of the case list through an index: the list sorts by `COALESCE(onset, '')`
-- (a case without onset first, and comparable in a keyset cursor); an index on the column itself
-- does not serve that expression, and a million cases were sorted for every page.
DROP INDEX cases_onset_id;
CREATE INDEX cases_onset_key_id ON cases(COALESCE(onset, ''), id);

-- Counts by area (tally.rs): each case and episode is counted under the area of its person's
-- residence when it was written (`tally_area`), every ancestor of it, and area 0 (everything).
-- Filled by the store after this migration runs.
ALTER TABLE cases ADD COLUMN tally_area INTEGER;
ALTER TABLE episodes ADD COLUMN tally_area INTEGER;
CREATE TABLE tallies (
  area INTEGER NOT NULL,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (area, kind, key)
) WITHOUT ROWID;
