//! Denoising by shrinkage in the 8×8 DCT of overlapping blocks (Yu & Sapiro, "DCT image
//! denoising", IPOL 2011), with two steps borrowed from BM3D: blocks are averaged back with
//! weights that favour sparse (confident) blocks, and an optional second pass shrinks each
//! coefficient by the empirical Wiener factor computed from the first pass's estimate.
//!
//! Colour is first turned into three orthonormal opponent planes (a luma-like mean and two
//! differences), so independent noise of σ per RGB channel stays σ in every plane and
//! each plane is denoised on its own. Alpha is left alone.

use std::f32::consts::FRAC_1_SQRT_2;

use crate::raster::Raster;
use crate::{Ctx, ImagingError};

const N: usize = 8;
type Block = [[f32; N]; N];

/// Step between the corners of neighbouring blocks in each pass. 1 is the textbook method.
/// The hard pass only pilots the Wiener pass, so it can take every other block (a quarter of
/// the work) at a cost of about 0.05 dB; the Wiener pass at a step of 2 would lose 0.2 dB.
fn stride(shrink: &Shrink) -> usize {
    match shrink {
        Shrink::Hard { .. } => 2,
        Shrink::Wiener { .. } => 1,
    }
}

/// Hard threshold of the first pass, in multiples of σ (the paper's choice is 3).
pub const DEFAULT_THRESHOLD: f32 = 2.7;

/// Orthonormal colour transform: rows are unit vectors, so the inverse is the transpose.
const OPPONENT: [[f32; 3]; 3] = [
    [0.577_350_3, 0.577_350_3, 0.577_350_3],
    [FRAC_1_SQRT_2, 0.0, -FRAC_1_SQRT_2],
    [0.408_248_3, -0.816_496_6, 0.408_248_3],
];

/// Orthonormal DCT-II basis: `C[k][n] = a_k cos(π (2n + 1) k / 16)`.
fn basis() -> Block {
    let mut c = [[0.0; N]; N];
    for (k, row) in c.iter_mut().enumerate() {
        let a = if k == 0 {
            (1.0 / N as f64).sqrt()
        } else {
            (2.0 / N as f64).sqrt()
        };
        for (n, v) in row.iter_mut().enumerate() {
            *v = (a * (std::f64::consts::PI * (2 * n + 1) as f64 * k as f64 / (2 * N) as f64).cos())
                as f32;
        }
    }
    c
}

/// The basis and its transpose, so every step of the transforms is an 8-wide row update
/// (`row += scalar * row`) that the compiler turns into one vector multiply-add.
struct Dct {
    c: Block,
    ct: Block,
}

impl Dct {
    fn new() -> Self {
        let c = basis();
        let mut ct = [[0.0; N]; N];
        for k in 0..N {
            for n in 0..N {
                ct[n][k] = c[k][n];
            }
        }
        Dct { c, ct }
    }

    /// `C x Cᵀ`.
    #[inline(always)]
    fn forward(&self, x: &Block) -> Block {
        let mut t = [[0.0; N]; N];
        for r in 0..N {
            for n in 0..N {
                for k in 0..N {
                    t[r][k] += x[r][n] * self.ct[n][k];
                }
            }
        }
        let mut b = [[0.0; N]; N];
        for k in 0..N {
            for r in 0..N {
                for l in 0..N {
                    b[k][l] += self.c[k][r] * t[r][l];
                }
            }
        }
        b
    }

    /// `Cᵀ b C`, the inverse of [`Dct::forward`].
    #[inline(always)]
    fn inverse(&self, b: &Block) -> Block {
        let mut u = [[0.0; N]; N];
        for r in 0..N {
            for k in 0..N {
                for l in 0..N {
                    u[r][l] += self.ct[r][k] * b[k][l];
                }
            }
        }
        let mut y = [[0.0; N]; N];
        for r in 0..N {
            for l in 0..N {
                for n in 0..N {
                    y[r][n] += u[r][l] * self.c[l][n];
                }
            }
        }
        y
    }
}

/// Block corners along one axis: every `stride`, plus the last possible one so the far
/// border is covered.
fn corners(len: usize, stride: usize) -> Vec<usize> {
    let last = len - N;
    let mut v: Vec<usize> = (0..=last).step_by(stride).collect();
    if v.last() != Some(&last) {
        v.push(last);
    }
    v
}

#[inline(always)]
fn load(plane: &[f32], w: usize, x0: usize, y0: usize) -> Block {
    // Fixed-size rows copy as two vector moves rather than a call to memmove.
    std::array::from_fn(|r| {
        let at = (y0 + r) * w + x0;
        plane[at..at + N].try_into().unwrap()
    })
}

/// What a pass does to each block's coefficients.
#[derive(Clone, Copy)]
enum Shrink<'a> {
    /// Zero the coefficients below `threshold` (the DC term is kept).
    Hard { threshold: f32 },
    /// Multiply each coefficient by `P² / (P² + σ²)`, `P` being the pilot's coefficient.
    Wiener { pilot: &'a [f32], sigma: f32 },
}

/// One pass over a plane: every block transformed, shrunk, transformed back and averaged
/// into the pixels it covers, weighted by the inverse of its remaining energy.
fn pass(
    ctx: &Ctx,
    plane: &[f32],
    w: usize,
    h: usize,
    shrink: Shrink,
) -> Result<Vec<f32>, ImagingError> {
    let dct = Dct::new();
    let step = stride(&shrink);
    let (xs, ys) = (corners(w, step), corners(h, step));
    let mut out = vec![0.0; w * h];
    // Blocks straddling two bands are computed in both: tall bands keep that waste small.
    ctx.bands(&mut out, w, 64, |y0, band| {
        let job = Band {
            dct: &dct,
            plane,
            w,
            xs: &xs,
            ys: &ys,
            shrink,
        };
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { job.run_avx2(y0, band) };
            return Ok(());
        }
        job.run(y0, band);
        Ok(())
    })?;
    Ok(out)
}

/// The blocks that touch one band of output rows.
struct Band<'a> {
    dct: &'a Dct,
    plane: &'a [f32],
    w: usize,
    xs: &'a [usize],
    ys: &'a [usize],
    shrink: Shrink<'a>,
}

impl Band<'_> {
    /// [`Band::run`] with AVX2 and FMA intrinsics: a block is eight 8-lane registers and each
    /// transform is 128 fused multiply-adds. Same arithmetic as the portable version.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self, y0: usize, band: &mut [f32]) {
        use std::arch::x86_64::*;
        type Rows = [__m256; N];
        let (w, dct) = (self.w, self.dct);
        // `Σ_j s(i, j) · rows[j]` for every i: every step of both transforms has this form.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn combine(s: impl Fn(usize, usize) -> f32, rows: &Rows) -> Rows {
            let mut out = [_mm256_setzero_ps(); N];
            for (i, acc) in out.iter_mut().enumerate() {
                for j in 0..N {
                    *acc = _mm256_fmadd_ps(_mm256_set1_ps(s(i, j)), rows[j], *acc);
                }
            }
            out
        }
        // SAFETY (every unaligned load and store below): the pointer is to 8 floats.
        let c: Rows = std::array::from_fn(|k| unsafe { _mm256_loadu_ps(dct.c[k].as_ptr()) });
        let ct: Rows = std::array::from_fn(|n| unsafe { _mm256_loadu_ps(dct.ct[n].as_ptr()) });
        let forward = |src: &[f32], bx: usize, by: usize| -> Rows {
            let t = combine(|r, n| src[(by + r) * w + bx + n], &ct);
            combine(|k, r| dct.c[k][r], &t)
        };
        let sign = _mm256_set1_ps(-0.0);
        let y1 = y0 + band.len() / w;
        let mut weights = vec![0.0f32; band.len()];
        for &by in self.ys.iter().filter(|&&by| by + N > y0 && by < y1) {
            for &bx in self.xs {
                let mut coef = forward(self.plane, bx, by);
                let weight = match self.shrink {
                    Shrink::Hard { threshold } => {
                        let dc = _mm256_cvtss_f32(coef[0]);
                        let t = _mm256_set1_ps(threshold);
                        let mut kept = 0;
                        for row in &mut coef {
                            let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_andnot_ps(sign, *row), t);
                            *row = _mm256_and_ps(*row, keep);
                            kept += _mm256_movemask_ps(keep).count_ones();
                        }
                        // The DC term always stays, whatever its size.
                        if dc.abs() < threshold {
                            kept += 1;
                            coef[0] = _mm256_blend_ps::<1>(coef[0], _mm256_set1_ps(dc));
                        }
                        1.0 / kept as f32
                    }
                    Shrink::Wiener { pilot, sigma } => {
                        let p = forward(pilot, bx, by);
                        let s2 = _mm256_set1_ps(sigma * sigma);
                        let mut energy = _mm256_setzero_ps();
                        for (row, p) in coef.iter_mut().zip(&p) {
                            let p2 = _mm256_mul_ps(*p, *p);
                            let g = _mm256_div_ps(p2, _mm256_add_ps(p2, s2));
                            *row = _mm256_mul_ps(*row, g);
                            energy = _mm256_fmadd_ps(g, g, energy);
                        }
                        let mut lanes = [0.0f32; N];
                        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), energy) };
                        1.0 / lanes.iter().sum::<f32>().max(1e-3)
                    }
                };
                let u = combine(|r, k| dct.ct[r][k], &coef);
                let mut u_mem = [[0.0f32; N]; N];
                for (m, v) in u_mem.iter_mut().zip(&u) {
                    unsafe { _mm256_storeu_ps(m.as_mut_ptr(), *v) };
                }
                let pixels = combine(|r, l| u_mem[r][l], &c);
                let wv = _mm256_set1_ps(weight);
                for (r, row) in pixels.iter().enumerate() {
                    let y = by + r;
                    if y < y0 || y >= y1 {
                        continue;
                    }
                    let at = (y - y0) * w + bx;
                    let (out, wt) = (&mut band[at..at + N], &mut weights[at..at + N]);
                    unsafe {
                        let o = _mm256_loadu_ps(out.as_ptr());
                        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_fmadd_ps(wv, *row, o));
                        let ww = _mm256_loadu_ps(wt.as_ptr());
                        _mm256_storeu_ps(wt.as_mut_ptr(), _mm256_add_ps(ww, wv));
                    }
                }
            }
        }
        for (v, wt) in band.iter_mut().zip(&weights) {
            *v /= wt;
        }
    }

    #[inline(always)]
    fn run(&self, y0: usize, band: &mut [f32]) {
        let (w, dct) = (self.w, self.dct);
        let y1 = y0 + band.len() / w;
        let mut weights = vec![0.0f32; band.len()];
        for &by in self.ys.iter().filter(|&&by| by + N > y0 && by < y1) {
            for &bx in self.xs {
                let mut coef = dct.forward(&load(self.plane, w, bx, by));
                let dc = coef[0][0];
                // Branch-free shrinking, so it runs 8 coefficients at a time.
                let weight = match self.shrink {
                    Shrink::Hard { threshold } => {
                        // One counter per lane: a single float sum would serialise.
                        let mut lanes = [0.0f32; N];
                        for row in coef.iter_mut() {
                            for (v, count) in row.iter_mut().zip(&mut lanes) {
                                let keep = v.abs() >= threshold;
                                *v = if keep { *v } else { 0.0 };
                                *count += if keep { 1.0 } else { 0.0 };
                            }
                        }
                        let mut kept: f32 = lanes.iter().sum();
                        // The DC term always stays, whatever its size.
                        if coef[0][0] == 0.0 {
                            kept += 1.0;
                        }
                        coef[0][0] = dc;
                        1.0 / kept
                    }
                    Shrink::Wiener { pilot, sigma } => {
                        let p = dct.forward(&load(pilot, w, bx, by));
                        let s2 = sigma * sigma;
                        let mut lanes = [0.0f32; N];
                        for (row, prow) in coef.iter_mut().zip(&p) {
                            for ((v, pv), energy) in row.iter_mut().zip(prow).zip(&mut lanes) {
                                let g = pv * pv / (pv * pv + s2);
                                *v *= g;
                                *energy += g * g;
                            }
                        }
                        1.0 / lanes.iter().sum::<f32>().max(1e-3)
                    }
                };
                let pixels = dct.inverse(&coef);
                for (r, row) in pixels.iter().enumerate() {
                    let y = by + r;
                    if y < y0 || y >= y1 {
                        continue;
                    }
                    let at = (y - y0) * w + bx;
                    let (out, wt) = (&mut band[at..at + N], &mut weights[at..at + N]);
                    for i in 0..N {
                        out[i] += weight * row[i];
                        wt[i] += weight;
                    }
                }
            }
        }
        for (v, wt) in band.iter_mut().zip(&weights) {
            *v /= wt;
        }
    }
}

/// The noise level of `img` as [`denoise`] needs it: σ in the first opponent plane, which is
/// each channel's σ for colour noise (and √3 times it for grey images, whose other planes are
/// empty and skipped).
///
/// Estimated from 8×8 blocks: the flattest fifth of them (least energy in the low and middle
/// frequencies) are kept, and σ is the median absolute value of their highest-frequency
/// coefficients (`k + l ≥ 12`) over 0.6745. White noise fills those as much as any frequency,
/// while photographs, even fine texture, put little there; and since the DCT coefficients of
/// white noise are independent, choosing blocks by the other coefficients biases nothing.
pub fn noise_level(img: &Raster) -> f32 {
    let (w, h) = (img.width, img.height);
    if w < N || h < N {
        return 0.0;
    }
    let dct = Dct::new();
    let ch = img.channels;
    // The opponent mean plane's block, read straight from the image (no plane is kept).
    let mean = |bx: usize, by: usize| -> Block {
        std::array::from_fn(|r| {
            std::array::from_fn(|n| {
                let p = &img.data[((by + r) * w + bx + n) * ch..];
                OPPONENT[0][0] * (p[0] + p[1] + p[2])
            })
        })
    };
    // Clipped samples carry less noise than the rest and would pass for flat.
    let clipped = |bx: usize, by: usize| {
        (by..by + N).any(|y| {
            img.data[(y * w + bx) * ch..(y * w + bx + N) * ch]
                .chunks_exact(ch)
                .any(|p| {
                    p[..3]
                        .iter()
                        .any(|v| *v <= 1.0 / 255.0 || *v >= 254.0 / 255.0)
                })
        })
    };
    // (energy below the top band, the top band's magnitudes, whether any sample clips)
    let mut blocks: Vec<(f32, [f32; 6], bool)> = Vec::new();
    for by in (0..=h - N).step_by(N) {
        for bx in (0..=w - N).step_by(N) {
            let coef = dct.forward(&mean(bx, by));
            let (mut low, mut high, mut i) = (0.0, [0.0; 6], 0);
            for k in 0..N {
                for l in 0..N {
                    match k + l {
                        0 => {}
                        1..=10 => low += coef[k][l] * coef[k][l],
                        11 => {}
                        _ => {
                            high[i] = coef[k][l].abs();
                            i += 1;
                        }
                    }
                }
            }
            blocks.push((low, high, clipped(bx, by)));
        }
    }
    if blocks.iter().filter(|b| !b.2).count() >= 64 {
        blocks.retain(|b| !b.2);
    }
    let keep = (blocks.len() / 5).max(blocks.len().min(64));
    if keep < blocks.len() {
        blocks.select_nth_unstable_by(keep, |a, b| a.0.total_cmp(&b.0));
    }
    let mut high: Vec<f32> = blocks[..keep].iter().flat_map(|b| b.1).collect();
    let mid = high.len() / 2;
    *high.select_nth_unstable_by(mid, f32::total_cmp).1 / 0.6745
}

/// How many row passes [`denoise`] makes, for [`Ctx::plan_passes`]: the strips count as one.
pub fn passes(img: &Raster) -> usize {
    usize::from(img.width >= N && img.height >= N)
}

/// Output rows per strip of [`denoise`]: about 4 M samples of plane, 128 to 512 rows.
fn strip_rows(w: usize) -> usize {
    ((4 << 20) / w.max(1)).clamp(128, 512)
}

/// Rows of context above and below a strip. The Wiener pass's blocks reach 7 rows past it,
/// and their pilot is exact only where every hard-pass block covering it lies in the window:
/// 7 rows more (and one to start the window on the hard pass's even grid).
const HALO: usize = 16;

/// The most heap [`denoise`] takes beside the image: a strip's window as three opponent
/// planes, the hard pass's pilot, a pass's output and weights, and the rows kept for the
/// next window.
pub fn denoise_memory(w: usize, channels: usize) -> u64 {
    let window = (strip_rows(w) + 2 * HALO) * w;
    ((3 + 3) * window * 4 + (HALO + 2) * w * channels * 4) as u64
}

/// One plane's denoising: the hard-threshold pass, then (with `wiener`) the Wiener pass it
/// pilots.
fn denoise_plane(
    ctx: &Ctx,
    plane: &[f32],
    w: usize,
    h: usize,
    sigma: f32,
    threshold: f32,
    wiener: bool,
) -> Result<Vec<f32>, ImagingError> {
    let hard = Shrink::Hard {
        threshold: threshold * sigma,
    };
    let basic = pass(ctx, plane, w, h, hard)?;
    if !wiener {
        return Ok(basic);
    }
    let shrink = Shrink::Wiener {
        pilot: &basic,
        sigma,
    };
    pass(ctx, plane, w, h, shrink)
}

/// Denoises the colour channels of `img` in place, whose noise has standard deviation
/// `sigma` (on the 0–1 scale). `threshold` is the hard threshold in multiples of σ; `wiener`
/// adds the second pass (about 0.5 dB better, twice the time); `opacity` is the share of the
/// change kept (1: all of it).
///
/// Works in strips of rows, each with [`HALO`] rows of context: memory follows the image's
/// width, not its area, and the result is the whole image's to the last bit (the windows keep
/// the whole image's block grid).
pub fn denoise(
    ctx: &Ctx,
    img: &mut Raster,
    sigma: f32,
    threshold: f32,
    wiener: bool,
    opacity: f32,
) -> Result<(), ImagingError> {
    let (w, h, ch) = (img.width, img.height, img.channels);
    if w < N || h < N || sigma <= 0.0 {
        return Ok(());
    }
    let quiet = ctx.quiet();
    let strip = strip_rows(w);
    let row_len = w * ch;
    // Original rows from `kept_from` up to the strip being worked: the next window reads
    // them after this strip has overwritten them.
    let mut kept: Vec<f32> = Vec::new();
    let mut kept_from = 0;
    let mut y0 = 0;
    while y0 < h {
        let y1 = (y0 + strip).min(h);
        let (a, b) = (y0.saturating_sub(HALO) / 2 * 2, (y1 + HALO).min(h));
        let mut planes = vec![vec![0.0f32; w * (b - a)]; 3];
        for y in a..b {
            let src = if y < y0 {
                &kept[(y - kept_from) * row_len..][..row_len]
            } else {
                &img.data[y * row_len..][..row_len]
            };
            let at = (y - a) * w;
            for (x, p) in src.chunks_exact(ch).enumerate() {
                for (plane, m) in planes.iter_mut().zip(&OPPONENT) {
                    plane[at + x] = m[0] * p[0] + m[1] * p[1] + m[2] * p[2];
                }
            }
        }
        for plane in &mut planes {
            // Grey input has empty colour-difference planes: nothing to denoise there.
            if plane.iter().all(|v| v.abs() < 1e-6) {
                continue;
            }
            *plane = denoise_plane(&quiet, plane, w, b - a, sigma, threshold, wiener)?;
        }
        kept_from = y1.saturating_sub(HALO) / 2 * 2;
        kept.clear();
        kept.extend_from_slice(&img.data[kept_from * row_len..y1 * row_len]);
        let rows = &mut img.data[y0 * row_len..y1 * row_len];
        for (i, p) in rows.chunks_exact_mut(ch).enumerate() {
            let at = (y0 - a) * w + i;
            for (c, v) in p[..3].iter_mut().enumerate() {
                let denoised = OPPONENT[0][c] * planes[0][at]
                    + OPPONENT[1][c] * planes[1][at]
                    + OPPONENT[2][c] * planes[2][at];
                *v += (denoised - *v) * opacity;
            }
        }
        ctx.advance(y1 as f32 / h as f32);
        y0 = y1;
    }
    ctx.pass_done();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::max_abs_diff;

    #[test]
    fn the_transform_inverts_exactly() {
        let dct = Dct::new();
        let mut x = [[0.0; N]; N];
        for (r, row) in x.iter_mut().enumerate() {
            for (n, v) in row.iter_mut().enumerate() {
                *v = ((r * 7 + n * 3) % 11) as f32 / 10.0;
            }
        }
        let y = dct.inverse(&dct.forward(&x));
        for (a, b) in x.iter().flatten().zip(y.iter().flatten()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn opponent_rows_are_orthonormal() {
        for a in 0..3 {
            for b in 0..3 {
                let dot: f32 = (0..3).map(|i| OPPONENT[a][i] * OPPONENT[b][i]).sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "{a} {b} {dot}");
            }
        }
    }

    /// The banded, vectorised passes against one portable pass over the whole plane: no seams
    /// where bands meet, and the AVX2 kernel computes what the portable one does.
    #[test]
    fn bands_and_kernels_agree_with_a_single_portable_pass() {
        let (w, h) = (53, 150);
        let noisy = crate::quality::add_noise(&vec![100u8; w * h], 20.0, 3);
        let plane: Vec<f32> = noisy
            .iter()
            .enumerate()
            .map(|(i, v)| *v as f32 / 255.0 + ((i % w) as f32 / w as f32) * 0.3)
            .collect();
        let cancel = crate::Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let sigma = 20.0 / 255.0;
        let hard = Shrink::Hard {
            threshold: DEFAULT_THRESHOLD * sigma,
        };
        let basic = pass(&ctx, &plane, w, h, hard).unwrap();
        let wiener = Shrink::Wiener {
            pilot: &basic,
            sigma,
        };
        let banded = pass(&ctx, &plane, w, h, wiener).unwrap();
        let dct = Dct::new();
        let whole = |shrink: Shrink| {
            let step = stride(&shrink);
            let (xs, ys) = (corners(w, step), corners(h, step));
            let mut out = vec![0.0; w * h];
            let job = Band {
                dct: &dct,
                plane: &plane,
                w,
                xs: &xs,
                ys: &ys,
                shrink,
            };
            job.run(0, &mut out);
            out
        };
        assert!(max_abs_diff(&basic, &whole(hard)) < 1e-5);
        assert!(max_abs_diff(&banded, &whole(wiener)) < 1e-5);
        // And it denoised: the flat rows' spread shrank.
        let spread = |v: &[f32]| {
            let col: Vec<f32> = (0..h).map(|y| v[y * w + 20]).collect();
            let mean = col.iter().sum::<f32>() / h as f32;
            (col.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / h as f32).sqrt()
        };
        assert!(spread(&banded) < spread(&plane) / 3.0);
    }

    #[test]
    fn a_flat_image_stays_flat_and_odd_sizes_are_covered() {
        let mut img = Raster::new(37, 21, 3);
        img.data.fill(0.25);
        let cancel = crate::Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        denoise(&ctx, &mut img, 0.05, DEFAULT_THRESHOLD, true, 1.0).unwrap();
        assert!(img.data.iter().all(|v| (v - 0.25).abs() < 1e-4));
    }

    /// Three strips (a 53-wide image has 512-row strips) against the passes run on the whole
    /// planes at once: the windows keep the whole image's blocks, so no seam and no difference.
    #[test]
    fn strips_agree_with_the_whole_image() {
        let (w, h) = (53, 1300);
        assert_eq!(strip_rows(w), 512);
        let noisy = crate::quality::add_noise(&vec![110u8; w * h * 3], 20.0, 5);
        let mut img = Raster::new(w, h, 3);
        for (i, (v, n)) in img.data.iter_mut().zip(&noisy).enumerate() {
            let (x, y, c) = (i / 3 % w, i / 3 / w, i % 3);
            *v = *n as f32 / 255.0 + 0.2 * ((x + 2 * y + 30 * c) % 97) as f32 / 97.0;
        }
        let cancel = crate::Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let sigma = 20.0 / 255.0;
        let mut whole = img.clone();
        for m in &OPPONENT {
            let plane: Vec<f32> = img
                .data
                .chunks_exact(3)
                .map(|p| m[0] * p[0] + m[1] * p[1] + m[2] * p[2])
                .collect();
            let denoised =
                denoise_plane(&ctx, &plane, w, h, sigma, DEFAULT_THRESHOLD, true).unwrap();
            // Each opponent plane's share of every channel: the planes are orthonormal.
            for (i, p) in whole.data.chunks_exact_mut(3).enumerate() {
                let before: f32 = (0..3).map(|c| m[c] * img.data[i * 3 + c]).sum();
                for c in 0..3 {
                    p[c] += m[c] * (denoised[i] - before);
                }
            }
        }
        let mut banded = img.clone();
        denoise(&ctx, &mut banded, sigma, DEFAULT_THRESHOLD, true, 1.0).unwrap();
        let worst = max_abs_diff(&banded.data, &whole.data);
        assert!(worst < 1e-5, "off by {worst}");
        assert!(
            max_abs_diff(&banded.data, &img.data) > 0.05,
            "nothing was denoised"
        );
    }
}
