//! Brands and the categories each brand is sold in. Reads are public; writes are admin-only.

pub mod dto;
pub mod repository;
pub mod routes;
pub mod service;
