-- Interval labels of sessions (docs/labels.md): what the person was doing
-- from one instant to another, in the phone's clock like the readings.

-- The labels an admin allows. A session's metadata.activity that matches a
-- name (case-insensitively) is its default label.
create table label_vocabulary (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,39}$'),
  description text,
  created_at timestamptz not null default now()
);
insert into label_vocabulary (name, description) values
  ('cycling', 'riding a bicycle'),
  ('walking', 'walking'),
  ('still', 'not moving: standing, sitting, the phone lying still'),
  ('in_vehicle', 'in a car, bus or train'),
  ('running', 'running');

-- Half-open intervals [start_at, end_at), to the microsecond. A session's
-- labels never overlap: the service checks that under the session's row lock
-- (btree_gist, which an exclusion constraint would need, is not everywhere).
-- end_at is null for an open label (sent over the socket without an end):
-- it runs until the next label closes it, or to the session's end.
-- A vocabulary name in use cannot be deleted (no action): labels are never
-- lost behind anyone's back.
create table session_labels (
  id bigint generated always as identity primary key,
  session_id bigint not null references sessions (id) on delete cascade,
  start_at timestamptz not null,
  end_at timestamptz,
  label text not null references label_vocabulary (name),
  note text,
  created_by bigint references users (id) on delete set null,
  created_at timestamptz not null default now(),
  check (end_at is null or end_at > start_at)
);
create index session_labels_session_start on session_labels (session_id, start_at);
-- For the vocabulary's in-use check, and for finding sessions by label.
create index session_labels_label on session_labels (label);
-- At most one open label per session.
create unique index session_labels_one_open on session_labels (session_id) where end_at is null;
