drop index if exists sessions_user_app_session;
alter table sessions
  drop column if exists app_session_id,
  drop column if exists first_batch_id;
