//! Password hashing with argon2id on a small pool of threads of its own, never on the async
//! executor nor on tokio's general blocking pool. Each pool thread keeps one argon2 memory buffer
//! (`argon2_memory_kib`) for its whole life, so the memory a login flood can take is bounded by
//! the number of threads, not by how many blocking threads tokio happened to start (whose
//! per-thread allocator arenas kept ~19 MiB each: identity reached 948 MiB after a login run).
//! The threads run at a lower priority (nice 10), so a login storm yields the CPU to requests.
//! Admission is bounded too: when the workers and the queue are all taken, a hash is refused at
//! once with [`HasherBusy`] (503 with `Retry-After`) instead of piling up waiters that each hold a
//! connection and a request's memory.
//! `verify_or_dummy` does the same work whether or not the user exists, so the answer time does
//! not reveal which usernames are registered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Every worker is busy and the queue is full: try again shortly.
#[derive(Debug, thiserror::Error)]
#[error("the password hasher is busy")]
pub struct HasherBusy;

/// A stored hash asking for more memory than this is refused rather than allocated (ours use
/// 19 MiB; a hash with a made-up cost must not make the service allocate gigabytes).
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Likewise for passes: ours use 2; a stored hash asking for thousands would hold a thread.
const MAX_ITERATIONS: u32 = 16;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    dummy_hash: Arc<String>,
    /// Running plus waiting hashes: workers + queue permits, taken without waiting.
    admission: Arc<Semaphore>,
    /// Running hashes: one per pool thread.
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    verifications: Arc<AtomicU64>,
    hashes: Arc<AtomicU64>,
}

/// A place among the running or queued hashes; hold it for the duration of one argon2 call.
pub struct HashSlot {
    _worker: OwnedSemaphorePermit,
    _admission: OwnedSemaphorePermit,
}

/// Default number of hashing threads: one per core but one (at least one). argon2 with
/// parallelism 1 keeps a core busy per thread; leaving one core to everything else is what keeps
/// requests fast during a login storm (on 2 cores, with 2 threads the product detail's p99 beside
/// a storm was 4–12 ms, with 1 it was under 4 ms, at 78 logins/s instead of 128:
/// docs/benchmarks.md).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Default number of hashes that may wait for a worker.
pub const DEFAULT_QUEUE: usize = 64;

/// Niceness of the hashing threads: a login storm keeps them busy, and request handling (this
/// service's and every other process's on the machine) should win the CPU from them.
const HASHING_NICENESS: i32 = 10;

/// Lower the calling thread's scheduling priority (Linux keeps a niceness per thread).
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), HASHING_NICENESS) {
            tracing::warn!(error = %e, "password hashing threads keep the normal priority");
        }
    }
}

/// Start `workers` hashing threads fed by one queue. They end when the last sender is dropped.
fn start_pool(workers: usize) -> anyhow::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..workers {
        let rx = Arc::clone(&rx);
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                yield_to_requests();
                let mut memory = Vec::new();
                loop {
                    // The lock is held only while taking the next job, never while hashing.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else {
                        return;
                    };
                    // A panicking job must not take the thread with it: the pool would shrink
                    // silently until every login failed. Its buffer is dropped, being suspect.
                    let run = std::panic::AssertUnwindSafe(|| job(&mut memory));
                    if std::panic::catch_unwind(run).is_err() {
                        memory = Vec::new();
                    }
                }
            })?;
    }
    Ok(tx)
}

impl PasswordHasher {
    /// A hasher with `workers` threads (at least one) and `queue` more hashes waiting for them.
    pub async fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        workers: usize,
        queue: usize,
    ) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let workers = workers.max(1);
        let mut hasher = Self {
            params,
            dummy_hash: Arc::new(String::new()),
            admission: Arc::new(Semaphore::new(workers + queue)),
            permits: Arc::new(Semaphore::new(workers)),
            jobs: start_pool(workers)?,
            verifications: Arc::new(AtomicU64::new(0)),
            hashes: Arc::new(AtomicU64::new(0)),
        };
        let random: String = SaltString::generate(&mut OsRng).as_str().to_owned();
        let params = hasher.params.clone();
        let slot = hasher.slot().await?;
        let dummy = hasher
            .run(slot, move |memory| hash_with(&params, &random, memory))
            .await??;
        hasher.dummy_hash = Arc::new(dummy);
        Ok(hasher)
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

    /// Run `f` on a pool thread with that thread's argon2 memory, holding `slot` until it is
    /// done: a request that was cancelled (its client hung up) still holds its place while its
    /// hash runs, and a job whose caller is already gone is skipped, so abandoned requests
    /// cannot queue work past the admission bound. The buffer is shrunk back to the configured
    /// cost after a job needed more (an old hash with a higher cost).
    async fn run<T: Send + 'static>(
        &self,
        slot: HashSlot,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = oneshot::channel();
        let keep = self.params.block_count();
        self.jobs
            .send(Box::new(move |memory| {
                // Bound in this order so that, should `f` panic, the place is freed before the
                // caller hears of it (locals drop in reverse order).
                let tx = tx;
                let slot = slot;
                if tx.is_closed() {
                    return;
                }
                let out = f(memory);
                if memory.len() > keep {
                    memory.truncate(keep);
                    memory.shrink_to_fit();
                }
                // The place is free before the answer is: a caller that goes on to hash again
                // finds it free.
                drop(slot);
                let _ = tx.send(out);
            }))
            .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("a password hashing thread panicked"))
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let slot = self.slot().await?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(slot, move |memory| hash_with(&params, &password, memory))
            .await?
    }

    /// Check `password` against `hash`, or against a dummy hash when there is no user, so both
    /// paths cost the same.
    pub async fn verify_or_dummy(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> anyhow::Result<bool> {
        let slot = self.slot().await?;
        let real = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.as_str().to_owned(), str::to_owned);
        let password = password.to_owned();
        let ok = self
            .run(slot, move |memory| verify(&password, &hash, memory))
            .await?;
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

/// `memory` with room for `params`' blocks: grown once to the configured cost, then reused.
fn blocks<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let n = params.block_count();
    if memory.len() < n {
        memory.resize(n, Block::default());
    }
    &mut memory[..n]
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), the same as `argon2`'s own
/// `hash_password` writes, computed in `memory`.
fn hash_with(params: &Params, password: &str, memory: &mut Vec<Block>) -> anyhow::Result<String> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_raw,
                out,
                blocks(memory, params),
            )
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` is the one `stored` was made from. Parameters come from the stored hash, so
/// older hashes keep verifying after a cost change; the comparison is constant-time (`Output`).
fn verify(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB || params.t_cost() > MAX_ITERATIONS {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    Output::init_with(expected.len(), |out| {
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_raw,
                out,
                blocks(memory, &params),
            )
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
    use std::time::Duration;

    /// A hash made by the argon2 crate's own `hash_password`, as stored hashes were.
    fn crate_hash(password: &str, memory_kib: u32, iterations: u32) -> String {
        let params = Params::new(memory_kib, iterations, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    async fn hasher() -> PasswordHasher {
        PasswordHasher::new(1024, 1, 1, 2, 8).await.unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let h = hasher().await;
        let a = h.hash("Passw0rd!").await.unwrap();
        let b = h.hash("Passw0rd!").await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(h.verify_or_dummy("Passw0rd!", Some(&a)).await.unwrap());
        assert!(!h.verify_or_dummy("passw0rd!", Some(&a)).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_are_the_ones_the_argon2_crate_makes_and_checks_in_both_directions() {
        // Stored hashes were written by `argon2`'s own `hash_password`: they must keep verifying,
        // and ours must verify there (a wrong salt decoding or parameter string would break both).
        let h = hasher().await;
        let ours = h.hash("Passw0rd!").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"Passw0rd!", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"Passw0rd?", &parsed)
            .is_err());

        let theirs = crate_hash("Old-passw0rd", 2048, 2);
        assert!(h
            .verify_or_dummy("Old-passw0rd", Some(&theirs))
            .await
            .unwrap());
        assert!(!h
            .verify_or_dummy("old-passw0rd", Some(&theirs))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn every_hash_runs_on_one_of_the_pools_own_low_priority_threads() {
        // A buffer per pool thread is the memory bound: hashes on other threads (tokio's blocking
        // pool) would each keep one of their own.
        let h = PasswordHasher::new(1024, 1, 1, 2, 32).await.unwrap();
        let names: Vec<String> = futures_names(&h, 24).await;
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert!(
            distinct
                .iter()
                .all(|n| *n == "argon2-0" || *n == "argon2-1"),
            "{distinct:?}"
        );
    }

    async fn futures_names(h: &PasswordHasher, n: usize) -> Vec<String> {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let slot = h.slot().await.unwrap();
                h.run(slot, |memory| {
                    let params = Params::new(1024, 1, 1, None).unwrap();
                    hash_with(&params, "x", memory).unwrap();
                    let name = std::thread::current()
                        .name()
                        .unwrap_or("unnamed")
                        .to_owned();
                    #[cfg(target_os = "linux")]
                    {
                        let tid = rustix::thread::gettid();
                        let nice = rustix::process::getpriority_process(Some(tid)).unwrap();
                        assert_eq!(nice, HASHING_NICENESS, "{name} hashes at normal priority");
                    }
                    name
                })
                .await
                .unwrap()
            }));
        }
        let mut names = Vec::new();
        for t in tasks {
            names.push(t.await.unwrap());
        }
        names
    }

    #[tokio::test]
    async fn a_cancelled_request_keeps_its_place_until_its_hash_is_done() {
        // One worker, no queue: one hash at a time, the next refused at once.
        let h = PasswordHasher::new(1024, 1, 1, 1, 0).await.unwrap();
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel();
        let task = {
            let h = h.clone();
            tokio::spawn(async move {
                let slot = h.slot().await.unwrap();
                h.run(slot, move |_| {
                    let _ = started_tx.send(());
                    let _ = gate.recv();
                })
                .await
            })
        };
        started.await.unwrap();
        // The client hangs up while its hash runs.
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let refused = h
            .slot()
            .await
            .err()
            .expect("a place was free beside a running hash");
        assert!(refused.is::<HasherBusy>(), "{refused}");
        // When the hash ends its place is free again.
        open.send(()).unwrap();
        shared::test_utils::eventually(
            "the place to be freed",
            Duration::from_secs(10),
            || async { h.slot().await.ok().map(|_| ()) },
        )
        .await;
    }

    #[tokio::test]
    async fn a_thread_goes_back_to_the_configured_buffer_after_an_older_costlier_hash() {
        let h = PasswordHasher::new(1024, 1, 1, 1, 0).await.unwrap();
        let costly = crate_hash("Old-passw0rd", 4096, 1);
        assert!(h
            .verify_or_dummy("Old-passw0rd", Some(&costly))
            .await
            .unwrap());
        let slot = h.slot().await.unwrap();
        let kept = h.run(slot, |memory| memory.len()).await.unwrap();
        assert_eq!(kept, 1024, "the 4 MiB buffer was kept");
    }

    #[tokio::test]
    async fn a_job_that_panics_leaves_the_thread_serving() {
        let h = PasswordHasher::new(1024, 1, 1, 1, 0).await.unwrap();
        let slot = h.slot().await.unwrap();
        let panicked = h.run(slot, |_| -> () { panic!("a job that panics") }).await;
        assert!(panicked.is_err());
        let a = h
            .hash("Passw0rd!")
            .await
            .expect("the only thread still hashes");
        assert!(h.verify_or_dummy("Passw0rd!", Some(&a)).await.unwrap());
    }

    #[test]
    fn a_stored_hash_asking_for_absurd_memory_is_refused_not_allocated() {
        let mut memory = Vec::new();
        let modest = "$argon2id$v=19$m=2048,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$\
                      YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE";
        assert!(!verify("anything", modest, &mut memory));
        assert_eq!(
            memory.len(),
            2048,
            "a hash in bounds is computed in the thread's buffer"
        );
        let mut memory = Vec::new();
        let huge = modest.replace("m=2048", "m=4194304");
        assert!(!verify("anything", &huge, &mut memory));
        assert!(memory.is_empty(), "4 GiB were allocated for a made-up hash");
        let endless = modest.replace("t=1", "t=100000");
        assert!(!verify("anything", &endless, &mut memory));
        assert!(memory.is_empty(), "a hash of 100,000 passes was computed");
    }

    #[tokio::test]
    async fn a_missing_user_never_verifies_even_with_the_dummy_password() {
        const DUMMY: &str = "the-dummy's-0wn-password";
        let mut h = hasher().await;
        // The dummy is random in production; here it is one whose password the test knows.
        let mut memory = Vec::new();
        h.dummy_hash = Arc::new(hash_with(&h.params, DUMMY, &mut memory).unwrap());
        assert!(
            verify(DUMMY, &h.dummy_hash, &mut memory),
            "the dummy hash is DUMMY's"
        );
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
