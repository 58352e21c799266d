//! Password hashing (argon2id) with a fixed budget of concurrency and memory.
//!
//! Anyone can make the server hash: every login (including for unknown emails, which verify a
//! dummy hash so both failures take the same time) and every registration costs one argon2id
//! run over 19 MiB. Unbounded, a burst of such requests runs one hash per blocking thread and the
//! allocator keeps the arenas afterwards (100 logins took a server from 9 MB to 3.2 GB RSS, and
//! it stayed there). So:
//!
//! - at most `slots` hashes run at once (one permit each, held until the blocking work ends,
//!   even if the request that asked for it has gone);
//! - a request waits for a slot at most `queue_timeout`, and at most `max_queued` requests wait;
//!   beyond either it is refused at once with [`HashError::Busy`] (HTTP 503, `Retry-After`);
//! - each slot's argon2 memory is allocated once and reused, so the hashing memory of the whole
//!   process is at most `slots` x 19 MiB, however many requests come, and it does not depend on
//!   what the allocator does with freed blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every slot was busy for the whole queue wait, or the queue was full.
    #[error("the server is busy hashing passwords")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// The bounded hashing service. Cheap to clone; every clone shares the same slots.
#[derive(Debug, Clone)]
pub struct PasswordHashing {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    slots: Arc<Semaphore>,
    /// Argon2 working memory, one area per slot at most: taken by the blocking task that holds
    /// a permit, given back when it ends. Only touched inside the blocking task, never across
    /// an `.await`.
    memory: Mutex<Vec<Vec<Block>>>,
    /// Requests waiting for a slot now.
    queued: AtomicUsize,
    max_queued: usize,
    queue_timeout: Duration,
}

impl PasswordHashing {
    /// `slots` hashes at once (at least one); `max_queued` requests may wait up to
    /// `queue_timeout` for one.
    pub fn new(slots: usize, max_queued: usize, queue_timeout: Duration) -> Self {
        let slots = slots.max(1);
        Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(slots)),
                memory: Mutex::new(Vec::with_capacity(slots)),
                queued: AtomicUsize::new(0),
                max_queued,
                queue_timeout,
            }),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password`, with a fresh
    /// random salt and the default argon2id parameters.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |memory| hash_with_memory(password.as_bytes(), memory))
            .await?
            .map_err(HashError::Internal)
    }

    /// Whether `password` matches the PHC string `stored`. A malformed `stored` never matches.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, HashError> {
        self.run(move |memory| verify_with_memory(password.as_bytes(), &stored, memory))
            .await
    }

    /// Wait (bounded) for a slot, then run `job` on the blocking pool with the slot's memory.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.acquire().await?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // At most one area per permit exists: every holder takes one or makes one, and
            // gives it back before its permit is released (the permit drops last).
            let mut memory = inner.memory.lock().pop().unwrap_or_default();
            let result = job(&mut memory);
            inner.memory.lock().push(memory);
            result
        })
        .await
        .map_err(|err| HashError::Internal(err.to_string()))
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit, HashError> {
        if let Ok(permit) = self.inner.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let inner = &self.inner;
        if inner.queued.fetch_add(1, Ordering::AcqRel) >= inner.max_queued {
            inner.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        // Leaves the queue however this future ends (timeout, permit, or dropped request).
        let _in_queue = QueuedGuard(&inner.queued);
        match tokio::time::timeout(inner.queue_timeout, inner.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the only real outcome here.
            Ok(Err(_)) | Err(_) => Err(HashError::Busy),
        }
    }
}

struct QueuedGuard<'a>(&'a AtomicUsize);

impl Drop for QueuedGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Make `memory` hold at least the blocks `params` needs. Reused areas hold a previous hash's
/// state; argon2 writes every block before reading it, so no clearing is needed.
fn working_memory(memory: &mut Vec<Block>, params: &Params) -> usize {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    blocks
}

fn hash_with_memory(password: &[u8], memory: &mut Vec<Block>) -> Result<String, String> {
    let params = Params::default();
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let blocks = working_memory(memory, &params);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, &mut memory[..blocks])
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

fn verify_with_memory(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm) else {
        return false;
    };
    let version = match phc.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&phc) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = working_memory(memory, &params);
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt_bytes,
        &mut out,
        &mut memory[..blocks],
    );
    // `Output` compares in constant time.
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashing(slots: usize, max_queued: usize, timeout_ms: u64) -> PasswordHashing {
        PasswordHashing::new(slots, max_queued, Duration::from_millis(timeout_ms))
    }

    #[tokio::test]
    async fn hashes_verify_with_reused_memory() {
        let hashing = hashing(1, 4, 60_000);
        let first = hashing.hash("correct horse".into()).await.unwrap();
        let second = hashing.hash("correct horse".into()).await.unwrap();
        assert_ne!(first, second, "fresh salt each time");
        for stored in [&first, &second] {
            assert!(
                hashing
                    .verify("correct horse".into(), stored.clone())
                    .await
                    .unwrap()
            );
            assert!(
                !hashing
                    .verify("wrong".into(), stored.clone())
                    .await
                    .unwrap()
            );
        }
        assert!(
            !hashing
                .verify("x".into(), "not a hash".into())
                .await
                .unwrap()
        );
        assert!(hashing.inner.memory.lock().len() <= 1);
    }

    #[tokio::test]
    async fn hashes_from_the_argon2_crate_verify() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let stored = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let hashing = hashing(1, 4, 60_000);
        assert!(
            hashing
                .verify("correct horse".into(), stored.clone())
                .await
                .unwrap()
        );
        assert!(!hashing.verify("wrong".into(), stored).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let hashing = hashing(1, 0, 60_000);
        let _held = hashing.inner.slots.clone().try_acquire_owned().unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            hashing.hash("pw".into()).await,
            Err(HashError::Busy)
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_request_waits_at_most_the_queue_timeout() {
        let hashing = hashing(1, 8, 100);
        let _held = hashing.inner.slots.clone().try_acquire_owned().unwrap();
        assert!(matches!(
            hashing.verify("pw".into(), "x".into()).await,
            Err(HashError::Busy)
        ));
        assert_eq!(hashing.inner.queued.load(Ordering::Acquire), 0);
    }
}
