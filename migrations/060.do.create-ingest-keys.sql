-- Per-user ingest keys: the secret a push client (Sensor Logger's HTTP push
-- URL, an MQTT topic) carries instead of an access token. A key is
-- "mik_<id>_<secret>"; only sha256(secret) is stored, looked up by id and
-- compared in constant time. A key only records: the auth plugin never
-- accepts one as a Bearer token. Revoking a key deletes its row, so an
-- unknown and a revoked key are the same to the service.
create table ingest_keys (
  id bigint generated always as identity primary key,
  user_id bigint not null references users (id) on delete cascade,
  label text,
  secret_sha256 bytea not null,
  created_at timestamptz not null default now(),
  -- Marked at most once a minute per key, so that a push every second does not write a row every second.
  last_used_at timestamptz
);
create index ingest_keys_user_id on ingest_keys (user_id, id);
