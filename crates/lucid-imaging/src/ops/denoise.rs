//! Denoise and denoise-gen: bilateral filtering whose range is set from the measured noise
//! level, so clean images are barely touched and noisy ones are smoothed without blurring edges.

use lucid_core::request::Settings;

use crate::raster::{Raster, bilateral, noise_sigma, unsharp};
use crate::{Ctx, ImagingError};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, img: Raster) -> Result<Raster, ImagingError> {
    let strength = s.number("strength", 0.5) as f32 * 2.0;
    let original_detail = s.number("original_detail", 0.0) as f32;
    let minor_deblur = s.number("minor_deblur", 0.0) as f32;
    let sigma = noise_sigma(&img.luma(), img.width, img.height).max(0.004);
    let (radius, spatial, range_k, passes) = match model {
        "Strong" => (3, 2.0, 2.5, 1),
        "Extreme" => (3, 2.5, 3.0, 2),
        "Denoise Max" => (3, 2.0, 2.5, 2),
        _ => (2, 1.5, 2.0, 1),
    };
    ctx.plan_passes(passes + 3);
    let original = img.clone();
    let mut out = img;
    for _ in 0..passes {
        out = bilateral(
            ctx,
            &out,
            radius,
            spatial,
            sigma * range_k * strength.max(0.05),
        )?;
    }
    if model == "Denoise Max" || minor_deblur > 0.0 {
        unsharp(ctx, &mut out, 1.0, 0.3 + minor_deblur, sigma)?;
    }
    // `original_detail` gives back part of the removed texture.
    out.blend_with(&original, 1.0 - original_detail * 0.5);
    out.clamp();
    Ok(out)
}
