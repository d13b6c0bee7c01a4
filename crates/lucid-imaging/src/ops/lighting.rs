//! Colour and lighting: automatic levels and gamma (Adjust), plus local contrast (Adjust V2),
//! gray-world white balance, and duotone colorization of luma.

use lucid_core::request::Settings;

use crate::raster::{LUMA, Raster, unsharp};
use crate::{Ctx, ImagingError};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, mut img: Raster) -> Result<Raster, ImagingError> {
    let strength = s.number("strength", 1.0) as f32;
    let original = img.clone();
    ctx.plan_passes(4);
    match model {
        "White Balance" => white_balance(&mut img),
        "Colorize" => colorize(&mut img),
        _ => {
            auto_levels(&mut img);
            if model == "Adjust V2" {
                let sigma = (img.width.min(img.height) as f32 * 0.02).clamp(2.0, 40.0);
                unsharp(ctx, &mut img, sigma, 0.35, 0.0)?;
            }
        }
    }
    ctx.check()?;
    img.blend_with(&original, strength);
    img.clamp();
    Ok(img)
}

fn percentile(hist: &[u64; 1024], total: u64, p: f64) -> f32 {
    let target = (total as f64 * p) as u64;
    let mut acc = 0;
    for (i, n) in hist.iter().enumerate() {
        acc += n;
        if acc > target {
            return i as f32 / 1023.0;
        }
    }
    1.0
}

/// Stretches luma's 0.5–99.5 % range to 0–1 (the same map on R, G and B keeps hue), then picks
/// the gamma that puts mean luma at 0.45.
pub fn auto_levels(img: &mut Raster) {
    let c = img.channels;
    let mut hist = [0u64; 1024];
    for p in img.data.chunks_exact(c) {
        let y = LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2];
        hist[(y.clamp(0.0, 1.0) * 1023.0) as usize] += 1;
    }
    let total = (img.data.len() / c) as u64;
    let lo = percentile(&hist, total, 0.005);
    let hi = percentile(&hist, total, 0.995).max(lo + 0.05);
    let mut mean = 0.0f64;
    for p in img.data.chunks_exact_mut(c) {
        for v in &mut p[..3] {
            *v = ((*v - lo) / (hi - lo)).clamp(0.0, 1.0);
        }
        mean += (LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2]) as f64;
    }
    let mean = (mean / total as f64).clamp(0.02, 0.98) as f32;
    let gamma = (0.45f32.ln() / mean.ln()).clamp(0.5, 2.0);
    for p in img.data.chunks_exact_mut(c) {
        for v in &mut p[..3] {
            *v = v.powf(gamma);
        }
    }
}

/// Gray world: gains that make the mean of unclipped pixels neutral, keeping its brightness.
pub fn white_balance(img: &mut Raster) {
    let c = img.channels;
    let mut sum = [0.0f64; 3];
    let mut n = 0u64;
    for p in img.data.chunks_exact(c) {
        let max = p[0].max(p[1]).max(p[2]);
        let min = p[0].min(p[1]).min(p[2]);
        if max < 0.98 && min > 0.02 {
            for ch in 0..3 {
                sum[ch] += p[ch] as f64;
            }
            n += 1;
        }
    }
    if n == 0 {
        return;
    }
    let mean = sum.map(|s| s / n as f64);
    let grey = (mean[0] + mean[1] + mean[2]) / 3.0;
    let gains = mean.map(|m| (grey / m.max(1e-4)).clamp(0.5, 2.0) as f32);
    for p in img.data.chunks_exact_mut(c) {
        for ch in 0..3 {
            p[ch] *= gains[ch];
        }
    }
}

/// Maps luma onto a duotone palette (cool shadows → warm mid-tones → warm whites), then
/// rescales so each pixel keeps its luma.
pub fn colorize(img: &mut Raster) {
    const STOPS: [(f32, [f32; 3]); 4] = [
        (0.0, [0.02, 0.03, 0.06]),
        (0.35, [0.30, 0.27, 0.30]),
        (0.65, [0.78, 0.62, 0.50]),
        (1.0, [1.0, 0.97, 0.92]),
    ];
    let c = img.channels;
    for p in img.data.chunks_exact_mut(c) {
        let y = (LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2]).clamp(0.0, 1.0);
        let i = STOPS
            .iter()
            .rposition(|(t, _)| *t <= y)
            .unwrap_or(0)
            .min(STOPS.len() - 2);
        let (t0, c0) = STOPS[i];
        let (t1, c1) = STOPS[i + 1];
        let f = ((y - t0) / (t1 - t0)).clamp(0.0, 1.0);
        let col: [f32; 3] = [0, 1, 2].map(|ch| c0[ch] + (c1[ch] - c0[ch]) * f);
        let cy = LUMA[0] * col[0] + LUMA[1] * col[1] + LUMA[2] * col[2];
        let k = if cy > 1e-4 { y / cy } else { 0.0 };
        for ch in 0..3 {
            p[ch] = col[ch] * k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_balance_neutralises_a_cast() {
        let mut img = Raster {
            width: 4,
            height: 1,
            channels: 3,
            data: vec![
                0.6, 0.4, 0.3, 0.3, 0.2, 0.15, 0.8, 0.55, 0.4, 0.5, 0.35, 0.25,
            ],
        };
        white_balance(&mut img);
        let mean = |ch: usize| img.data.iter().skip(ch).step_by(3).sum::<f32>() / 4.0;
        assert!((mean(0) - mean(2)).abs() < 0.01 && (mean(1) - mean(2)).abs() < 0.01);
    }

    #[test]
    fn colorize_turns_grey_into_colour_with_same_luma() {
        let mut img = Raster {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![0.5, 0.5, 0.5],
        };
        colorize(&mut img);
        let p = &img.data;
        assert!(p[0] - p[2] > 0.05, "{p:?}");
        assert!((LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2] - 0.5).abs() < 0.01);
    }
}
