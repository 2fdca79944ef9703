//! Sessions and credentials: login, refresh with rotation, logout, password change and reset, email verification, and the public key set.
pub mod dto;
pub mod repository;
pub mod routes;
pub mod service;
