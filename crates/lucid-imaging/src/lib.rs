//! lucid's pixels. [`codec`] probes, decodes (with limits, EXIF orientation) and encodes;
//! [`raster`] holds the working image and the filters the operations share; [`ops`] has one
//! module per family of models; [`pipeline::process`] runs decode → operation → encode with
//! progress reports and a [`Cancel`] token checked between row bands.
//!
//! ```
//! use lucid_imaging::{Cancel, pipeline::{Job, process}};
//! use lucid_core::{Endpoint, OutputFormat, geometry::Placement, request::Settings};
//! let png = lucid_imaging::codec::encode_test_png(8, 8);
//! let job = Job { endpoint: Endpoint::Lighting, model: "White Balance", settings: &Settings::default(),
//!     placement: Placement::identity(8, 8), format: OutputFormat::Png };
//! let out = process(&png, &job, &Cancel::new(), &|_| {}).unwrap();
//! assert!(out.starts_with(b"\x89PNG"));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

pub mod codec;
pub mod dct;
pub mod jpeg;
mod maxflow;
pub mod ops;
pub mod pipeline;
pub mod quality;
pub mod raster;
pub mod sr;

/// Failures of the imaging pipeline.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("cancelled")]
    Cancelled,
    #[error("image could not be decoded: {0}")]
    Decode(String),
    #[error("image has zero width or height")]
    ZeroDimensions,
    #[error("image of {width}x{height} exceeds the limits")]
    TooLarge { width: u32, height: u32 },
    #[error("image could not be encoded: {0}")]
    Encode(String),
    #[error("the job's threads could not be started: {0}")]
    Threads(String),
}

/// The threads of a job's pool: one more than the cores (see [`on_job_pool`]).
pub(crate) fn job_threads() -> usize {
    rayon::current_num_threads() + 1
}

/// Runs one job's `work` on a rayon pool of its own, one thread wider than the global pool
/// (the cores, or `RAYON_NUM_THREADS`): a streamed job's encoder waits for rows on one of its
/// threads while the others compute them (see [`codec::encode_rows_ahead`]).
///
/// On the one global pool, concurrent jobs' parallel passes queue behind each other, and a
/// thread waiting for its own pass runs other jobs' work meanwhile: a cancelled job could wait
/// seconds before its next band checks the token. On a pool of its own it waits at most one
/// of its own bands, and concurrent jobs share the cores as the OS shares their threads.
pub(crate) fn on_job_pool<R: Send>(
    work: impl FnOnce(&rayon::ThreadPool) -> Result<R, ImagingError> + Send,
) -> Result<R, ImagingError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job_threads())
        .thread_name(|i| format!("lucid-job-{i}"))
        .build()
        .map_err(|e| ImagingError::Threads(e.to_string()))?;
    pool.install(|| work(&pool))
}

/// A cancel token: firing it makes the pipeline stop at the next row band.
/// `is_fired` is one relaxed load, cheap enough for every band.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fire(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_fired(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn check(&self) -> Result<(), ImagingError> {
        if self.is_fired() {
            Err(ImagingError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Receives the fraction of the work done, 0.0 to 1.0, from any thread.
pub type Progress<'a> = &'a (dyn Fn(f32) + Sync);

/// What a running operation needs besides pixels: the cancel token and a progress sink that
/// maps each pass of rows onto its share of the job.
pub struct Ctx<'a> {
    cancel: &'a Cancel,
    progress: Progress<'a>,
    /// The job fraction covered by the operation stage (decode and encode take the rest).
    span: (f32, f32),
    passes_planned: AtomicUsize,
    passes_done: AtomicUsize,
    /// The highest fraction reported, as f32 bits: progress never goes backwards.
    reported: AtomicU32,
}

/// Rows per band: the unit of parallel work, of cancel checks and of progress.
pub const BAND_ROWS: usize = 32;

impl<'a> Ctx<'a> {
    pub fn new(cancel: &'a Cancel, progress: Progress<'a>, span: (f32, f32)) -> Self {
        Ctx {
            cancel,
            progress,
            span,
            passes_planned: AtomicUsize::new(1),
            passes_done: AtomicUsize::new(0),
            reported: AtomicU32::new(0),
        }
    }

    pub fn check(&self) -> Result<(), ImagingError> {
        self.cancel.check()
    }

    /// How many row passes the operation will make, so progress spreads evenly over them.
    pub fn plan_passes(&self, n: usize) {
        self.passes_planned.store(n.max(1), Ordering::Relaxed);
        self.passes_done.store(0, Ordering::Relaxed);
    }

    fn report(&self, fraction: f32) {
        // Non-negative f32 bit patterns order like the values, so fetch_max keeps the highest.
        let prev = self
            .reported
            .fetch_max(fraction.to_bits(), Ordering::Relaxed);
        if fraction.to_bits() > prev {
            (self.progress)(fraction);
        }
    }

    /// Runs `f(y, row)` for every row of `out` (rows of `row_len` values), in parallel bands.
    /// Checks the cancel token before each band and reports progress after it.
    /// Reports progress `within` (0–1) the current pass, for passes that do not run through
    /// [`Ctx::bands`].
    pub fn advance(&self, within: f32) {
        let planned = self.passes_planned.load(Ordering::Relaxed) as f32;
        let pass = self.passes_done.load(Ordering::Relaxed) as f32;
        let fraction = ((pass + within.clamp(0.0, 1.0)) / planned).min(1.0);
        self.report(self.span.0 + (self.span.1 - self.span.0) * fraction);
    }

    /// The same cancel token without progress reports or pass counting: for steps that run
    /// inside another pass's bands.
    pub fn quiet(&self) -> Ctx<'a> {
        const SILENT: Progress<'static> = &|_| {};
        Ctx::new(self.cancel, SILENT, (0.0, 0.0))
    }

    /// Ends a pass that reported through [`Ctx::advance`].
    pub fn pass_done(&self) {
        self.passes_done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rows<T: Send, F>(&self, out: &mut [T], row_len: usize, f: F) -> Result<(), ImagingError>
    where
        F: Fn(usize, &mut [T]) + Sync,
    {
        self.bands(out, row_len, BAND_ROWS, |y0, band| {
            for (i, row) in band.chunks_mut(row_len).enumerate() {
                f(y0 + i, row);
            }
            Ok(())
        })
    }

    /// Runs `f(y0, band)` for every band of `band_rows` rows of `out`, `y0` being the band's
    /// first row, in parallel: for filters that share work between the rows of a band. `f` may
    /// stop inside a long band (with [`Ctx::check`]'s error); the first error ends the pass.
    pub fn bands<T: Send, F>(
        &self,
        out: &mut [T],
        row_len: usize,
        band_rows: usize,
        f: F,
    ) -> Result<(), ImagingError>
    where
        F: Fn(usize, &mut [T]) -> Result<(), ImagingError> + Sync,
    {
        use rayon::prelude::*;
        let height = out.len() / row_len.max(1);
        let done = AtomicUsize::new(0);
        let planned = self.passes_planned.load(Ordering::Relaxed) as f32;
        let pass = self.passes_done.load(Ordering::Relaxed) as f32;
        out.par_chunks_mut(row_len * band_rows)
            .enumerate()
            .try_for_each(|(band, chunk)| {
                self.check()?;
                f(band * band_rows, chunk)?;
                let rows_done = done.fetch_add(chunk.len() / row_len, Ordering::Relaxed)
                    + chunk.len() / row_len;
                let within = ((pass + rows_done as f32 / height.max(1) as f32) / planned).min(1.0);
                self.report(self.span.0 + (self.span.1 - self.span.0) * within);
                Ok(())
            })?;
        self.passes_done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
