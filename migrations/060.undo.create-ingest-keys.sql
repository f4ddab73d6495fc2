drop table if exists ingest_keys;
