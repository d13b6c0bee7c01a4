//! Matting: a foreground alpha matte. The background colour is the median of the border; each
//! pixel's distance to it is thresholded with Otsu's method; background is what the border
//! reaches by flood fill through background-like pixels, so enclosed regions of the subject stay;
//! the edge is feathered. `mode=mask` answers the matte itself as a grey image.

use std::collections::VecDeque;

use lucid_core::request::Settings;

use crate::raster::{Raster, gaussian_blur};
use crate::{Ctx, ImagingError};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, img: Raster) -> Result<Raster, ImagingError> {
    let (w, h, c) = (img.width, img.height, img.channels);
    ctx.plan_passes(2);
    let bg = border_median(&img);
    let dist: Vec<f32> = img
        .data
        .chunks_exact(c)
        .map(|p| ((p[0] - bg[0]).powi(2) + (p[1] - bg[1]).powi(2) + (p[2] - bg[2]).powi(2)).sqrt())
        .collect();
    let threshold = otsu(&dist).max(0.04);
    // Flood fill from the border through background-like pixels.
    let mut background = vec![false; w * h];
    let mut queue: VecDeque<usize> = VecDeque::new();
    let seed = |i: usize, background: &mut Vec<bool>, queue: &mut VecDeque<usize>| {
        if !background[i] && dist[i] < threshold {
            background[i] = true;
            queue.push_back(i);
        }
    };
    for x in 0..w {
        seed(x, &mut background, &mut queue);
        seed((h - 1) * w + x, &mut background, &mut queue);
    }
    for y in 0..h {
        seed(y * w, &mut background, &mut queue);
        seed(y * w + w - 1, &mut background, &mut queue);
    }
    while let Some(i) = queue.pop_front() {
        let (x, y) = (i % w, i / w);
        if x > 0 {
            seed(i - 1, &mut background, &mut queue);
        }
        if x + 1 < w {
            seed(i + 1, &mut background, &mut queue);
        }
        if y > 0 {
            seed(i - w, &mut background, &mut queue);
        }
        if y + 1 < h {
            seed(i + w, &mut background, &mut queue);
        }
    }
    ctx.check()?;
    let hard: Vec<f32> = background
        .iter()
        .map(|b| if *b { 0.0 } else { 1.0 })
        .collect();
    let feather = if model == "RemoveBG" { 0.7 } else { 1.2 };
    let alpha = gaussian_blur(ctx, &hard, w, h, 1, feather)?;
    let mask_only = s
        .text("mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("mask") || m.eq_ignore_ascii_case("alpha"));
    let mut out = Raster::new(w, h, 4);
    for (i, p) in img.data.chunks_exact(c).enumerate() {
        let o = &mut out.data[i * 4..i * 4 + 4];
        let a = alpha[i] * if c == 4 { p[3] } else { 1.0 };
        if mask_only {
            o.copy_from_slice(&[a, a, a, 1.0]);
        } else {
            o.copy_from_slice(&[p[0], p[1], p[2], a]);
        }
    }
    Ok(out)
}

fn border_median(img: &Raster) -> [f32; 3] {
    let (w, h, c) = (img.width, img.height, img.channels);
    let mut samples: [Vec<f32>; 3] = Default::default();
    let mut push = |x: usize, y: usize| {
        for ch in 0..3 {
            samples[ch].push(img.data[(y * w + x) * c + ch]);
        }
    };
    for x in 0..w {
        push(x, 0);
        push(x, h - 1);
    }
    for y in 0..h {
        push(0, y);
        push(w - 1, y);
    }
    samples.map(|mut v| {
        let mid = v.len() / 2;
        *v.select_nth_unstable_by(mid, f32::total_cmp).1
    })
}

/// Otsu's threshold over values in 0–√3.
fn otsu(values: &[f32]) -> f32 {
    const BINS: usize = 256;
    let max = 3f32.sqrt();
    let mut hist = [0u64; BINS];
    for v in values {
        hist[((v / max).clamp(0.0, 1.0) * (BINS - 1) as f32) as usize] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, n)| i as f64 * *n as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0);
    for (t, n) in hist.iter().enumerate() {
        w0 += *n as f64;
        sum0 += t as f64 * *n as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1).powi(2);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    (best_t as f32 + 0.5) / (BINS - 1) as f32 * max
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;

    #[test]
    fn red_disc_on_white_becomes_opaque_disc_on_transparent() {
        let (w, h) = (40, 40);
        let mut img = Raster {
            width: w,
            height: h,
            channels: 3,
            data: vec![1.0; w * h * 3],
        };
        for y in 0..h {
            for x in 0..w {
                if (x as i64 - 20).pow(2) + (y as i64 - 20).pow(2) < 100 {
                    img.data[(y * w + x) * 3 + 1] = 0.0;
                    img.data[(y * w + x) * 3 + 2] = 0.0;
                }
            }
        }
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let out = run(&ctx, "Object", &Settings::default(), img).unwrap();
        assert!(out.data[(20 * w + 20) * 4 + 3] > 0.99);
        assert!(out.data[3] < 0.01);
    }
}
