//! The payment service. Not built yet: its issue describes the capability; this crate only reserves its place in the workspace.
