drop table if exists readings;
drop table if exists session_batches;
drop table if exists sessions;
drop table if exists access_tokens;
drop table if exists users;
