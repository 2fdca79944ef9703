//! The cart itself: storage in Redis (`store`), the rules (`service`), the HTTP surface.

pub mod dto;
pub mod routes;
pub mod service;
pub mod store;
