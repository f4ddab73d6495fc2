-- Users, their access tokens, recording sessions, the batch ledger and the readings.

create table users (
  id bigint generated always as identity primary key,
  name text not null,
  email text not null,
  public_key text not null,
  role text not null check (role in ('ADMIN', 'BETATESTER')),
  created_at timestamptz not null default now()
);
create unique index users_email_key on users (lower(email));
create unique index users_public_key_key on users (public_key);

-- A token is "<id>.<secret>"; only sha256(secret) is stored, looked up by id
-- and compared in constant time.
create table access_tokens (
  id uuid primary key,
  user_id bigint not null references users (id) on delete cascade,
  secret_sha256 bytea not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index access_tokens_user_id on access_tokens (user_id);
create index access_tokens_expires_at on access_tokens (expires_at);

create table sessions (
  id bigint generated always as identity primary key,
  user_id bigint not null references users (id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  destroyed_at timestamptz,
  destroy_reason text check (destroy_reason in ('client', 'expired', 'admin')),
  total_sensor_readings_written bigint not null default 0,
  total_sensor_readings_sent bigint,
  integrity text check (integrity in ('ok', 'mismatch', 'unreported')),
  metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
  flagged_incorrect boolean not null default false,
  flag_reason text,
  flagged_at timestamptz,
  check ((destroyed_at is null) = (destroy_reason is null)),
  check ((destroyed_at is null) = (integrity is null))
);
-- At most one active session per user, whichever instance creates it.
create unique index sessions_one_active_per_user on sessions (user_id) where destroyed_at is null;
create index sessions_user_created_at on sessions (user_id, created_at desc, id desc);
create index sessions_active_expires_at on sessions (expires_at) where destroyed_at is null;
create index sessions_flagged on sessions (flagged_at) where flagged_incorrect;

-- One row per written batch: the proof that (session, batch_id) was written
-- exactly once, and the source of truth for which batch ids are missing.
create table session_batches (
  session_id bigint not null references sessions (id) on delete cascade,
  batch_id integer not null check (batch_id >= 0),
  reading_count integer not null check (reading_count > 0),
  written_at timestamptz not null default now(),
  primary key (session_id, batch_id)
);

-- No foreign key to sessions: a per-row check would cost ingest speed, and
-- deletions of sessions go through the service, which deletes readings too.
create table readings (
  session_id bigint not null,
  ts timestamptz not null,
  sensor smallint not null,
  x double precision not null,
  y double precision not null,
  z double precision not null
);

-- Hypertable first, then the one index, then compression: the order that was
-- verified on TimescaleDB 2.28, so the index exists on every chunk
-- before any chunk can be compressed.
do $$
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    -- No default time index: it halves COPY speed and (session_id, ts) serves every query.
    perform create_hypertable('readings', by_range('ts', interval '1 day'), create_default_indexes => false);
  end if;
end
$$;

create index readings_session_id_ts on readings (session_id, ts);

do $$
begin
  if exists (select 1 from pg_extension where extname = 'timescaledb') then
    alter table readings set (
      timescaledb.compress,
      timescaledb.compress_segmentby = 'session_id',
      timescaledb.compress_orderby = 'ts'
    );
    perform add_compression_policy('readings', interval '2 days');
  end if;
end
$$;
