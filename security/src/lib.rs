//! No code: this crate holds the OWASP API Security Top-10 suite, `tests/owasp/main.rs`, which
//! starts identity, catalog and cart in one process and probes them (see its header).
