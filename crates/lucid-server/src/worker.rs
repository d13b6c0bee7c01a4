//! The in-process worker: [`Worker::tick`] claims one Pending job, runs the imaging pipeline
//! on a blocking thread while renewing its lease and saving progress, stores the output and
//! finalizes — conditionally, so a job cancelled meanwhile stays Cancelled and its output is
//! deleted. [`Worker::run`] loops ticks until shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use lucid_core::geometry::Placement;
use lucid_core::job::source_blob;
use lucid_core::request::Settings;
use lucid_core::{Job, ProcessId};
use lucid_imaging::pipeline::{self, process_into};
use lucid_imaging::{Cancel, ImagingError};
use lucid_store::{Finalized, Outcome, StoreError};
use tempfile::TempPath;
use tokio::sync::watch;

use crate::metrics::RunOutcome;
use crate::state::AppState;

/// Attempts before a job whose worker keeps disappearing is failed.
pub const MAX_ATTEMPTS: u32 = 3;
/// How often progress is written to the store while a job runs.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// The longest a running job goes without asking the store whether it is still this worker's:
/// a cancel made on another node stops it within this even if its announcement was lost.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Ran(ProcessId),
    Idle,
}

pub struct Worker {
    app: AppState,
    id: String,
}

/// Why a run ended without an output.
enum RunError {
    /// Cancelled by the client, or the lease was lost: the store already moved the job.
    Stopped,
    Failed(String),
}

impl Worker {
    pub fn new(app: AppState, name: &str) -> Self {
        Worker {
            app,
            id: format!("{name}-{}", uuid::Uuid::new_v4()),
        }
    }

    /// Claims and runs one job, if any is Pending.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let Some(job) = self.app.jobs.claim(&self.id, self.app.config.lease).await? else {
            return Ok(Tick::Idle);
        };
        let id = job.id;
        self.app.announce_change(id);
        let token = self.app.running.register(id);
        let started = Instant::now();
        let result = self.execute(&job, &token).await;
        self.app.running.remove(id);
        let outcome = match &result {
            Ok(_) => RunOutcome::Completed,
            Err(RunError::Stopped) => RunOutcome::Stopped,
            Err(RunError::Failed(_)) => RunOutcome::Failed,
        };
        self.app
            .metrics
            .job_run(job.endpoint.slug(), &job.model, outcome, started.elapsed());
        match result {
            Ok(output) => {
                let blob = job.output_blob();
                self.app.blobs.put_file(&blob, &output).await?;
                let finalized = self
                    .app
                    .jobs
                    .finalize(id, &self.id, Outcome::Completed)
                    .await?;
                if finalized == Finalized::LostRace {
                    // Cancelled (or re-claimed) while finishing: the output must not stay behind.
                    self.app.blobs.delete(&blob).await?;
                }
                tracing::info!(process_id = %id, ?finalized, "job finished");
            }
            // Stopped because this process is shutting down: the job goes back to Pending now
            // rather than when its lease expires. Otherwise the store already moved it
            // (cancelled, or its lease was lost), and release finds it no longer ours.
            Err(RunError::Stopped) if self.app.draining.load(Ordering::Relaxed) => {
                let released = self.app.jobs.release(id, &self.id).await?;
                tracing::info!(process_id = %id, released, "job stopped by shutdown");
            }
            Err(RunError::Stopped) => {}
            Err(RunError::Failed(msg)) => {
                tracing::warn!(process_id = %id, error = %msg, "job failed");
                let finalized = self
                    .app
                    .jobs
                    .finalize(id, &self.id, Outcome::Failed(msg))
                    .await?;
                tracing::info!(process_id = %id, ?finalized, "job failed and finalized");
            }
        }
        self.app.announce_change(id);
        Ok(Tick::Ran(id))
    }

    /// Runs ticks until there is no Pending job left (tests step the worker with this).
    pub async fn run_until_idle(&self) -> Result<usize, StoreError> {
        let mut ran = 0;
        while let Tick::Ran(_) = self.tick().await? {
            ran += 1;
        }
        Ok(ran)
    }

    /// Runs the job's pipeline into a scratch file under the data folder (so a large output is
    /// never held in memory), answering the file.
    async fn execute(&self, job: &Job, token: &Cancel) -> Result<TempPath, RunError> {
        let input = match self.app.blobs.get(&source_blob(job.source_id)).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(RunError::Failed("the source image is missing".into())),
            Err(e) => return Err(RunError::Failed(format!("reading the source image: {e}"))),
        };
        let settings = Settings::from_json(&job.options_json);
        let placement = Placement::compute(
            job.input_width,
            job.input_height,
            job.endpoint.resizes().then_some(job.output_width),
            job.endpoint.resizes().then_some(job.output_height),
            job.crop_to_fill,
        )
        .map_err(|e| RunError::Failed(e.message))?;
        let info = lucid_imaging::codec::probe(&input)
            .map_err(|e| RunError::Failed(format!("reading the source image: {e}")))?;
        let need = pipeline::peak_memory(&spec(job, &settings, placement), &info);
        let _reservation = self.reserve_memory(job, need, token).await?;
        let progress = Arc::new(AtomicU8::new(0));
        let mut handle = {
            let (job, token, progress) = (job.clone(), token.clone(), progress.clone());
            let scratch = self.app.config.data_dir.join("scratch");
            tokio::task::spawn_blocking(move || {
                let spec = spec(&job, &settings, placement);
                let io = |e: std::io::Error| ImagingError::Encode(format!("scratch file: {e}"));
                std::fs::create_dir_all(&scratch).map_err(io)?;
                let (file, path) = tempfile::NamedTempFile::new_in(&scratch)
                    .map_err(io)?
                    .into_parts();
                // The store shows 100 only once the output is committed.
                let out = process_into(
                    &input,
                    &spec,
                    &token,
                    &|f| progress.store((f * 100.0).min(99.0) as u8, Ordering::Relaxed),
                    std::io::BufWriter::new(file),
                )?;
                out.into_inner().map_err(|e| io(e.into_error()))?;
                Ok(path)
            })
        };
        let started = Instant::now();
        let renew_every = self.renew_every();
        let mut last_renew = Instant::now();
        let mut saved = 0u8;
        let mut timed_out = false;
        let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
        let result = loop {
            tokio::select! {
                r = &mut handle => break r,
                _ = tick.tick() => {
                    let now = progress.load(Ordering::Relaxed);
                    let mut keep = Ok(true);
                    if now != saved {
                        saved = now;
                        self.app.announce_change(job.id);
                        keep = self.app.jobs.set_progress(job.id, &self.id, now).await;
                    }
                    // Renewed on its own clock: a job whose progress moves at every tick still
                    // needs its lease extended, or it would be reclaimed mid-run.
                    if matches!(keep, Ok(true)) && last_renew.elapsed() >= renew_every {
                        last_renew = Instant::now();
                        keep = self.app.jobs.renew(job.id, &self.id, self.app.config.lease).await;
                    }
                    match keep {
                        Ok(true) => {}
                        // Cancelled or lease lost: stop the pipeline at its next band.
                        Ok(false) => token.fire(),
                        Err(e) => tracing::warn!(process_id = %job.id, error = %e, "could not save progress"),
                    }
                    if started.elapsed() > self.app.config.job_timeout && !timed_out {
                        timed_out = true;
                        token.fire();
                    }
                }
            }
        };
        match result {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(ImagingError::Cancelled)) if timed_out => {
                Err(RunError::Failed("the job ran past its time limit".into()))
            }
            Ok(Err(ImagingError::Cancelled)) => Err(RunError::Stopped),
            Ok(Err(e)) => Err(RunError::Failed(e.to_string())),
            Err(join) => Err(RunError::Failed(format!("the operation panicked: {join}"))),
        }
    }

    /// How often a job's lease is renewed while it runs or waits for memory: a third of the
    /// lease, and at least every [`RECONCILE_INTERVAL`].
    fn renew_every(&self) -> Duration {
        (self.app.config.lease / 3).min(RECONCILE_INTERVAL)
    }

    /// Waits until this node's memory budget has room for `bytes` and reserves them, renewing
    /// the job's lease meanwhile. Stops waiting if the job is cancelled, its lease is lost or
    /// this process shuts down.
    async fn reserve_memory(
        &self,
        job: &Job,
        bytes: u64,
        token: &Cancel,
    ) -> Result<crate::memory::Reservation, RunError> {
        let budget = &self.app.memory;
        if !budget.fits(bytes) {
            // Submit refuses such jobs; this node may have a smaller budget than the one that
            // accepted it.
            return Err(RunError::Failed(format!(
                "the job needs about {} of memory, more than this worker allows a job ({})",
                crate::memory::gigabytes(bytes),
                crate::memory::gigabytes(budget.total())
            )));
        }
        let reserve = budget.reserve(bytes);
        tokio::pin!(reserve);
        let mut tick = tokio::time::interval(self.renew_every());
        tick.tick().await;
        loop {
            tokio::select! {
                reservation = &mut reserve => return Ok(reservation),
                _ = tick.tick() => {
                    if token.is_fired() {
                        return Err(RunError::Stopped);
                    }
                    match self.app.jobs.renew(job.id, &self.id, self.app.config.lease).await {
                        Ok(true) => {}
                        Ok(false) => return Err(RunError::Stopped),
                        Err(e) => tracing::warn!(process_id = %job.id, error = %e, "could not renew the lease"),
                    }
                }
            }
        }
    }

    /// Works until `shutdown` turns true; a running job finishes first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.tick().await {
                Ok(Tick::Ran(_)) => {}
                Ok(Tick::Idle) => {
                    tokio::select! {
                        _ = self.app.new_work.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "worker error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// What the pipeline is to do for `job`.
fn spec<'a>(job: &'a Job, settings: &'a Settings, placement: Placement) -> pipeline::Job<'a> {
    pipeline::Job {
        endpoint: job.endpoint,
        model: &job.model,
        settings,
        placement,
        format: job.output_format,
    }
}

/// Returns jobs with expired leases to Pending (or fails them after [`MAX_ATTEMPTS`]).
pub async fn reap_expired_leases(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let every = (app.config.lease / 2).max(Duration::from_millis(100));
    // Scratch outputs of killed processes: anything older than a job may run is abandoned
    // (files of processes still running are younger).
    let scratch = app.config.data_dir.join("scratch");
    let abandoned = app.config.job_timeout + app.config.lease;
    let removed = tokio::task::spawn_blocking(move || remove_older(&scratch, abandoned)).await;
    if let Ok(n @ 1..) = removed {
        tracing::info!(files = n, "removed abandoned scratch outputs");
    }
    loop {
        match app.jobs.expire_leases(MAX_ATTEMPTS).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(jobs = n, "expired leases reclaimed");
                app.new_work.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "reaping expired leases"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Removes the files in `dir` last modified more than `age` ago; answers how many.
fn remove_older(dir: &std::path::Path, age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|a| a > age))
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_abandoned_scratch_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (old, fresh) = (dir.path().join("old"), dir.path().join("fresh"));
        std::fs::write(&fresh, b"x").unwrap();
        let file = std::fs::File::create(&old).unwrap();
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        assert_eq!(remove_older(dir.path(), Duration::from_secs(3600)), 1);
        assert!(!old.exists() && fresh.exists());
        assert_eq!(remove_older(&dir.path().join("missing"), Duration::ZERO), 0);
    }
}
