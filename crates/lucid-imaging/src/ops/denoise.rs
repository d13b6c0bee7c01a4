//! Denoise and denoise-gen: DCT shrinkage denoising ([`crate::dct`]) at the measured noise
//! level, so clean images are barely touched and noisy ones lose their grain but keep edges.

use lucid_core::request::Settings;

use crate::raster::{Raster, unsharp};
use crate::{Ctx, ImagingError, dct};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, img: Raster) -> Result<Raster, ImagingError> {
    // strength 0–1 (default 0.5) scales the noise level the filter assumes: 0.25× to 1.75×.
    let strength = 0.25 + 1.5 * s.number("strength", 0.5).clamp(0.0, 1.0) as f32;
    let original_detail = s.number("original_detail", 0.0).clamp(0.0, 1.0) as f32;
    let sigma = dct::noise_level(&img) * strength;
    let threshold = match model {
        "Strong" | "Denoise Max" => 3.0,
        "Extreme" => 3.4,
        _ => dct::DEFAULT_THRESHOLD,
    };
    let deblur = deblur(model, s);
    ctx.plan_passes(dct::passes(&img) + if deblur > 0.0 { 2 } else { 0 });
    // `original_detail` gives back part of the removed texture: blended in place as the
    // strips are written, unless the deblurring comes between (then a copy is kept).
    let opacity = 1.0 - original_detail * 0.5;
    let original = (deblur > 0.0 && opacity < 1.0).then(|| img.clone());
    let mut img = img;
    let in_place = if original.is_some() { 1.0 } else { opacity };
    dct::denoise(ctx, &mut img, sigma, threshold, true, in_place)?;
    if deblur > 0.0 {
        unsharp(ctx, &mut img, 1.0, deblur, sigma)?;
    }
    if let Some(original) = original {
        img.blend_with(&original, opacity);
    }
    img.clamp();
    Ok(img)
}

/// Unsharp masking after the denoise: Denoise Max's own, and `minor_deblur`.
fn deblur(model: &str, s: &Settings) -> f32 {
    let minor_deblur = s.number("minor_deblur", 0.0).clamp(0.0, 1.0) as f32;
    let own = if model == "Denoise Max" { 0.3 } else { 0.0 };
    own + minor_deblur
}

/// The most heap [`run`] takes for a `w × h` image of `channels`, the image included.
pub fn peak_memory(model: &str, s: &Settings, w: usize, h: usize, channels: usize) -> u64 {
    let raster = (w * h * channels * 4) as u64;
    let strips = dct::denoise_memory(w, channels);
    if deblur(model, s) <= 0.0 {
        return raster + strips;
    }
    // The unsharp mask's luma, its blur and the blur's scratch; and the copy for the blend.
    let copy = if s.number("original_detail", 0.0) > 0.0 {
        raster
    } else {
        0
    };
    raster + copy + strips.max(raster)
}
