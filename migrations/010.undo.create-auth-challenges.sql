drop table if exists auth_challenges;
