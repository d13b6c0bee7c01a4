//! Dust & scratch removal. Dust and scratches are small features far brighter or darker than
//! their surround, so they stand out in the morphological top-hats of the luma (the luma minus
//! its opening, its closing minus the luma), which keep only what is narrower than the
//! structuring element. So do eyes, teeth, catchlights and the grain of fur, and a filter
//! that replaced everything standing out (a thresholded median, as Photoshop's Dust &
//! Scratches does) erases them. Each connected feature is therefore judged on its own:
//! - its shape: a speck (small both ways) or a scratch (long and thin), not an eye or a
//!   letter (short and wide);
//! - its isolation: it must stand out from the luma of the ring around it by several of the
//!   ring's standard deviations (dust lands on sky and skin; an eye sits in structure), and
//!   from the top-hat responses (bright and dark) in that ring (a highlight among the grain of
//!   fur is grain).
//!
//! What passes, grown by a pixel for its soft edge, is filled from the pixels around it by
//! normalised convolution (a Gaussian average of the unmasked neighbours).

use lucid_core::request::Settings;

use crate::raster::{Raster, noise_sigma, percentile};
use crate::{Ctx, ImagingError};

/// How one model finds dust.
struct Finder {
    /// Radius of the square structuring element: features narrower than `2r + 1` respond.
    radius: usize,
    /// Largest extent (both ways) of a speck, in pixels.
    speck: usize,
    /// Least top-hat response of a dust pixel on a clean image at strength 0.5, on the 0–1 scale.
    contrast: f32,
    /// Ring pixels this close to a feature count only in its own polarity's response. The
    /// closing of a bright speck fills the corners of its square hull (and the opening of a
    /// dark one), a false response of the other polarity up to about 0.4 r around it: with the
    /// 11×11 element, large specks failed the isolation test on it (measured: the gap restores
    /// 0.6–1.4 dB more on soft-edged specks 5–10 px wide, 0–1.2 dB on the quality test's discs
    /// of radius 3–4). With the 7×7 one it gains nothing and lets more of the fur's grain
    /// through.
    corner_gap: usize,
}

impl Finder {
    fn for_model(model: &str) -> Finder {
        if model == "Dust-Scratch V2" {
            Finder {
                radius: 5,
                speck: 10,
                contrast: 0.08,
                corner_gap: 3,
            }
        } else {
            Finder {
                radius: 3,
                speck: 6,
                contrast: 0.08,
                corner_gap: 0,
            }
        }
    }
}

/// A scratch is at least this long (the longer side of its bounding box)…
const SCRATCH_LENGTH: usize = 25;
/// …and at most this thick on average (area over the bounding box's diagonal).
const SCRATCH_THICKNESS: f32 = 3.0;
/// Width of the ring around a feature that it is compared with.
const RING: usize = 5;
/// A feature's typical response must exceed this many standard deviations of the ring's luma…
const ABOVE_RING_SPREAD: f32 = 2.0;
/// …and this many times the ring's 90th-percentile top-hat response.
const ABOVE_RING_RESPONSE: f32 = 3.0;
/// Features larger than this are structure, whatever their shape.
const MAX_AREA: usize = 4000;

pub fn run(ctx: &Ctx, model: &str, s: &Settings, mut img: Raster) -> Result<Raster, ImagingError> {
    let (w, h) = (img.width, img.height);
    let finder = Finder::for_model(model);
    // strength 0–1 (default 0.5) divides the contrast a feature needs by 0.5 (up to 0.25) to 2.
    let sensitivity = (s.number("strength", 0.5) as f32 * 2.0).max(0.5);
    // Two top-hats of two rank filters, each along x and along y.
    ctx.plan_passes(8);
    let luma = img.luma();
    let threshold = (finder.contrast + 3.0 * noise_sigma(&luma, w, h)) / sensitivity;
    let bright = top_hat(ctx, &luma, w, h, finder.radius, true)?;
    let dark = top_hat(ctx, &luma, w, h, finder.radius, false)?;
    let mut mask = vec![false; w * h];
    for (response, other) in [(&bright, &dark), (&dark, &bright)] {
        ctx.check()?;
        for_each_feature(response, w, h, threshold, |feature| {
            if finder.is_dust(feature, w, &luma, response, other) {
                for &i in &feature.pixels {
                    mask[i] = true;
                }
            }
        });
    }
    drop((bright, dark, luma));
    // Grow by a pixel (a plus): the feature's soft edge must go too.
    let along_y = dilate(&mask, w, h, 1, false);
    let mut mask = dilate(&mask, w, h, 1, true);
    for (m, y) in mask.iter_mut().zip(along_y) {
        *m |= y;
    }
    ctx.check()?;
    fill(&mut img, &mask);
    Ok(img)
}

/// One connected feature of a top-hat response.
struct Feature {
    pixels: Vec<usize>,
    /// Bounding box: first column and row, width, height.
    bounds: (usize, usize, usize, usize),
}

impl Finder {
    fn is_dust(
        &self,
        f: &Feature,
        w: usize,
        luma: &[f32],
        response: &[f32],
        other: &[f32],
    ) -> bool {
        let area = f.pixels.len();
        let (x0, y0, bw, bh) = f.bounds;
        let extent = bw.max(bh);
        let speck = extent <= self.speck;
        let scratch = extent >= SCRATCH_LENGTH
            && area as f32 <= SCRATCH_THICKNESS * (bw as f32).hypot(bh as f32);
        if area > MAX_AREA || !(speck || scratch) {
            return false;
        }
        let mut strength: Vec<f32> = f.pixels.iter().map(|&i| response[i]).collect();
        let typical = *percentile(&mut strength, 0.75);
        // The ring: pixels within RING of the feature (Chebyshev), not in it, in a local grid.
        let h = luma.len() / w;
        let (gx, gy) = (x0.saturating_sub(RING), y0.saturating_sub(RING));
        let (gw, gh) = ((x0 + bw + RING).min(w) - gx, (y0 + bh + RING).min(h) - gy);
        let mut inside = vec![false; gw * gh];
        for &i in &f.pixels {
            inside[(i / w - gy) * gw + i % w - gx] = true;
        }
        let square = |r| dilate(&dilate(&inside, gw, gh, r, true), gw, gh, r, false);
        let (near, close) = (square(RING), square(self.corner_gap));
        let (mut n, mut sum, mut sum2) = (0.0f64, 0.0f64, 0.0f64);
        let mut ring_response = Vec::new();
        for (j, _) in near.iter().enumerate().filter(|(j, n)| **n && !inside[*j]) {
            let i = (gy + j / gw) * w + gx + j % gw;
            let v = f64::from(luma[i]);
            (n, sum, sum2) = (n + 1.0, sum + v, sum2 + v * v);
            ring_response.push(if close[j] {
                response[i]
            } else {
                response[i].max(other[i])
            });
        }
        if ring_response.is_empty() {
            return false;
        }
        let spread = ((sum2 / n - (sum / n).powi(2)).max(0.0)).sqrt() as f32;
        let busy = *percentile(&mut ring_response, 0.9);
        typical > ABOVE_RING_SPREAD * spread && typical > ABOVE_RING_RESPONSE * busy
    }
}

/// The `q` quantile of `v` (reordered).
/// A boolean grid dilated by `r` along x (`along_x`) or y: two calls make a square.
fn dilate(grid: &[bool], w: usize, h: usize, r: usize, along_x: bool) -> Vec<bool> {
    let mut out = vec![false; grid.len()];
    for (i, _) in grid.iter().enumerate().filter(|(_, g)| **g) {
        let (x, y) = (i % w, i / w);
        if along_x {
            for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                out[y * w + xx] = true;
            }
        } else {
            for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                out[yy * w + x] = true;
            }
        }
    }
    out
}

/// Calls `f` with each connected (8-neighbour) feature of `response` above `threshold`, one
/// at a time (a textured image has many).
fn for_each_feature(
    response: &[f32],
    w: usize,
    h: usize,
    threshold: f32,
    mut f: impl FnMut(&Feature),
) {
    let mut seen: Vec<bool> = response.iter().map(|v| *v <= threshold).collect();
    let mut stack = Vec::new();
    for start in 0..seen.len() {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut pixels = Vec::new();
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        while let Some(i) = stack.pop() {
            pixels.push(i);
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        f(&Feature {
            pixels,
            bounds: (x0, y0, x1 - x0 + 1, y1 - y0 + 1),
        });
    }
}

/// The white top-hat (`bright`: the plane minus its opening) or the black one (its closing
/// minus the plane), with a `(2r + 1)²` square.
fn top_hat(
    ctx: &Ctx,
    plane: &[f32],
    w: usize,
    h: usize,
    r: usize,
    bright: bool,
) -> Result<Vec<f32>, ImagingError> {
    // Opening: the minimum, then the maximum of that; closing the other way round.
    let first = rank_filter(ctx, plane, w, h, r, !bright)?;
    let mut out = rank_filter(ctx, &first, w, h, r, bright)?;
    drop(first);
    for (o, v) in out.iter_mut().zip(plane) {
        *o = if bright { v - *o } else { *o - v };
    }
    Ok(out)
}

/// The maximum (`max`) or minimum of each pixel's `(2r + 1)²` square, clamped at the borders:
/// along x, then along y.
fn rank_filter(
    ctx: &Ctx,
    src: &[f32],
    w: usize,
    h: usize,
    r: usize,
    max: bool,
) -> Result<Vec<f32>, ImagingError> {
    let pick = |a: f32, b: f32| if max { a.max(b) } else { a.min(b) };
    let mut along_x = vec![0.0; src.len()];
    ctx.rows(&mut along_x, w, |y, row| {
        let line = &src[y * w..][..w];
        for (x, o) in row.iter_mut().enumerate() {
            let window = &line[x.saturating_sub(r)..(x + r + 1).min(w)];
            *o = window.iter().copied().reduce(pick).unwrap_or(line[x]);
        }
    })?;
    let mut out = vec![0.0; src.len()];
    ctx.rows(&mut out, w, |y, row| {
        row.copy_from_slice(&along_x[y * w..][..w]);
        for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
            for (o, v) in row.iter_mut().zip(&along_x[yy * w..][..w]) {
                *o = pick(*o, *v);
            }
        }
    })?;
    Ok(out)
}

/// Fills the masked pixels' colour channels from the unmasked ones around them: a Gaussian
/// average of the unmasked pixels within 2σ, at the smallest σ (1, 2, 4 … 32 pixels) whose
/// window holds enough of them.
fn fill(img: &mut Raster, mask: &[bool]) {
    let (w, h, c) = (img.width, img.height, img.channels);
    let mut filled = Vec::new();
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (x, y) = (i % w, i / w);
        for sigma in [1usize, 2, 4, 8, 16, 32] {
            let r = 2 * sigma;
            let (mut acc, mut total) = ([0.0f32; 3], 0.0f32);
            for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                    let j = yy * w + xx;
                    if mask[j] {
                        continue;
                    }
                    let d2 = (xx.abs_diff(x).pow(2) + yy.abs_diff(y).pow(2)) as f32;
                    let weight = (-d2 / (2 * sigma * sigma) as f32).exp();
                    for (a, v) in acc.iter_mut().zip(&img.data[j * c..j * c + 3]) {
                        *a += weight * v;
                    }
                    total += weight;
                }
            }
            // Enough: about a pixel's worth of full weight, or the largest window.
            if total >= 1.0 || sigma == 32 {
                if total > 0.0 {
                    filled.push((i, acc.map(|a| a / total)));
                }
                break;
            }
        }
    }
    for (i, colour) in filled {
        img.data[i * c..i * c + 3].copy_from_slice(&colour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;

    fn grey(w: usize, h: usize) -> Raster {
        Raster {
            width: w,
            height: h,
            channels: 3,
            data: vec![0.4; w * h * 3],
        }
    }

    fn restore(img: Raster) -> Raster {
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        run(&ctx, "Dust-Scratch", &Settings::default(), img).unwrap()
    }

    #[test]
    fn removes_a_white_speck_and_a_dark_scratch_from_grey() {
        let (w, h) = (64, 64);
        let mut img = grey(w, h);
        for ch in 0..3 {
            img.data[(16 * w + 16) * 3 + ch] = 1.0;
            for x in 10..50 {
                img.data[(40 * w + x) * 3 + ch] = 0.05;
            }
        }
        let out = restore(img);
        let worst = out.data.iter().map(|v| (v - 0.4).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-3, "a pixel is still {worst} off the grey");
    }

    #[test]
    fn keeps_a_wide_dark_feature_and_specks_among_others() {
        let (w, h) = (64, 64);
        let mut img = grey(w, h);
        for ch in 0..3 {
            // An "eye": 12×5, neither a speck nor a scratch.
            for y in 20..25 {
                for x in 20..32 {
                    img.data[(y * w + x) * 3 + ch] = 0.1;
                }
            }
            // A grain of bright specks two pixels apart, like fur or a star field's texture.
            for y in (44..60).step_by(3) {
                for x in (4..60).step_by(3) {
                    img.data[(y * w + x) * 3 + ch] = 0.8;
                }
            }
        }
        let before = img.data.clone();
        let out = restore(img);
        assert_eq!(out.data, before);
    }
}
