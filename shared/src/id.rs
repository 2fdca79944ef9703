//! Ids are UUIDv7, generated in Rust (Postgres 15 has no `uuidv7()`), so they sort by creation time
//! and keyset pagination on the id alone lists records oldest first.

use uuid::Uuid;

/// A new time-ordered id.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_increase_over_time() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(b > a, "later id {b} must sort after {a}");
    }
}
