//! Denoise and denoise-gen: DCT shrinkage denoising ([`crate::dct`]) at the measured noise
//! level, so clean images are barely touched and noisy ones lose their grain but keep edges.

use lucid_core::request::Settings;

use crate::raster::{Raster, unsharp};
use crate::{Ctx, ImagingError, dct};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, img: Raster) -> Result<Raster, ImagingError> {
    // strength 0–1 (default 0.5) scales the noise level the filter assumes: 0.25× to 1.75×.
    let strength = 0.25 + 1.5 * s.number("strength", 0.5).clamp(0.0, 1.0) as f32;
    let original_detail = s.number("original_detail", 0.0).clamp(0.0, 1.0) as f32;
    let minor_deblur = s.number("minor_deblur", 0.0).clamp(0.0, 1.0) as f32;
    let sigma = dct::noise_level(&img) * strength;
    let threshold = match model {
        "Strong" | "Denoise Max" => 3.0,
        "Extreme" => 3.4,
        _ => dct::DEFAULT_THRESHOLD,
    };
    let deblur = if model == "Denoise Max" { 0.3 } else { 0.0 } + minor_deblur;
    ctx.plan_passes(dct::passes(&img, true) + if deblur > 0.0 { 2 } else { 0 });
    let mut out = dct::denoise(ctx, &img, sigma, threshold, true)?;
    if deblur > 0.0 {
        unsharp(ctx, &mut out, 1.0, deblur, sigma)?;
    }
    // `original_detail` gives back part of the removed texture.
    out.blend_with(&img, 1.0 - original_detail * 0.5);
    out.clamp();
    Ok(out)
}
