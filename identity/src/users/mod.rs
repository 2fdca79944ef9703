//! Accounts: registration, the caller's own profile, and admin management of users.
pub mod domain;
pub mod dto;
pub mod repository;
pub mod routes;
pub mod service;
