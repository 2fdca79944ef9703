//! Inventory, the catalog's part in the order saga (contract §7): `OrderCreated` reserves every line
//! or none, `OrderConfirmed` commits the held units, `OrderCancelled` releases them (or puts
//! committed units back on the shelf). Each step runs in the consumer's inbox transaction, takes
//! the order's advisory lock, locks SKU rows in id order (so two orders never deadlock on each
//! other's SKUs; a reservation share-locks the SKUs' products first, the product-then-SKU order
//! of every catalog write, so an archive and a reservation serialise), and writes its outcome
//! event to the outbox in the same transaction. What each step does follows from the order's
//! record in `inventory_orders` (see `service`).
//!
//! The admin audit re-derives every SKU's counters from the stock history and the reservations,
//! proving `initial + adjustments = available + reserved + sold`.

pub mod audit;
pub mod handler;
pub mod repository;
pub mod routes;
pub mod service;
