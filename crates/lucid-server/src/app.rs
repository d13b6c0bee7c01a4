//! The startup seam: [`App::build`] opens the stores, binds the listener (port 0 is fine) and
//! creates the first key if none exists; [`App::run`] serves the API, the workers and the lease
//! reaper until the shutdown future resolves, then drains.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use lucid_core::JobState;
use lucid_store::postgres::PgStore;
use lucid_store::s3::S3BlobStore;
use lucid_store::sqlite::SqliteStore;
use lucid_store::{BlobStore, JobEvent, JobStore, LocalBlobStore, NewKey};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::signing::Signer;
use crate::state::AppState;
use crate::worker::{Worker, reap_expired_leases};

/// How long stopped jobs' workers get to hand them back once the grace period is over (the
/// pipeline checks for cancellation between bands, so this is short).
const STOP_WAIT: Duration = Duration::from_secs(5);

pub struct App {
    state: AppState,
    listener: TcpListener,
    first_key: Option<String>,
}

/// A URL as it may appear in logs and errors: without its password.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Opens (and migrates) the job store named by the configuration: `sqlite://…` or
/// `postgres://…`.
pub async fn open_job_store(config: &Config) -> anyhow::Result<Arc<dyn JobStore>> {
    let url = config.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PgStore::open(&url)
            .await
            .with_context(|| format!("opening {}", redacted(&url)))?;
        return Ok(Arc::new(store));
    }
    if !url.starts_with("sqlite:") {
        anyhow::bail!(
            "unsupported --database-url {:?}: use sqlite://… or postgres://…",
            redacted(&url)
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    Ok(Arc::new(
        SqliteStore::open(&url)
            .await
            .with_context(|| format!("opening {url}"))?,
    ))
}

/// Opens the blob store named by the configuration: a local folder or `s3://bucket[/prefix]`.
pub fn open_blob_store(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    match config.blob_url.as_deref() {
        Some(url) if url.starts_with("s3://") => Ok(Arc::new(
            S3BlobStore::open(url, []).with_context(|| format!("opening {url}"))?,
        )),
        _ => Ok(Arc::new(
            LocalBlobStore::new(config.blob_dir()?).context("opening the blob folder")?,
        )),
    }
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let jobs = open_job_store(&config).await?;
        let blobs = open_blob_store(&config)?;
        let signer = Signer::new(jobs.secret("link-signing").await?);
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let first_key = if config.create_first_key && jobs.key_count().await? == 0 {
            Some(jobs.create_key(NewKey::all_scopes("default")).await?)
        } else {
            None
        };
        let state = AppState::new(config, jobs, blobs, signer, public_url);
        Ok(App {
            state,
            listener,
            first_key,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The key created at first start, if this start created one.
    pub fn first_key(&self) -> Option<&str> {
        self.first_key.as_deref()
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            state, listener, ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let tasks = spawn_background(&state, &stop_rx);
        let router = crate::routes::router(state.clone());
        let (signal_tx, mut signal_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = signal_tx.send(true);
        });
        // HTTP stays up while the workers drain, so clients can still poll and download, and a
        // new submit is answered 503 instead of finding the port closed.
        let (drained_tx, mut drained_rx) = watch::channel(false);
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = drained_rx.wait_for(|d| *d).await;
        });
        let server = tokio::spawn(async move { server.await });
        let _ = signal_rx.wait_for(|s| *s).await;
        tracing::info!("shutting down: refusing new work, letting running jobs finish");
        let _ = stop_tx.send(true);
        drain(&state, tasks).await;
        let _ = drained_tx.send(true);
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(joined) => joined.context("server task")?.context("serving")?,
            Err(_) => tracing::warn!("open requests did not finish in time"),
        }
        Ok(())
    }
}

impl App {
    /// A worker-only node: the workers, the lease reaper and the webhook sender. With
    /// `operator_http`, the listener serves only `/metrics`, `/healthz` and `/readyz`;
    /// otherwise there is no HTTP.
    pub async fn run_workers(
        self,
        shutdown: impl Future<Output = ()>,
        operator_http: bool,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let tasks = spawn_background(&self.state, &stop_rx);
        let server = operator_http.then(|| {
            let router = crate::routes::operator_router(self.state.clone());
            tokio::spawn(axum::serve(self.listener, router).into_future())
        });
        shutdown.await;
        let _ = stop_tx.send(true);
        drain(&self.state, tasks).await;
        if let Some(server) = server {
            server.abort();
        }
        Ok(())
    }
}

fn spawn_background(state: &AppState, stop: &watch::Receiver<bool>) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..state.config.workers {
        tasks.spawn(Worker::new(state.clone(), &format!("worker{n}")).run(stop.clone()));
    }
    tasks.spawn(reap_expired_leases(state.clone(), stop.clone()));
    tasks.spawn(crate::webhook::run_sender(state.clone(), stop.clone()));
    if let Some(events) = state.jobs.events() {
        tasks.spawn(follow_store_events(state.clone(), events, stop.clone()));
    }
    tasks
}

/// Acts on job changes announced by the store, whichever node made them: a new Pending job
/// wakes an idle worker, a cancel stops the job at once if it runs here, and every change
/// wakes this node's status waiters. (Workers and waiters also poll, for lost announcements.)
async fn follow_store_events(
    state: AppState,
    mut events: broadcast::Receiver<JobEvent>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = stop.changed() => return,
        };
        match event {
            Ok(JobEvent { id, state: now }) => {
                match now {
                    JobState::Pending => state.new_work.notify_one(),
                    JobState::Cancelled => {
                        state.running.cancel(id);
                    }
                    _ => {}
                }
                state.announce_change(id);
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "job change announcements skipped");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Refuses new work, lets running jobs finish within the grace period, then stops the rest,
/// whose workers give them back to Pending (see [`Worker`]).
async fn drain(state: &AppState, mut tasks: tokio::task::JoinSet<()>) {
    state.draining.store(true, Ordering::Relaxed);
    let mut join_all = async || while tasks.join_next().await.is_some() {};
    if tokio::time::timeout(state.config.shutdown_grace, join_all())
        .await
        .is_err()
    {
        state.running.cancel_all();
        if tokio::time::timeout(STOP_WAIT, join_all()).await.is_err() {
            tracing::warn!(
                "some jobs did not stop; they return to Pending when their lease expires"
            );
        }
    }
}
