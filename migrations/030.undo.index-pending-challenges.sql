drop index if exists auth_challenges_pending;
