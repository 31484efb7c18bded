-- chainbreak schema, migration 7: the indexes behind the case lists' sort orders (keyset
-- pages by report time, onset or classification, each with the id to break ties).

CREATE INDEX cases_reported_id ON cases(reported_at, id);
CREATE INDEX cases_onset_id ON cases(onset, id);
CREATE INDEX cases_class_id ON cases(classification, id);
