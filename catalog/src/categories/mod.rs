//! Categories: a tree (each node has at most one parent). Reads are public; writes are admin-only.
//! A move is refused when it would put a category under itself or one of its descendants, and a
//! delete when the category still has children or products.

pub mod dto;
pub mod repository;
pub mod routes;
pub mod service;
