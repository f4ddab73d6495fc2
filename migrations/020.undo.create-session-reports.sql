drop index if exists sessions_integrity_mismatch;
drop table if exists session_reports;
drop index if exists sessions_report_pending;
alter table sessions drop column if exists report_pending, drop column if exists report_attempts;
alter table session_batches
  drop column if exists received_at,
  drop column if exists first_reading_at,
  drop column if exists last_reading_at;
