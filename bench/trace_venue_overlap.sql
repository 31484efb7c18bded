-- bench/trace_venue_overlap.sql: chainbreak's plain venue rule (`chainbreak trace --rule
-- venue-overlap --depth 2`) in DuckDB SQL, the reference the trace benchmark compares against.
-- Read by bench/trace_duckdb.py, which runs the statements below in order, each under its
-- `-- name:` line, with named parameters ($visits, $w0...). The rule, exactly (bench/README.md,
-- "trace.sh"): index persons I, window [W0, W1), minimum overlap m seconds;
--   * an index person's visit a is clipped to a' = [max(a.t_in, W0), min(a.t_out, W1)),
--     and dropped when a'.t_out <= a'.t_in;
--   * another visit b at the same place is an exposure to a' when
--     min(a'.t_out, b.t_out) - max(a'.t_in, b.t_in) >= m (b is not clipped);
--   * close contacts C: persons not in I with an exposure to a clipped visit of I;
--     e_c = the earliest max(a'.t_in, b.t_in) over c's exposures;
--   * secondary contacts: persons in neither I nor C exposed in the same way to a visit of some
--     c in C clipped to [e_c, W1).
-- Visits without t_out have been given t_in + the profile's dwell for the place's kind at load.

-- ---------------------------------------------------------------- load (timed as load_seconds)

-- name: load_places
-- places.csv: id, kind (other columns ignored). Keys are internal (any consistent numbering).
CREATE TABLE place_kinds AS
SELECT id, kind
  FROM read_csv($places, header = true, all_varchar = true);

-- name: load_raw_visits
-- visits.csv as it is: columns found by name from the header, t_out empty -> NULL.
CREATE TEMP TABLE raw_visits AS
SELECT person_id, place_id, t_in, t_out
  FROM read_csv($visits, header = true,
                types = {'person_id': 'VARCHAR', 'place_id': 'VARCHAR',
                         't_in': 'BIGINT', 't_out': 'BIGINT'});

-- name: load_person_keys
-- Integer keys for persons and places, as chainbreak's store has: every id seen in the visits
-- (and every place of places.csv).
CREATE TABLE persons AS
SELECT row_number() OVER () AS key, id
  FROM (SELECT DISTINCT person_id AS id FROM raw_visits);

-- name: load_place_keys
CREATE TABLE places AS
SELECT row_number() OVER () AS key, ids.id, k.kind
  FROM (SELECT id FROM place_kinds UNION SELECT DISTINCT place_id FROM raw_visits) AS ids
  LEFT JOIN place_kinds AS k ON k.id = ids.id;

-- name: load_visits
-- The visits table the query reads, in the file's order (a feed's: by t_in). Open visits get
-- t_out := t_in + dwell(kind of the place); a place missing from places.csv, or of a kind the
-- profile does not list, takes the default dwell. dwell(kind, seconds) is filled by the
-- script from the profile's [open_visits] before this statement.
CREATE TABLE visits AS
SELECT p.key AS person, l.key AS place, v.t_in,
       coalesce(v.t_out, v.t_in + coalesce(d.seconds, $default_dwell_seconds)) AS t_out
  FROM raw_visits AS v
  JOIN persons AS p ON p.id = v.person_id
  JOIN places AS l ON l.id = v.place_id
  LEFT JOIN dwell AS d ON d.kind = l.kind;

-- name: drop_raw_visits
DROP TABLE raw_visits;

-- name: load_index
-- The index persons (ids from --persons-file, inserted by the script into index_ids). An id
-- with no visit has no key and plays no part.
CREATE TABLE idx AS
SELECT DISTINCT p.key AS person
  FROM index_ids AS i JOIN persons AS p ON p.id = i.id;

-- ---------------------------------------------------------------- query (timed, --runs times)

-- name: query
-- The predicates `b.t_in <= $w1 - $m AND b.t_out >= $w0 + $m` follow from the overlap
-- condition (every clipped interval lies inside [W0, W1), and m >= 0); they change no result
-- but let DuckDB skip row groups by their t_in / t_out statistics.
WITH
a AS (           -- the index persons' visits clipped to [W0, W1), empty ones dropped
    SELECT v.place, greatest(v.t_in, $w0) AS t_in, least(v.t_out, $w1) AS t_out
      FROM visits AS v
     WHERE v.person IN (SELECT person FROM idx)
       AND greatest(v.t_in, $w0) < least(v.t_out, $w1)
),
close AS (       -- tier 1, with e = the earliest start of an exposure
    SELECT b.person, min(greatest(a.t_in, b.t_in)) AS e
      FROM a
      JOIN visits AS b ON b.place = a.place
     WHERE b.t_in <= $w1 - $m AND b.t_out >= $w0 + $m
       AND least(a.t_out, b.t_out) - greatest(a.t_in, b.t_in) >= $m
       AND b.person NOT IN (SELECT person FROM idx)
     GROUP BY b.person
),
cv AS (          -- the close contacts' visits clipped to [e, W1), empty ones dropped
    SELECT v.place, greatest(v.t_in, c.e) AS t_in, least(v.t_out, $w1) AS t_out
      FROM visits AS v
      JOIN close AS c ON c.person = v.person
     WHERE greatest(v.t_in, c.e) < least(v.t_out, $w1)
),
secondary AS (   -- tier 2
    SELECT DISTINCT b.person
      FROM cv
      JOIN visits AS b ON b.place = cv.place
     WHERE b.t_in <= $w1 - $m AND b.t_out >= $w0 + $m
       AND least(cv.t_out, b.t_out) - greatest(cv.t_in, b.t_in) >= $m
       AND b.person NOT IN (SELECT person FROM idx)
       AND b.person NOT IN (SELECT person FROM close)
)
SELECT 1 AS tier, p.id FROM close JOIN persons AS p ON p.key = close.person
UNION ALL
SELECT 2 AS tier, p.id FROM secondary JOIN persons AS p ON p.key = secondary.person
ORDER BY tier, id;
