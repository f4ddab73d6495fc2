drop table if exists session_labels;
drop table if exists label_vocabulary;
