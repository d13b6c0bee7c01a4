//! Enhance, enhance-gen and Transparency Upscale: denoise and deblock at the input resolution
//! (as much as the measured noise calls for), upscale by the learned ×2 network as many times
//! as the output calls for, then resample to the requested geometry. With `upscaler=lanczos`
//! (or outputs too large for the network) the resample works from the source and detail is
//! restored by back-projection (or unsharp masking where that does not apply).

use lucid_core::Endpoint;
use lucid_core::geometry::Placement;
use lucid_core::request::Settings;

use super::{ByteBands, Output, byte_bands};
use crate::codec::RowSource;
use crate::raster::{Raster, bilateral, gaussian_radius, resample, resample_into, unsharp};
use crate::sr::{self, Network};
use crate::{Ctx, ImagingError, dct};

/// Back-projection rounds at `sharpen = 1`; the default 0.5 gives two.
const BACK_PROJECTIONS_AT_FULL_SHARPEN: f32 = 4.0;

/// Largest output, in megapixels, that is back-projected.
const BACK_PROJECTION_MAX_MP: f64 = 100.0;

/// Largest image, in megapixels, that the learned ×2 steps produce (it is held whole, with
/// its planes); outputs needing more, or larger than [`BACK_PROJECTION_MAX_MP`], are streamed
/// from the source by Lanczos-3 instead.
const LEARNED_MAX_MP: f64 = 64.0;

/// How many learned ×2 steps go before the final resample: until the image is within 10 %
/// of the output's scale (or past it; the resample then shrinks it a little).
fn learned_steps(width: usize, height: usize, placement: &Placement) -> usize {
    if placement.megapixels() > BACK_PROJECTION_MAX_MP {
        return 0;
    }
    let scale = (placement.scaled_width as f64 / width as f64)
        .max(placement.scaled_height as f64 / height as f64);
    let (mut steps, mut factor) = (0, 1.0);
    while factor < 0.9 * scale
        && (width * height) as f64 * factor * factor * 4.0 <= LEARNED_MAX_MP * 1e6
    {
        factor *= 2.0;
        steps += 1;
    }
    steps
}

/// Iterative back-projection (Irani & Peleg 1991): shrinks the estimate back to the source's
/// size, upsamples what it got wrong and adds it, so the result's own downscale matches the
/// source. Restores detail that plain interpolation smooths away without inventing any.
fn back_project(
    ctx: &Ctx,
    source: &Raster,
    out: &mut Raster,
    placement: &Placement,
    iterations: usize,
) -> Result<(), ImagingError> {
    let source_size = Placement::identity(source.width as u32, source.height as u32);
    for _ in 0..iterations {
        let mut error = resample(ctx, out, &source_size)?;
        for (e, s) in error.data.iter_mut().zip(&source.data) {
            *e = s - *e;
        }
        let correction = resample(ctx, &error, placement)?;
        for (o, c) in out.data.iter_mut().zip(&correction.data) {
            *o += c;
        }
    }
    Ok(())
}

/// Per-model defaults for the three documented settings.
struct Tuning {
    denoise: f32,
    fix_compression: f32,
    sharpen: f32,
}

fn tuning(endpoint: Endpoint, model: &str, s: &Settings) -> Tuning {
    let (d, f, sh) = match (endpoint, model) {
        (Endpoint::Enhance, "Low Resolution V2") => (0.35, 0.5, 0.8),
        (Endpoint::Enhance, "CGI") => (0.0, 0.2, 0.7),
        (Endpoint::Enhance, "High Fidelity V2") => (0.1, 0.1, 0.3),
        (Endpoint::Enhance, "Text Refine") => (0.3, 0.5, 0.9),
        (Endpoint::Tool, _) => (0.0, 0.0, 0.4),
        (Endpoint::EnhanceGen, _) => (0.25, 0.3, 0.6),
        _ => (0.2, 0.3, 0.5),
    };
    // Text Refine's page names its settings differently.
    let denoise = s.number("denoise", s.number("denoise_strength", d)) as f32;
    let fix_compression = s.number("fix_compression", s.number("decompression_strength", f)) as f32;
    let sharpen = s.number("sharpen", s.number("deblur_strength", sh)) as f32;
    let strength = s.number("strength", 1.0) as f32;
    Tuning {
        denoise: denoise * strength,
        fix_compression: fix_compression * strength,
        sharpen: sharpen * strength,
    }
}

/// What follows the resample: unsharp masking (unless back-projected), the generative models'
/// extra detail, Text Refine's contrast lift, and clamping. Each step only looks a few rows
/// away, so it runs on bands of rows as well as on the whole image.
pub(crate) struct Finish {
    /// (sigma, amount, threshold) of the unsharp mask, if one applies.
    pub sharpen: Option<(f32, f32, f32)>,
    /// Extra detail for enhance-gen: (fine amount, coarse sigma, coarse amount).
    pub generative: Option<(f32, f32, f32)>,
    pub text_refine: bool,
    /// How much of the change is kept (the `opacity` setting; 1: all of it).
    pub opacity: f32,
}

impl Finish {
    fn masks(&self) -> Vec<(f32, f32, f32)> {
        let mut masks: Vec<_> = self.sharpen.into_iter().collect();
        if let Some((fine, coarse_sigma, coarse)) = self.generative {
            masks.push((0.7, fine, 0.002));
            masks.push((coarse_sigma, coarse, 0.0));
        }
        masks.retain(|&(_, amount, _)| amount > 0.0);
        masks
    }

    /// Rows above and below a band that its result depends on: the blur radii, added up.
    fn halo(&self) -> usize {
        self.masks()
            .iter()
            .map(|&(sigma, _, _)| gaussian_radius(sigma))
            .sum()
    }

    fn apply(&self, ctx: &Ctx, out: &mut Raster) -> Result<(), ImagingError> {
        let original = (self.opacity < 1.0).then(|| out.clone());
        for (sigma, amount, threshold) in self.masks() {
            unsharp(ctx, out, sigma, amount, threshold)?;
        }
        if self.text_refine {
            // Contrast lift around mid-grey makes strokes darker and paper lighter.
            for p in out.data.chunks_exact_mut(out.channels) {
                for v in &mut p[..3] {
                    *v = 0.5 + (*v - 0.5) * 1.12;
                }
            }
        }
        if let Some(original) = original {
            out.blend_with(&original, self.opacity);
        }
        out.clamp();
        Ok(())
    }
}

/// The most heap [`streamed`] rows take beside their source, `width` wide: a chunk with its
/// halo and what the finishing steps hold while they run (the encoder's bands are counted by
/// [`crate::pipeline::peak_memory`]).
pub(crate) fn streamed_memory(width: u64, channels: usize) -> u64 {
    2 * width * (CHUNK_ROWS as u64 + 64) * channels as u64 * 4
}

/// The placement's rows of `source` with `finish` applied, computed a chunk at a time as the
/// encoder asks (see [`EnhanceRows`]).
pub(crate) fn streamed<'a>(
    ctx: &'a Ctx<'a>,
    source: Raster,
    placement: Placement,
    finish: Finish,
) -> Output<'a> {
    Output::Rows(Box::new(EnhanceRows {
        ctx,
        chunk: Raster::new(placement.width as usize, 0, source.channels),
        source,
        placement,
        finish,
        chunk_y0: 0,
        chunk_skip: 0,
        chunk_rows: 0,
    }))
}

/// Output rows computed per chunk (plus the finishing steps' halo) as the encoder asks. Not
/// the encoder's band height ([`crate::codec::band_rows`]), which shrinks on wide images: the
/// halo, computed twice at every chunk border, stays a small share of a 128-row chunk.
const CHUNK_ROWS: usize = 128;

/// The resample and its finishing steps, computed a chunk of output rows at a time so the
/// output is never held whole: memory follows the output's width, not its area.
struct EnhanceRows<'a> {
    ctx: &'a Ctx<'a>,
    source: Raster,
    placement: Placement,
    finish: Finish,
    /// The rows computed last: `chunk_skip` halo rows, then the `chunk_rows` final rows from
    /// output row `chunk_y0`, then halo rows.
    chunk: Raster,
    chunk_y0: usize,
    chunk_skip: usize,
    chunk_rows: usize,
}

impl RowSource for EnhanceRows<'_> {
    fn width(&self) -> usize {
        self.placement.width as usize
    }

    fn height(&self) -> usize {
        self.placement.height as usize
    }

    fn channels(&self) -> usize {
        self.source.channels
    }

    fn fill(&mut self, y0: usize, band: &mut Raster) -> Result<(), ImagingError> {
        let height = self.height();
        let row_len = band.row_len();
        if self.finish.halo() == 0 {
            // No step looks past its own row: the band is computed where it lies.
            self.ctx.check()?;
            resample_into(&self.source, &self.placement, y0, &mut band.data)?;
            self.finish.apply(&self.ctx.quiet(), band)?;
            self.ctx.advance((y0 + band.height) as f32 / height as f32);
            return Ok(());
        }
        let mut y = y0;
        while y < y0 + band.height {
            if !(self.chunk_y0..self.chunk_y0 + self.chunk_rows).contains(&y) {
                self.ctx.check()?;
                let end = (y + CHUNK_ROWS).min(height);
                let halo = self.finish.halo();
                let (a, b) = (y.saturating_sub(halo), (end + halo).min(height));
                // The chunk's buffer is filled again, and its halo rows stay in it (skipped
                // when copying), which saves moving the chunk down.
                self.chunk.set_height(b - a);
                resample_into(&self.source, &self.placement, a, &mut self.chunk.data)?;
                self.finish.apply(&self.ctx.quiet(), &mut self.chunk)?;
                (self.chunk_y0, self.chunk_skip, self.chunk_rows) = (y, y - a, end - y);
                self.ctx.advance(end as f32 / height as f32);
            }
            let n = (self.chunk_y0 + self.chunk_rows).min(y0 + band.height) - y;
            let from = (y - self.chunk_y0 + self.chunk_skip) * row_len;
            band.data[(y - y0) * row_len..][..n * row_len]
                .copy_from_slice(&self.chunk.data[from..from + n * row_len]);
            y += n;
        }
        Ok(())
    }
}

/// The path a job takes, decided from its geometry and settings before any pixel is read.
struct Plan {
    tuning: Tuning,
    /// Learned ×2 steps before the final resample.
    learned: usize,
    /// Back-projection rounds (0: the result is streamed to the encoder instead).
    iterations: usize,
}

fn plan(
    endpoint: Endpoint,
    model: &str,
    s: &Settings,
    (width, height): (usize, usize),
    placement: &Placement,
) -> Plan {
    let mut tuning = tuning(endpoint, model, s);
    let learned = match s.text("upscaler") {
        Some("lanczos") => 0,
        _ => learned_steps(width, height, placement),
    };
    if learned > 0 {
        // The network restores detail itself; only an explicit `sharpen` adds to it.
        let explicit = s.number("sharpen", s.number("deblur_strength", 0.0));
        tuning.sharpen = explicit as f32 * s.number("strength", 1.0) as f32;
    }
    // Back-projection needs a plain upscale (no letterbox borders, no crop), and holds the
    // whole output twice over, so very large outputs get unsharp masking instead.
    let back_projects = learned == 0
        && placement.offset_x == 0
        && placement.offset_y == 0
        && placement.width as usize > width
        && placement.megapixels() <= BACK_PROJECTION_MAX_MP;
    let iterations = if back_projects {
        (tuning.sharpen * BACK_PROJECTIONS_AT_FULL_SHARPEN).round() as usize
    } else {
        0
    };
    Plan {
        tuning,
        learned,
        iterations,
    }
}

/// The most heap [`run`] holds at once, its input raster included (the encoder's bands are
/// counted by [`crate::pipeline::peak_memory`]).
pub(crate) fn peak_memory(
    endpoint: Endpoint,
    model: &str,
    s: &Settings,
    input: &crate::codec::ImageInfo,
    placement: &Placement,
) -> u64 {
    let (w, h) = (input.width as usize, input.height as usize);
    let plan = plan(endpoint, model, s, (w, h), placement);
    let channels = if input.alpha { 4 } else { 3 };
    let raster = |pixels: u64| pixels * channels as u64 * 4;
    let input_pixels = (w * h) as u64;
    // The smoothing (whether it runs depends on the noise measured later) holds its result
    // beside the source, and the noise measurement a plane.
    let smoothing = if plan.tuning.denoise.max(plan.tuning.fix_compression) > 0.0 {
        5 * raster(input_pixels) / 2
    } else {
        raster(input_pixels)
    };
    // Each learned step holds its input beside what the upscale takes.
    let mut learned = 0;
    let (mut sw, mut sh) = (w, h);
    for _ in 0..plan.learned {
        let step = sr::upscale_memory(Network::builtin(), sw, sh, channels, crate::job_threads());
        learned = learned.max(raster((sw * sh) as u64) + step);
        (sw, sh) = (2 * sw, 2 * sh);
    }
    let pixels = (sw * sh) as u64;
    let out_pixels = placement.width as u64 * placement.height as u64;
    let resample = if plan.iterations > 0 {
        // Source, the estimate, its error at the source's size and the correction.
        raster(pixels) + 2 * raster(out_pixels) + raster(input_pixels.min(pixels))
    } else {
        // Source and a chunk of output rows (the encoder's buffers are counted by the caller).
        raster(pixels) + streamed_memory(placement.width as u64, channels)
    };
    smoothing.max(learned).max(resample)
}

/// The steps after the resample, for this job.
fn finish(
    endpoint: Endpoint,
    model: &str,
    s: &Settings,
    t: &Tuning,
    iterations: usize,
    width: usize,
    placement: &Placement,
) -> Finish {
    let scale = (placement.scaled_width as f32 / width as f32).max(1.0);
    let detail =
        (s.number("creativity", 3.0) as f32 / 9.0 + s.number("detail", 0.5) as f32).min(1.5);
    Finish {
        // Sharpening radius follows the upscale factor: the resampler's softness grows with it.
        sharpen: (iterations == 0).then(|| {
            let threshold = if model == "CGI" { 0.0 } else { 0.004 };
            (0.6 + 0.4 * scale.min(4.0), 1.6 * t.sharpen, threshold)
        }),
        generative: (endpoint == Endpoint::EnhanceGen)
            .then(|| (0.5 * detail, 3.0 * scale.min(4.0), 0.35 * detail)),
        text_refine: model == "Text Refine",
        opacity: 1.0,
    }
}

/// Whether the job is a plain Lanczos-3 resample (`upscaler=lanczos` with `sharpen`,
/// `denoise` and `fix_compression` at 0, on a model without extra steps): nothing but the
/// resample happens, so it can run on the decoded bytes ([`resample_bytes`]).
pub(crate) fn only_resamples(
    endpoint: Endpoint,
    model: &str,
    s: &Settings,
    (width, height): (usize, usize),
    placement: &Placement,
) -> bool {
    let plan = plan(endpoint, model, s, (width, height), placement);
    let t = &plan.tuning;
    let finish = finish(endpoint, model, s, t, plan.iterations, width, placement);
    plan.learned == 0
        && plan.iterations == 0
        && t.denoise.max(t.fix_compression) <= 0.0
        && finish.masks().is_empty()
        && !finish.text_refine
}

/// The rows of a plain resample computed from the decoded 8-bit image, as the encoder asks:
/// no f32 copy of the image, 8-bit resizing (a quarter of the bytes to move) and bands the
/// encoders take as they are. Matches the f32 resample to within a level of rounding.
pub(crate) fn resample_bytes<'a>(
    ctx: &'a Ctx<'a>,
    source: Raster<u8>,
    placement: Placement,
) -> Output<'a> {
    byte_bands(ctx, source, ResampleBytes(placement))
}

/// The most heap [`resample_bytes`] holds for an 8-bit input whose decode takes `decode`
/// ([`crate::codec::ImageInfo::decode_memory`], the decoded bytes among it): that, and the
/// resizer's scratch for a chunk of rows (the encoder's bands are counted by
/// [`crate::pipeline::peak_memory`]).
pub(crate) fn resample_bytes_memory(decode: u64, channels: usize, placement: &Placement) -> u64 {
    // Its chunks are bytes, not floats.
    decode + streamed_memory(placement.width as u64, channels) / 4
}

struct ResampleBytes(Placement);

impl ByteBands for ResampleBytes {
    fn size(&self, _: &Raster<u8>) -> (usize, usize) {
        (self.0.width as usize, self.0.height as usize)
    }

    fn fill(
        &mut self,
        _: &Ctx,
        bytes: &Raster<u8>,
        y0: usize,
        band: &mut Raster<u8>,
    ) -> Result<(), ImagingError> {
        resample_into(bytes, &self.0, y0, &mut band.data)
    }
}

pub fn run<'a>(
    ctx: &'a Ctx<'a>,
    endpoint: Endpoint,
    model: &str,
    s: &Settings,
    img: Raster,
    placement: &Placement,
) -> Result<Output<'a>, ImagingError> {
    let Plan {
        tuning: t,
        learned,
        iterations,
    } = plan(endpoint, model, s, (img.width, img.height), placement);
    // Edge-preserving smoothing before upscaling, so noise and JPEG blocks are not magnified.
    // Scaled by the measured noise: a clean source keeps all its detail.
    let weight = t.denoise.max(t.fix_compression);
    let smoothing = if weight > 0.0 {
        weight * (dct::noise_level(&img) * 255.0 / 4.0).min(1.0)
    } else {
        0.0
    };
    let smooths = smoothing > 0.02;
    let finish = finish(endpoint, model, s, &t, iterations, img.width, placement);
    // Passes: the smoothing, then the streamed rows as one, or the resample, two per
    // back-projection round and three per unsharp mask.
    ctx.plan_passes(
        smooths as usize
            + learned
            + if iterations == 0 {
                1
            } else {
                1 + 2 * iterations + 3 * finish.masks().len()
            },
    );
    let mut img = if smooths {
        let sigma_r = 0.02 + 0.08 * smoothing;
        let mut smoothed = bilateral(ctx, &img, 2, 1.2, sigma_r)?;
        smoothed.blend_with(&img, smoothing.min(1.0));
        smoothed
    } else {
        img
    };
    for _ in 0..learned {
        img = sr::upscale(ctx, Network::builtin(), &img)?;
    }
    if iterations == 0 {
        return Ok(streamed(ctx, img, *placement, finish));
    }
    let mut out = resample(ctx, &img, placement)?;
    back_project(ctx, &img, &mut out, placement, iterations)?;
    finish.apply(ctx, &mut out)?;
    Ok(Output::Raster(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;
    use crate::raster::max_abs_diff;

    /// The streamed rows equal the same steps run on the whole image: chunks join without seams.
    #[test]
    fn streamed_rows_match_the_whole_image() {
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let (w, h) = (100, 90);
        let mut img = Raster::new(w, h, 3);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = ((i * 7919) % 251) as f32 / 250.0;
        }
        let placements = [
            Placement::compute(100, 90, Some(340), Some(300), true).unwrap(), // crop, 300 rows
            Placement::compute(100, 90, Some(330), Some(420), false).unwrap(), // letterbox
            Placement::compute(100, 90, Some(40), None, false).unwrap(),      // downscale
            Placement::identity(100, 90), // the sharpen models: the rows themselves
        ];
        for placement in placements {
            let finish = || Finish {
                sharpen: Some((1.4, 0.8, 0.004)),
                generative: Some((0.4, 6.0, 0.3)),
                text_refine: true,
                opacity: 0.7,
            };
            let mut whole = resample(&ctx, &img, &placement).unwrap();
            finish().apply(&ctx, &mut whole).unwrap();
            let streamed = streamed(&ctx, img.clone(), placement, finish())
                .into_raster()
                .unwrap();
            let worst = max_abs_diff(&whole.data, &streamed.data);
            assert!(worst < 1e-4, "{placement:?}: off by {worst}");
        }
    }
}
