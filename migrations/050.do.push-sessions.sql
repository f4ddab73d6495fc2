-- Sessions recorded by a push client (Sensor Logger over HTTP push or MQTT)
-- are found by the app's own recording id, and its message ids are the batch
-- ids: the first one seen is where lost-batch counting starts, since the app
-- does not promise to start at 0.
alter table sessions
  add column app_session_id text,
  add column first_batch_id integer not null default 0 check (first_batch_id >= 0);
create index sessions_user_app_session on sessions (user_id, app_session_id, id desc) where app_session_id is not null;
