-- The clock model and the completeness report.

-- When the server received each batch and the device time span it covers:
-- device time minus server time, batch by batch, is the clock offset of the
-- session, and its trend the drift. Null for batches written before this
-- migration.
alter table session_batches
  add column received_at timestamptz,
  add column first_reading_at timestamptz,
  add column last_reading_at timestamptz;

-- One report per ended session, computed once from its readings and ledger.
-- `complete` and `integrity` are columns so that sessions to look at can be
-- listed without reading the reports.
create table session_reports (
  session_id bigint primary key references sessions (id) on delete cascade,
  computed_at timestamptz not null default now(),
  complete boolean not null,
  summary jsonb not null,
  report jsonb not null
);
-- Set when a session ends, cleared when its report is stored: the reaper
-- computes the reports nobody else did (a crash between the end and the
-- report, or a session ended with no phone connected). Attempts are counted
-- so that a report that cannot be computed is not retried forever.
alter table sessions
  add column report_pending boolean not null default false,
  add column report_attempts smallint not null default 0;
update sessions set report_pending = true where destroyed_at is not null;
create index sessions_report_pending on sessions (destroyed_at) where report_pending;

create index session_reports_incomplete on session_reports (session_id) where not complete;
create index sessions_integrity_mismatch on sessions (created_at desc, id desc) where integrity = 'mismatch';
