//! Sharpen and sharpen-gen: unsharp masking for the general models; Richardson–Lucy
//! deconvolution for the lens and motion blur models, which undo a blur rather than only
//! boosting edges.

use lucid_core::request::Settings;

use crate::raster::{Raster, bilateral, gaussian_psf, richardson_lucy, unsharp};
use crate::{Ctx, ImagingError};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, img: Raster) -> Result<Raster, ImagingError> {
    let strength = s.number("strength", 1.0) as f32 * s.number("focus_boost", 1.0) as f32;
    let opacity = s.number("opacity", 1.0) as f32;
    let denoise = s.number(
        "denoise_strength",
        if model == "Lens Blur V2" { 0.4 } else { 0.0 },
    ) as f32;
    let iterations = |base: f32| ((base * strength) as usize).max(1);
    let passes = match model {
        "Refocus" => 2 * iterations(10.0),
        "Lens Blur" | "Motion Blur" => 2 * iterations(12.0),
        "Lens Blur V2" => 2 * iterations(15.0),
        "Super Focus V2" | "Super Focus" => 2 * iterations(10.0) + 3,
        _ => 2,
    };
    ctx.plan_passes(passes + 2 + usize::from(denoise > 0.02));
    let original = img.clone();
    let mut img = if denoise > 0.02 {
        bilateral(ctx, &img, 2, 1.0, 0.02 + 0.06 * denoise)?
    } else {
        img
    };
    match model {
        "Refocus" => deconvolve(ctx, &mut img, &gaussian_psf(1.0), iterations(10.0))?,
        "Lens Blur" => deconvolve(ctx, &mut img, &gaussian_psf(1.5), iterations(12.0))?,
        "Lens Blur V2" => deconvolve(ctx, &mut img, &gaussian_psf(2.0), iterations(15.0))?,
        "Motion Blur" => {
            let psf = motion_psf(&img, 9);
            deconvolve(ctx, &mut img, &psf, iterations(12.0))?
        }
        "Super Focus V2" | "Super Focus" => {
            deconvolve(ctx, &mut img, &gaussian_psf(1.5), iterations(10.0))?;
            unsharp(ctx, &mut img, 0.6, 0.6 * strength, 0.003)?;
        }
        other => {
            let (sigma, amount, threshold) = match other {
                "Strong" => (1.2, 1.6, 0.003),
                "Natural" => (0.8, 0.5, 0.01),
                "Wildlife" => (0.6, 1.1, 0.004),
                "Portrait" => (1.0, 0.8, 0.02),
                _ => (1.0, 0.8, 0.004),
            };
            unsharp(ctx, &mut img, sigma, amount * strength, threshold)?;
        }
    }
    img.blend_with(&original, opacity);
    img.clamp();
    Ok(img)
}

/// Deconvolves luma with the PSF and carries the change into every channel.
fn deconvolve(
    ctx: &Ctx,
    img: &mut Raster,
    psf: &[(i64, i64, f32)],
    iterations: usize,
) -> Result<(), ImagingError> {
    let y = img.luma();
    let sharp = richardson_lucy(ctx, &y, img.width, img.height, psf, iterations)?;
    img.apply_luma_change(ctx, &y, &sharp)
}

/// A line PSF of `length` pixels along the blur direction. Motion blur suppresses gradients
/// along the motion, so the direction is the structure tensor's minor eigenvector.
pub fn motion_psf(img: &Raster, length: usize) -> Vec<(i64, i64, f32)> {
    let angle = blur_angle(&img.luma(), img.width, img.height);
    let (dx, dy) = (angle.cos(), angle.sin());
    let half = (length / 2) as f32;
    let mut taps: Vec<(i64, i64, f32)> = Vec::new();
    for i in 0..length {
        let t = i as f32 - half;
        let (x, y) = ((t * dx).round() as i64, (t * dy).round() as i64);
        match taps.iter_mut().find(|(a, b, _)| *a == x && *b == y) {
            Some(tap) => tap.2 += 1.0,
            None => taps.push((x, y, 1.0)),
        }
    }
    let sum: f32 = taps.iter().map(|t| t.2).sum();
    taps.into_iter().map(|(x, y, v)| (x, y, v / sum)).collect()
}

/// Direction (radians) along which gradients are weakest.
pub fn blur_angle(y: &[f32], w: usize, h: usize) -> f32 {
    let (mut sxx, mut syy, mut sxy) = (0.0f64, 0.0f64, 0.0f64);
    for row in 1..h.saturating_sub(1) {
        for col in 1..w.saturating_sub(1) {
            let gx = (y[row * w + col + 1] - y[row * w + col - 1]) as f64;
            let gy = (y[(row + 1) * w + col] - y[(row - 1) * w + col]) as f64;
            sxx += gx * gx;
            syy += gy * gy;
            sxy += gx * gy;
        }
    }
    // The major eigenvector's angle is the dominant gradient direction; the blur is across it.
    let major = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    (major + std::f64::consts::FRAC_PI_2) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizontal_smear_is_detected_as_horizontal() {
        // Vertical stripes smeared horizontally keep strong vertical... construct the opposite:
        // horizontal stripes have only vertical gradients, like an image blurred along x.
        let (w, h) = (64, 64);
        let y: Vec<f32> = (0..w * h)
            .map(|i| if (i / w) % 8 < 4 { 1.0 } else { 0.0 })
            .collect();
        let a = blur_angle(&y, w, h);
        assert!(a.cos().abs() > 0.99, "angle {a}");
    }
}
