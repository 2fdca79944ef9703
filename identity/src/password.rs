//! Password hashing with argon2id, always off the async executor (`spawn_blocking`) and bounded by
//! a semaphore so a login flood cannot exhaust memory (each hash holds `argon2_memory_kib`).
//! The wait for a worker is bounded too: when the workers and the queue are all taken, a hash is
//! refused at once with [`HasherBusy`] (503 with `Retry-After`) instead of piling up waiters that
//! each hold a connection and a request's memory.
//! `verify_or_dummy` does the same work whether or not the user exists, so the answer time does
//! not reveal which usernames are registered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Every worker is busy and the queue is full: try again shortly.
#[derive(Debug, thiserror::Error)]
#[error("the password hasher is busy")]
pub struct HasherBusy;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    dummy_hash: Arc<String>,
    /// Running plus waiting hashes: workers + queue permits, taken without waiting.
    admission: Arc<Semaphore>,
    /// Running hashes.
    permits: Arc<Semaphore>,
    verifications: Arc<AtomicU64>,
    hashes: Arc<AtomicU64>,
}

/// A place among the running or queued hashes; hold it for the duration of one argon2 call.
pub struct HashSlot {
    _worker: OwnedSemaphorePermit,
    _admission: OwnedSemaphorePermit,
}

/// Default number of hashes run at once: two per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

/// Default number of hashes that may wait for a worker.
pub const DEFAULT_QUEUE: usize = 64;

impl PasswordHasher {
    pub async fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let p = params.clone();
        let dummy = tokio::task::spawn_blocking(move || {
            let random: String = SaltString::generate(&mut OsRng).as_str().to_owned();
            hash_with(&p, &random)
        })
        .await??;
        Ok(Self {
            params,
            dummy_hash: Arc::new(dummy),
            admission: Arc::new(Semaphore::new(0)),
            permits: Arc::new(Semaphore::new(0)),
            verifications: Arc::new(AtomicU64::new(0)),
            hashes: Arc::new(AtomicU64::new(0)),
        }
        .with_limits(default_workers(), DEFAULT_QUEUE))
    }

    /// At most `workers` hashes at once (at least one) and `queue` more waiting for a worker.
    pub fn with_limits(mut self, workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        self.admission = Arc::new(Semaphore::new(workers + queue));
        self.permits = Arc::new(Semaphore::new(workers));
        self
    }

    /// Take a place to run one hash: refused at once with [`HasherBusy`] when the workers and the
    /// queue are full, else waits (in the bounded queue) for a worker.
    pub async fn slot(&self) -> anyhow::Result<HashSlot> {
        let admission = Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| HasherBusy)?;
        let worker = Arc::clone(&self.permits).acquire_owned().await?;
        Ok(HashSlot {
            _worker: worker,
            _admission: admission,
        })
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let _slot = self.slot().await?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        let params = self.params.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_with(&params, &password)).await?
    }

    /// Check `password` against `hash`, or against a dummy hash when there is no user, so both
    /// paths cost the same.
    pub async fn verify_or_dummy(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> anyhow::Result<bool> {
        let _slot = self.slot().await?;
        let real = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.as_str().to_owned(), str::to_owned);
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify(&password, &hash)).await?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        Ok(real && ok)
    }
}

impl PasswordHasher {
    /// How many verifications ran (real or dummy): lets tests prove both paths do the work.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// How many new hashes were made: lets tests prove a refused request did not make one.
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }
}

fn hash_with(params: &Params, password: &str) -> anyhow::Result<String> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

fn verify(password: &str, hash: &str) -> bool {
    // Parameters come from the stored hash, so older hashes keep verifying after a cost change.
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let h = PasswordHasher::new(1024, 1, 1).await.unwrap();
        let a = h.hash("Passw0rd!").await.unwrap();
        let b = h.hash("Passw0rd!").await.unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(h.verify_or_dummy("Passw0rd!", Some(&a)).await.unwrap());
        assert!(!h.verify_or_dummy("passw0rd!", Some(&a)).await.unwrap());
    }

    #[tokio::test]
    async fn a_missing_user_never_verifies_even_with_the_dummy_password() {
        const DUMMY: &str = "the-dummy's-0wn-password";
        let mut h = PasswordHasher::new(1024, 1, 1).await.unwrap();
        // The dummy is random in production; here it is one whose password the test knows.
        h.dummy_hash = Arc::new(hash_with(&h.params, DUMMY).unwrap());
        assert!(verify(DUMMY, &h.dummy_hash), "the dummy hash is DUMMY's");
        let before = h.verifications();
        assert!(!h.verify_or_dummy(DUMMY, None).await.unwrap());
        assert_eq!(
            h.verifications(),
            before + 1,
            "the dummy hash was really checked"
        );
        assert!(!h.verify_or_dummy("anything", None).await.unwrap());
        assert!(!h.verify_or_dummy("x", Some("not a hash")).await.unwrap());
    }
}
