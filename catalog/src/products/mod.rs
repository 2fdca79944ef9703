//! Products with their SKUs and images: the seller's side (create, edit, stock, images), the
//! public side (detail by id or slug, the filtered listing), and the batch SKU lookup that cart
//! and order use for authoritative prices and availability.
//!
//! Visibility: the public sees `active` products only; the seller sees all of theirs; admins see
//! everything. Ownership: only the seller (or an admin) writes; a stranger gets `403` for a
//! product the public can see and `404` for one it cannot.

pub mod domain;
pub mod dto;
pub mod listing;
pub mod repository;
pub mod routes;
pub mod service;
