//! What every handler and worker shares.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lucid_core::ProcessId;
use lucid_imaging::Cancel;
use lucid_store::{BlobStore, JobStore};
use tokio::sync::{Notify, broadcast};

use crate::config::Config;
use crate::signing::Signer;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub signer: Signer,
    /// Base URL of signed links.
    pub public_url: Arc<str>,
    /// Cancel tokens of jobs running in this process.
    pub running: RunningJobs,
    /// Wakes idle workers when a job is submitted.
    pub new_work: Arc<Notify>,
    /// Every job whose status changed in this process (sync requests, long polls, event
    /// streams and the webhook sender listen; they also re-read the store on a timer).
    pub changes: broadcast::Sender<ProcessId>,
    pub limiter: Arc<DefaultKeyedRateLimiter<i64>>,
    pub http: reqwest::Client,
    /// Set once shutdown starts: new work is refused with 503.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// This process's counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The memory this node's running jobs share.
    pub memory: crate::memory::MemoryBudget,
}

impl AppState {
    pub fn new(
        config: Config,
        jobs: Arc<dyn JobStore>,
        blobs: Arc<dyn BlobStore>,
        signer: Signer,
        public_url: String,
    ) -> Self {
        let rate = NonZeroU32::new(config.rate_limit.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_limit.burst).unwrap_or(rate);
        let (changes, _) = broadcast::channel(1024);
        AppState {
            memory: crate::memory::MemoryBudget::new(config.memory_budget),
            http: crate::fetch::client(crate::fetch::rule(config.allow_private_urls)),
            config: Arc::new(config),
            jobs,
            blobs,
            signer,
            public_url: public_url.trim_end_matches('/').into(),
            running: RunningJobs::default(),
            new_work: Arc::new(Notify::new()),
            changes,
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            draining: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Tells waiters that a job's status changed.
    pub fn announce_change(&self, id: ProcessId) {
        let _ = self.changes.send(id);
    }
}

/// Cancel tokens by job, for the jobs this process is running.
#[derive(Clone, Default)]
pub struct RunningJobs(Arc<Mutex<HashMap<ProcessId, Cancel>>>);

impl RunningJobs {
    pub fn register(&self, id: ProcessId) -> Cancel {
        let token = Cancel::new();
        self.0
            .lock()
            .expect("running jobs lock")
            .insert(id, token.clone());
        token
    }

    pub fn remove(&self, id: ProcessId) {
        self.0.lock().expect("running jobs lock").remove(&id);
    }

    /// Fires the job's token if it runs here; answers whether it did.
    pub fn cancel(&self, id: ProcessId) -> bool {
        match self.0.lock().expect("running jobs lock").get(&id) {
            Some(token) => {
                token.fire();
                true
            }
            None => false,
        }
    }

    /// How many jobs run here now.
    pub fn len(&self) -> usize {
        self.0.lock().expect("running jobs lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn cancel_all(&self) {
        for token in self.0.lock().expect("running jobs lock").values() {
            token.fire();
        }
    }
}
