-- One Postgres server, one database per service (SPEC §1).
CREATE DATABASE identity;
CREATE DATABASE catalog;
CREATE DATABASE orders;
CREATE DATABASE payment;
