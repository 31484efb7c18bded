-- chainbreak schema, migration 10: what makes scoped lists cheap at a million records.
--
-- The case list filtered by classification, in report or onset order, by index (it sorted every
-- case of the classification: 1.8 s a page at 1M).
CREATE INDEX cases_class_reported_id ON cases(classification, reported_at, id);
CREATE INDEX cases_class_onset_id ON cases(classification, COALESCE(onset, ''), id);

-- A version of the area tree and of where places lie: each connection keeps a scope's areas and
-- places in temporary tables (scope.rs) and refills them when this changes, instead of walking
-- the tree and gathering the places (16,000 for a district) in every scoped query.
INSERT OR IGNORE INTO meta(key, value) VALUES ('geo_version', '0');
CREATE TRIGGER areas_geo_insert AFTER INSERT ON areas
  BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'geo_version'; END;
CREATE TRIGGER areas_geo_update AFTER UPDATE OF parent ON areas
  BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'geo_version'; END;
CREATE TRIGGER areas_geo_delete AFTER DELETE ON areas
  BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'geo_version'; END;
CREATE TRIGGER places_geo_insert AFTER INSERT ON places
  BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'geo_version'; END;
CREATE TRIGGER places_geo_update AFTER UPDATE OF area ON places
  WHEN OLD.area IS NOT NEW.area
  BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'geo_version'; END;
CREATE TRIGGER places_geo_delete AFTER DELETE ON places
  BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'geo_version'; END;
