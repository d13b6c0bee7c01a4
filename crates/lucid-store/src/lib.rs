//! lucid's persistence. [`JobStore`] is the single source of truth for keys, credits, sources
//! and jobs; every state change is one conditional statement or one short transaction, so a
//! cancel racing a completion has exactly one winner. [`BlobStore`] holds image bytes.
//! [`sqlite::SqliteStore`] and [`blob::LocalBlobStore`] are the embedded implementations;
//! [`postgres::PgStore`] and [`s3::S3BlobStore`] the shared ones, for many nodes; [`transfer`]
//! copies the first pair into the second.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lucid_store::StoreError> {
//! use lucid_store::{JobStore, NewKey, sqlite::SqliteStore};
//! let store = SqliteStore::open("sqlite://lucid.db").await?;
//! let key = store.create_key(NewKey::all_scopes("admin")).await?;
//! assert!(store.authenticate(&key).await?.is_some());
//! # Ok(()) }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use lucid_core::key::{Balance, KeyIdentity, Scopes};
use lucid_core::{Job, JobState, ProcessId};
use uuid::Uuid;

pub mod blob;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod postgres;
mod rows;
pub mod s3;
#[cfg(feature = "conformance")]
pub mod services;
pub mod sqlite;
pub mod transfer;

pub use blob::{BlobStore, LocalBlobStore, SignedMethod};

/// Failures of a store. They never carry HTTP meaning; the server answers them with a 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("object storage: {0}")]
    Object(#[from] object_store::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
}

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub scopes: Scopes,
    /// `None` is unlimited.
    pub credits: Option<i64>,
}

impl NewKey {
    pub fn all_scopes(name: &str) -> Self {
        NewKey {
            name: name.to_string(),
            scopes: Scopes::all(),
            credits: None,
        }
    }
}

/// A key as `lucid keys list` shows it (never the key itself).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub name: String,
    pub scopes: Scopes,
    pub balance: Balance,
    pub unlimited: bool,
    pub revoked: bool,
}

/// A stored source image: reusable by its owner through `source_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: Uuid,
    pub key_id: i64,
    pub filename: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    Accepted,
    InsufficientCredits,
    /// The idempotency key was used before with the same request: the first job, unchanged.
    Replay(Box<Job>),
    /// The idempotency key was used before with a different request.
    IdempotencyConflict,
}

/// An `Idempotency-Key` and the hash of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// How long an idempotency key holds its first response.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Which of a key's jobs to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// Only jobs older than this one (the pagination cursor).
    pub before: Option<ProcessId>,
    pub limit: Option<u32>,
    pub state: Option<JobState>,
    /// Creation time bounds, Unix milliseconds, exclusive.
    pub created_after_ms: Option<i64>,
    pub created_before_ms: Option<i64>,
    pub model: Option<String>,
}

/// One webhook notification to deliver (a row of the outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The `notification_id`, a ULID; retries keep it.
    pub id: String,
    pub process_id: ProcessId,
    pub key_id: i64,
    pub url: String,
    pub status: JobState,
    pub progress: u8,
    pub creation_ms: i64,
    pub modification_ms: i64,
    /// Delivery attempts made before this one.
    pub attempts: u32,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Delivered,
    /// The receiver answered 4xx: never retried.
    Dropped(String),
    /// Try again at this time (Unix ms).
    Retry {
        at_ms: i64,
        error: String,
    },
    /// Out of attempts.
    Exhausted(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// Moved to Cancelled; credits released.
    Cancelled,
    /// Already Completed, Failed or Cancelled.
    NotCancellable,
    /// No such job for this key.
    NotFound,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    Deleted(Box<Job>),
    Unfinished,
    NotFound,
}

/// How a worker's attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalized {
    /// The job took the outcome (and, when Completed, its credits were charged).
    Done,
    /// The job was no longer this worker's (cancelled, or its lease expired): nothing changed.
    LostRace,
}

/// A job's new state, as announced by a store that several processes share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobEvent {
    pub id: ProcessId,
    pub state: JobState,
}

/// Every key's jobs counted by state, and the age of the queue: the operator's view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Census {
    /// Jobs in each state (states without jobs are absent).
    pub by_state: Vec<(JobState, i64)>,
    /// When the oldest Pending job was submitted (Unix milliseconds); `None` when none waits.
    pub oldest_pending_ms: Option<i64>,
}

impl Census {
    pub fn count(&self, state: JobState) -> i64 {
        self.by_state
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }
}

/// Jobs, keys, credits and sources. Ownership is part of every query, so another key's job is
/// indistinguishable from a missing one.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Creates a key and answers the plain key, the only time it exists.
    async fn create_key(&self, key: NewKey) -> Result<String, StoreError>;
    async fn list_keys(&self) -> Result<Vec<KeyInfo>, StoreError>;
    /// Answers whether a key of that name existed and was not yet revoked.
    async fn revoke_key(&self, name: &str) -> Result<bool, StoreError>;
    async fn key_count(&self) -> Result<i64, StoreError>;
    /// The caller of a plain key; `None` for unknown or revoked keys.
    async fn authenticate(&self, plain: &str) -> Result<Option<KeyIdentity>, StoreError>;
    async fn balance(&self, key_id: i64) -> Result<Balance, StoreError>;

    async fn insert_source(&self, source: &Source) -> Result<(), StoreError>;
    async fn source(&self, key_id: i64, id: Uuid) -> Result<Option<Source>, StoreError>;

    /// Inserts a Pending job and reserves its credits, or answers that the key cannot cover it.
    /// With an idempotency key, a repeat of the same request answers the first job instead.
    async fn submit(
        &self,
        job: &Job,
        idempotency: Option<&Idempotency>,
    ) -> Result<SubmitOutcome, StoreError>;
    async fn job(&self, key_id: i64, id: ProcessId) -> Result<Option<Job>, StoreError>;
    /// Any key's job: for workers and signed links, never for API answers.
    async fn job_any(&self, id: ProcessId) -> Result<Option<Job>, StoreError>;
    /// The key's jobs, newest first, as the filter says.
    async fn list(&self, key_id: i64, filter: &ListFilter) -> Result<Vec<Job>, StoreError>;
    async fn cancel(&self, key_id: i64, id: ProcessId) -> Result<CancelOutcome, StoreError>;
    async fn delete(&self, key_id: i64, id: ProcessId) -> Result<DeleteOutcome, StoreError>;
    /// Deletes every finished job of the key and answers them (their blobs go next).
    async fn delete_finished(&self, key_id: i64) -> Result<Vec<Job>, StoreError>;

    /// Claims the oldest Pending job for `worker` with a lease.
    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Job>, StoreError>;
    /// Extends the lease; `false` when the job is no longer this worker's.
    async fn renew(&self, id: ProcessId, worker: &str, lease: Duration)
    -> Result<bool, StoreError>;
    /// Gives a running job back (its worker is shutting down): Pending again at once, and the
    /// interrupted attempt does not count. `false` when the job is no longer this worker's.
    async fn release(&self, id: ProcessId, worker: &str) -> Result<bool, StoreError>;
    async fn set_progress(
        &self,
        id: ProcessId,
        worker: &str,
        progress: u8,
    ) -> Result<bool, StoreError>;
    async fn finalize(
        &self,
        id: ProcessId,
        worker: &str,
        outcome: Outcome,
    ) -> Result<Finalized, StoreError>;
    /// Returns jobs whose lease expired to Pending, or fails them (credits released) after
    /// `max_attempts`. Answers how many jobs moved.
    async fn expire_leases(&self, max_attempts: u32) -> Result<u64, StoreError>;
    /// Estimated seconds of work in Pending and Processing jobs, for ETAs.
    async fn queued_work_secs(&self) -> Result<f64, StoreError>;
    /// All keys' jobs by state, and the oldest Pending job (for `/metrics`).
    async fn census(&self) -> Result<Census, StoreError>;

    /// Claims up to `limit` due notifications for delivery for `lease` (another sender skips
    /// them meanwhile). Only the oldest undelivered notification of a job is due, so a job's
    /// notifications arrive in order.
    async fn claim_notifications(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Notification>, StoreError>;
    async fn record_delivery(&self, id: &str, delivery: Delivery) -> Result<(), StoreError>;
    /// The key's webhook signing secret (`whsec_…`), created on first use; `rotate` replaces it.
    async fn webhook_secret(&self, key_id: i64, rotate: bool) -> Result<String, StoreError>;
    /// The id of an active key by name.
    async fn key_id(&self, name: &str) -> Result<Option<i64>, StoreError>;

    /// A named server secret (32 random bytes), created on first use and kept.
    async fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError>;

    /// Counts one request of the key against a rate limit shared by every node on this store
    /// (`per_second` sustained, bursts of `burst`). `None` where the store keeps no shared
    /// limits (the node counts on its own); `Some(Err(wait))` refuses it for `wait`.
    async fn shared_rate_limit(
        &self,
        _key_id: i64,
        _per_second: u32,
        _burst: u32,
    ) -> Result<Option<Result<(), Duration>>, StoreError> {
        Ok(None)
    }

    /// Job state changes as they are committed, by any process, where the backend can announce
    /// them (PostgreSQL's `NOTIFY`); `None` where it cannot. Announcements can be lost (a
    /// dropped connection), so listeners also re-read the store on a timer.
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<JobEvent>> {
        None
    }
}

/// SHA-256 of a plain key, hex.
pub fn key_digest(plain: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(plain.as_bytes()))
}

/// A fresh plain key: `lucid_` and 32 random bytes in hex.
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("lucid_{}", hex::encode(bytes))
}

/// A fresh webhook signing secret: `whsec_` and 32 random bytes in base64 (Standard Webhooks).
pub fn generate_webhook_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Notification ids: ULIDs from one monotonic generator, so a job's notifications sort in the
/// order they were written even within one millisecond.
fn next_ulid() -> String {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut guard = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    generator
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
        .to_string()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Bytes in, bytes out: the stores hold whole blobs.
pub type Blob = Bytes;
