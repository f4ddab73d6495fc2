-- One-time sign-in challenges for POST /auth/challenge and /auth/verify.
-- Kept in the database rather than in memory so that any instance can verify
-- a challenge another instance issued, and consume it exactly once.
-- A used challenge keeps its row (consumed_at set) until it is cleaned up, so
-- that a replay is refused with a reason rather than "unknown challenge".

create table auth_challenges (
  nonce text primary key,
  -- The canonical public key the challenge was issued for; it need not belong
  -- to a user, so that a challenge does not reveal whether a key is registered.
  public_key text not null,
  message text not null,
  issued_at timestamptz not null,
  expires_at timestamptz not null,
  consumed_at timestamptz,
  check (expires_at > issued_at)
);
create index auth_challenges_public_key_issued_at on auth_challenges (public_key, issued_at desc);
create index auth_challenges_expires_at on auth_challenges (expires_at);
