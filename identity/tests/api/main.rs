//! Identity's API tests: one binary, each test with its own database, Redis prefix and mail folder.

mod admin;
mod helpers;
mod platform;
mod profile;
mod register;
mod sessions;
mod tokens;
