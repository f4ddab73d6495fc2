alter table sessions drop column if exists batch_conflicts;
alter table session_batches drop column if exists digest;
