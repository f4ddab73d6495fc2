-- Sign-in challenges are no longer evicted per key (anyone could evict
-- someone else's pending challenge, since public keys are public). Instead the
-- service bounds the number of pending challenges over all keys and counts
-- them at every issue: this partial index holds the unused rows, and the count
-- reads only its unexpired part.
create index auth_challenges_pending on auth_challenges (expires_at) where consumed_at is null;
