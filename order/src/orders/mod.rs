//! Orders: placement, reads, the buyer's, seller's and admin's actions, and the state machine.

pub mod admission;
pub mod domain;
pub mod dto;
pub mod repository;
pub mod routes;
pub mod service;
