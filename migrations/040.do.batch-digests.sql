-- A batch's content is remembered as a digest of its readings (the first 16
-- bytes of a sha256 over its binary COPY rows), so that a resent batch id
-- with other readings is told apart from a replay: it is refused as a
-- conflict, the first content stays. Batches written before this migration
-- have none and are never a conflict. Conflicts are counted per session for
-- the completeness report.
alter table session_batches add column digest bytea;
alter table sessions add column batch_conflicts integer not null default 0;
