//! Enhance, enhance-gen and Transparency Upscale: denoise and deblock at the input resolution
//! (as much as the measured noise calls for), resample to the requested geometry, then restore
//! detail by back-projection (or unsharp masking where that does not apply).

use lucid_core::Endpoint;
use lucid_core::geometry::Placement;
use lucid_core::request::Settings;

use crate::raster::{Raster, bilateral, resample, unsharp};
use crate::{Ctx, ImagingError, dct};

/// Back-projection rounds at `sharpen = 1`; the default 0.5 gives two.
const BACK_PROJECTIONS_AT_FULL_SHARPEN: f32 = 4.0;

/// Largest output, in megapixels, that is back-projected.
const BACK_PROJECTION_MAX_MP: f64 = 100.0;

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

pub fn run(
    ctx: &Ctx,
    endpoint: Endpoint,
    model: &str,
    s: &Settings,
    img: Raster,
    placement: &Placement,
) -> Result<Raster, ImagingError> {
    let t = tuning(endpoint, model, s);
    let generative = endpoint == Endpoint::EnhanceGen;
    // Back-projection needs a plain upscale (no letterbox borders, no crop), and holds a second
    // output-sized raster, so very large outputs get unsharp masking instead.
    let back_projects = placement.offset_x == 0
        && placement.offset_y == 0
        && placement.width as usize > img.width
        && placement.megapixels() <= BACK_PROJECTION_MAX_MP;
    let iterations = if back_projects {
        (t.sharpen * BACK_PROJECTIONS_AT_FULL_SHARPEN).round() as usize
    } else {
        0
    };
    ctx.plan_passes(3 + 2 + 4 * iterations + if generative { 4 } else { 0 });
    // Edge-preserving smoothing before upscaling, so noise and JPEG blocks are not magnified.
    // Scaled by the measured noise: a clean source keeps all its detail.
    let noise = dct::noise_level(&img) * 255.0;
    let smoothing = t.denoise.max(t.fix_compression) * (noise / 4.0).min(1.0);
    let img = if smoothing > 0.02 {
        let sigma_r = 0.02 + 0.08 * smoothing;
        let mut smoothed = bilateral(ctx, &img, 2, 1.2, sigma_r)?;
        smoothed.blend_with(&img, smoothing.min(1.0));
        smoothed
    } else {
        img
    };
    let scale = (placement.scaled_width as f32 / img.width as f32).max(1.0);
    let mut out = resample(ctx, &img, placement)?;
    if iterations > 0 {
        back_project(ctx, &img, &mut out, placement, iterations)?;
    } else {
        // Sharpening radius follows the upscale factor: the resampler's softness grows with it.
        let sigma = 0.6 + 0.4 * scale.min(4.0);
        let threshold = if model == "CGI" { 0.0 } else { 0.004 };
        unsharp(ctx, &mut out, sigma, 1.6 * t.sharpen, threshold)?;
    }
    if generative {
        let detail =
            (s.number("creativity", 3.0) as f32 / 9.0 + s.number("detail", 0.5) as f32).min(1.5);
        unsharp(ctx, &mut out, 0.7, 0.5 * detail, 0.002)?;
        unsharp(ctx, &mut out, 3.0 * scale.min(4.0), 0.35 * detail, 0.0)?;
    }
    if model == "Text Refine" {
        // Contrast lift around mid-grey makes strokes darker and paper lighter.
        for p in out.data.chunks_exact_mut(out.channels) {
            for v in &mut p[..3] {
                *v = 0.5 + (*v - 0.5) * 1.12;
            }
        }
    }
    out.clamp();
    Ok(out)
}
