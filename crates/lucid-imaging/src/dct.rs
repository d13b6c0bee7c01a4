//! Denoising by shrinkage in the 8×8 DCT of overlapping blocks (Yu & Sapiro, "DCT image
//! denoising", IPOL 2011), with two steps borrowed from BM3D: blocks are averaged back with
//! weights that favour sparse (confident) blocks, and an optional second pass shrinks each
//! coefficient by the empirical Wiener factor computed from the first pass's estimate.
//!
//! Colour is first turned into three orthonormal opponent planes (a luma-like mean and two
//! differences), so independent noise of σ per RGB channel stays σ in every plane and
//! each plane is denoised on its own. Alpha is left alone.

use std::f32::consts::FRAC_1_SQRT_2;
use std::ops::Range;

use rayon::prelude::*;

use crate::ops::ByteBands;
use crate::raster::{Raster, Sample};
use crate::{Ctx, ImagingError};

const N: usize = 8;
type Block = [[f32; N]; N];

/// Step between the corners of neighbouring blocks in each pass. 1 is the textbook method.
fn stride(shrink: &Shrink) -> usize {
    match shrink {
        Shrink::Hard { .. } => HARD_STEP,
        Shrink::Wiener { step, .. } => *step,
    }
}

/// The hard pass only pilots the Wiener pass, so it can take every other block (a quarter of
/// the work) at a cost of about 0.05 dB.
const HARD_STEP: usize = 2;

/// The Wiener pass's step on the luma-like opponent plane: every block (a step of 2 would lose
/// 0.2 dB).
const LUMA_WIENER_STEP: usize = 1;

/// The Wiener pass's step on the two colour-difference planes. They are smooth in a
/// photograph: every third block (a ninth of the work, the whole denoise a third faster) loses
/// 0.03–0.06 dB on the quality test's colour photographs (every second: the same; hard pass
/// only: up to 0.18 dB).
const CHROMA_WIENER_STEP: usize = 3;

/// The Wiener pass's step on opponent plane `plane`.
fn wiener_step(plane: usize) -> usize {
    if plane == 0 {
        LUMA_WIENER_STEP
    } else {
        CHROMA_WIENER_STEP
    }
}

/// Strip windows start on a multiple of this, which every step divides (the luma step is 1),
/// so that their blocks are the whole image's.
const GRID: usize = 6;
const _: () = assert!(GRID.is_multiple_of(HARD_STEP) && GRID.is_multiple_of(CHROMA_WIENER_STEP));

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
    #[cfg(test)]
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

/// What a pass does to each block's coefficients.
#[derive(Clone, Copy)]
enum Shrink<'a> {
    /// Zero the coefficients below `threshold` (the DC term is kept).
    Hard { threshold: f32 },
    /// Multiply each coefficient by `P² / (P² + σ²)`, `P` being the pilot's coefficient;
    /// blocks every `step` pixels.
    Wiener {
        pilot: &'a [f32],
        sigma: f32,
        step: usize,
    },
}

/// One pass over a plane: every block transformed, shrunk, transformed back and averaged
/// into the pixels it covers, weighted by the inverse of its remaining energy.
///
/// Every sample of `out` is written: a buffer reused from an earlier pass needs no clearing.
fn pass(
    ctx: &Ctx,
    plane: &[f32],
    w: usize,
    h: usize,
    shrink: Shrink,
    out: &mut Vec<f32>,
) -> Result<(), ImagingError> {
    let dct = Dct::new();
    let step = stride(&shrink);
    let (xs, ys) = (corners(w, step), corners(h, step));
    resize_exactly(out, w * h);
    // Blocks straddling two bands are computed in both: tall bands keep that waste small.
    ctx.bands(out, w, 64, |y0, band| {
        let job = Band {
            dct: &dct,
            plane,
            w,
            xs: &xs,
            first: 0,
            pixels: (0, w),
            ys: &ys,
            step,
            shrink,
        };
        job.run_fastest(y0, band);
        Ok(())
    })
}

/// `Σ_k c[k] · v[k]`, fused.
#[inline(always)]
fn dot<const K: usize>(c: [f32; K], v: [f32; K]) -> f32 {
    let mut acc = 0.0f32;
    for k in 0..K {
        acc = c[k].mul_add(v[k], acc);
    }
    acc
}

// The kernel works on `L` blocks side by side, one per lane (`L` neighbouring block corners
// of a row of corners): every step is the same on every lane, so each is one vector
// instruction per step (two for 16 lanes under AVX2), and a block's weight is a lane of a
// vector, never a sum across lanes. The transforms are written for one lane index `i` and
// looped over the lanes, without closures: a closure is compiled on its own, without the
// vector features of the kernel that calls it, and its `mul_add`s become library calls.

/// The DCT down the columns of eight rows, for `L` blocks, by the even/odd split of the
/// basis (even rows of `C` are symmetric, odd ones antisymmetric): 36 operations, not 64.
#[inline(always)]
fn columns_forward<const L: usize>(c: &Block, x: &[[f32; L]; N]) -> [[f32; L]; N] {
    let mut out = [[0.0; L]; N];
    for i in 0..L {
        let s = [
            x[0][i] + x[7][i],
            x[1][i] + x[6][i],
            x[2][i] + x[5][i],
            x[3][i] + x[4][i],
        ];
        let d = [
            x[0][i] - x[7][i],
            x[1][i] - x[6][i],
            x[2][i] - x[5][i],
            x[3][i] - x[4][i],
        ];
        let (a0, a1) = (s[0] + s[3], s[1] + s[2]);
        let (b0, b1) = (s[0] - s[3], s[1] - s[2]);
        out[0][i] = c[0][0] * (a0 + a1);
        out[4][i] = c[4][0] * (a0 - a1);
        out[2][i] = dot([c[2][0], c[2][1]], [b0, b1]);
        out[6][i] = dot([c[6][0], c[6][1]], [b0, b1]);
        for k in [1, 3, 5, 7] {
            out[k][i] = dot([c[k][0], c[k][1], c[k][2], c[k][3]], d);
        }
    }
    out
}

/// The inverse of [`columns_forward`] (`Cᵀ` down the columns), by the same split.
#[inline(always)]
fn columns_inverse<const L: usize>(c: &Block, b: &[[f32; L]; N]) -> [[f32; L]; N] {
    let mut out = [[0.0; L]; N];
    for i in 0..L {
        let p = dot([c[0][0], c[4][0]], [b[0][i], b[4][i]]);
        let q = dot([c[0][0], -c[4][0]], [b[0][i], b[4][i]]);
        let u0 = dot([c[2][0], c[6][0]], [b[2][i], b[6][i]]);
        let u1 = dot([c[2][1], c[6][1]], [b[2][i], b[6][i]]);
        let even = [p + u0, q + u1, q - u1, p - u0];
        let odds = [b[1][i], b[3][i], b[5][i], b[7][i]];
        for r in 0..4 {
            let odd = dot([c[1][r], c[3][r], c[5][r], c[7][r]], odds);
            out[r][i] = even[r] + odd;
            out[7 - r][i] = even[r] - odd;
        }
    }
    out
}

/// Samples `k` of `row`'s phases modulo `S` (sample `S k + r` of the row at `r len + k` in
/// `phases`), for `k` in `ks`: whole pixels by whole pixels, so that the loop vectorises.
#[inline(always)]
fn split_phases<const S: usize>(row: &[f32], phases: &mut [f32], len: usize, ks: Range<usize>) {
    let mut rows = phases.chunks_mut(len);
    let mut split: [&mut [f32]; S] = std::array::from_fn(|_| &mut rows.next().unwrap()[ks.clone()]);
    let (whole, partial) = row[ks.start * S..].as_chunks::<S>();
    for (k, px) in whole.iter().take(ks.len()).enumerate() {
        for (phase, v) in split.iter_mut().zip(px) {
            phase[k] = *v;
        }
    }
    // A last pixel group the row ends in.
    let k = whole.len();
    if k < ks.len() {
        for (phase, v) in split.iter_mut().zip(partial) {
            phase[k] = *v;
        }
    }
}

/// The most lanes the kernel runs on (AVX-512's 16 floats): the rings' padding follows it.
const WIDEST_LANES: usize = 16;

/// Pixels per column tile of a band.
const TILE: usize = 512;

/// Zero corners before the first in the step-1 inverse's rows: it reads up to 7 corners to
/// the left of each output pixel.
const PAD: usize = 8;

/// The blocks that touch one band of output rows, in one tile of its columns.
#[derive(Clone, Copy)]
struct Band<'a> {
    dct: &'a Dct,
    plane: &'a [f32],
    w: usize,
    /// The tile's corners along x (all of them before [`Band::run_tiles`] splits the row),
    /// and the index of the first among the row's.
    xs: &'a [usize],
    first: usize,
    /// The tile's output columns: from the first to before the second.
    pixels: (usize, usize),
    ys: &'a [usize],
    /// The step between corners (all but the last, which ends at the border).
    step: usize,
    shrink: Shrink<'a>,
}

/// A band's rings of eight rows, indexed by `y % 8`: each image row's DCT along x at every
/// corner column (the noisy plane's and the pilot's), and the blocks' weighted sums (still
/// transformed along x), each stored by groups of `L` corners, a group's eight coefficients
/// `l` one after the other (so a group's rows are one stretch of memory); the blocks'
/// weights, by corner from [`PAD`] on.
struct Rings<const L: usize> {
    groups: usize,
    span: usize,
    noisy: Vec<f32>,
    pilot: Vec<f32>,
    sums: Vec<f32>,
    weights: Vec<f32>,
    /// A row split into its phases (see [`Band::rows_forward`]).
    phases: Vec<f32>,
    /// The inverse's grid of samples and weights (see [`Band::rows_inverse`]).
    grid: Vec<f32>,
}

impl<const L: usize> Rings<L> {
    /// Where coefficient `l` of corner `j` in ring slot `slot` lies.
    #[inline(always)]
    fn at(&self, slot: usize, l: usize, j: usize) -> usize {
        ((slot * self.groups + j / L) * N + l) * L + j % L
    }

    /// Coefficient `l` of the `L` corners from `j0` on, in `ring`'s rows at `slots`: the
    /// eight rows of `L` blocks.
    #[inline(always)]
    fn lanes(&self, ring: &[f32], slots: &[usize; N], l: usize, j0: usize) -> [[f32; L]; N] {
        let mut rows = [[0.0; L]; N];
        for (row, &slot) in rows.iter_mut().zip(slots) {
            *row = ring[self.at(slot, l, j0)..][..L].try_into().unwrap();
        }
        rows
    }
}

impl Band<'_> {
    /// [`Band::run`] on the widest vectors the CPU has.
    fn run_fastest(&self, y0: usize, band: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { self.run_avx512(y0, band) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { self.run_avx2(y0, band) };
            return;
        }
        self.run_tiles::<8>(y0, band);
    }

    /// The band in tiles of [`TILE`] columns, so that the rings stay in the core's cache;
    /// each tile takes the corners whose blocks reach its pixels, and the tiles share the
    /// rings (every ring row is cleared as it is finished).
    #[inline(always)]
    fn run_tiles<const L: usize>(&self, y0: usize, band: &mut [f32]) {
        let w = self.w;
        let tiles: Vec<Band> = (0..w)
            .step_by(TILE)
            .map(|pa| {
                let pb = (pa + TILE).min(w);
                let first = self.xs.partition_point(|&x| x + N <= pa);
                let end = self.xs.partition_point(|&x| x < pb);
                Band {
                    xs: &self.xs[first..end],
                    first,
                    pixels: (pa, pb),
                    ..*self
                }
            })
            .collect();
        let groups = tiles
            .iter()
            .map(|t| t.xs.len().div_ceil(L))
            .max()
            .unwrap_or(0);
        let wiener = matches!(self.shrink, Shrink::Wiener { .. });
        // Room for the inverse's reads: a group and a block past the tile's corners.
        let span = PAD + groups * L + L + N;
        let ring = N * groups * N * L;
        let mut rings = Rings::<L> {
            groups,
            span,
            noisy: vec![0.0; ring],
            pilot: vec![0.0; if wiener { ring } else { 0 }],
            sums: vec![0.0; ring],
            weights: vec![0.0; N * span],
            phases: vec![0.0; w.div_ceil(self.step) * self.step],
            grid: vec![0.0; (N + 1) * span],
        };
        for tile in &tiles {
            tile.run(y0, band, &mut rings);
        }
    }

    /// [`Band::run`] on 16 lanes with AVX-512's 32 vector registers.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn run_avx512(&self, y0: usize, band: &mut [f32]) {
        self.run_tiles::<WIDEST_LANES>(y0, band)
    }

    /// [`Band::run`] compiled for AVX2 and FMA: eight lanes are one register.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self, y0: usize, band: &mut [f32]) {
        self.run_tiles::<8>(y0, band)
    }

    /// Whether the `L` corners from `j0` on are all on the step's grid (none is the last,
    /// border corner off it, nor past the end).
    #[inline(always)]
    fn regular<const L: usize>(&self, j0: usize) -> bool {
        let last = j0 + L - 1;
        last < self.xs.len() && self.xs[last] == self.step * (self.first + last)
    }

    /// The 2-D transform is separable, and the blocks of a row of corners share their rows:
    /// each row's DCT along x is computed once per corner column (not once per block over
    /// it, eight times), the blocks take it down the columns, and what they give back is
    /// summed still transformed along x, so the inverse along x is once per row too.
    #[inline(always)]
    fn run<const L: usize>(&self, y0: usize, band: &mut [f32], rings: &mut Rings<L>) {
        let w = self.w;
        let y1 = y0 + band.len() / w;
        let groups = self.xs.len().div_ceil(L);
        let rows: Vec<usize> = (self.ys.iter().copied())
            .filter(|&by| by + N > y0 && by < y1)
            .collect();
        let Some(&first) = rows.first() else { return };
        let (mut transformed, mut written) = (first, first);
        for (i, &by) in rows.iter().enumerate() {
            while transformed < by + N {
                let slot = transformed % N;
                let at = rings.at(slot, 0, 0);
                let len = groups * N * L;
                let noisy = &mut rings.noisy[at..][..len];
                self.rows_forward::<L>(self.plane, transformed, noisy, &mut rings.phases);
                if let Shrink::Wiener { pilot, .. } = self.shrink {
                    let ring = &mut rings.pilot[at..][..len];
                    self.rows_forward::<L>(pilot, transformed, ring, &mut rings.phases);
                }
                transformed += 1;
            }
            let slots: [usize; N] = std::array::from_fn(|r| (by + r) % N);
            for g in 0..groups {
                self.blocks(rings, &slots, g * L);
            }
            // Rows above the next corner row get nothing more: finish them.
            let complete = rows.get(i + 1).copied().unwrap_or(by + N);
            while written < complete {
                let slot = written % N;
                if written >= y0 && written < y1 {
                    let out = &mut band[(written - y0) * w..][..w];
                    self.rows_inverse(rings, slot, out);
                }
                let at = rings.at(slot, 0, 0);
                rings.sums[at..][..groups * N * L].fill(0.0);
                rings.weights[slot * rings.span + PAD..][..groups * L].fill(0.0);
                written += 1;
            }
        }
    }

    /// The `L` blocks of the corners from `j0` on whose rows are in ring `slots`: transformed
    /// down the columns, shrunk, transformed back and added to the sums with their weights.
    #[inline(always)]
    fn blocks<const L: usize>(&self, rings: &mut Rings<L>, slots: &[usize; N], j0: usize) {
        let c = &self.dct.c;
        // Coefficients by `l` (along x), then `k` (down the columns).
        let mut coef = [[[0.0f32; L]; N]; N];
        // Hard: how many coefficients stay; Wiener: the gains' energy.
        let mut kept = [0.0f32; L];
        match self.shrink {
            Shrink::Hard { threshold } => {
                for (l, coef) in coef.iter_mut().enumerate() {
                    *coef = columns_forward(c, &rings.lanes(&rings.noisy, slots, l, j0));
                    for (k, row) in coef.iter_mut().enumerate() {
                        if k == 0 && l == 0 {
                            continue; // the DC term always stays, whatever its size
                        }
                        for (v, count) in row.iter_mut().zip(&mut kept) {
                            // 1 or 0 as a number, multiplied in: a select here is compiled
                            // to a branch per coefficient.
                            let keep = f32::from(u8::from(v.abs() >= threshold));
                            *v *= keep;
                            *count += keep;
                        }
                    }
                }
                for count in &mut kept {
                    *count = 1.0 / (*count + 1.0);
                }
            }
            Shrink::Wiener { sigma, .. } => {
                let s2 = sigma * sigma;
                for (l, coef) in coef.iter_mut().enumerate() {
                    *coef = columns_forward(c, &rings.lanes(&rings.noisy, slots, l, j0));
                    let pilot = columns_forward::<L>(c, &rings.lanes(&rings.pilot, slots, l, j0));
                    for (row, prow) in coef.iter_mut().zip(&pilot) {
                        for ((v, p), energy) in row.iter_mut().zip(prow).zip(&mut kept) {
                            let g = p * p / p.mul_add(*p, s2);
                            *v *= g;
                            *energy = g.mul_add(g, *energy);
                        }
                    }
                }
                for energy in &mut kept {
                    *energy = 1.0 / energy.max(1e-3);
                }
            }
        }
        // The weight: the inverse of the block's remaining energy; none for lanes past the
        // last corner.
        let mut weight = kept;
        for (i, wt) in weight.iter_mut().enumerate() {
            if j0 + i >= self.xs.len() {
                *wt = 0.0;
            }
        }
        for (l, coef) in coef.iter().enumerate() {
            let back = columns_inverse(c, coef);
            for (&slot, row) in slots.iter().zip(&back) {
                let at = rings.at(slot, l, j0);
                let sums: &mut [f32; L] = (&mut rings.sums[at..][..L]).try_into().unwrap();
                for ((s, v), wt) in sums.iter_mut().zip(row).zip(&weight) {
                    *s = wt.mul_add(*v, *s);
                }
            }
        }
        for &slot in slots {
            let at = slot * rings.span + PAD + j0;
            for (s, wt) in rings.weights[at..][..L].iter_mut().zip(&weight) {
                *s += wt;
            }
        }
    }

    /// Row `y` of `plane`'s DCT along x at every corner column, into a ring's row. The row
    /// is first split into its step's phases (the samples at `x ≡ r` modulo the step, phase
    /// after phase), so that sample `n` of `L` corners a step apart is one slice: phase
    /// `n % step`, from `j0 + n / step` on.
    #[inline(always)]
    fn rows_forward<const L: usize>(
        &self,
        plane: &[f32],
        y: usize,
        ring: &mut [f32],
        phases: &mut [f32],
    ) {
        let (w, step, xs, c) = (self.w, self.step, self.xs, &self.dct.c);
        let row = &plane[y * w..][..w];
        let len = w.div_ceil(step);
        let phases: &[f32] = if step == 1 {
            row
        } else {
            // Only the stretch the tile's corners read.
            let (k0, k1) = (self.first, (self.first + xs.len() + N).min(len));
            match step {
                2 => split_phases::<2>(row, phases, len, k0..k1),
                3 => split_phases::<3>(row, phases, len, k0..k1),
                step => unreachable!("no pass has a step of {step}"),
            }
            phases
        };
        // Where sample `n` of corner 0 lies in the phases (no division per group).
        let mut first = [0; N];
        for (n, at) in first.iter_mut().enumerate() {
            *at = n % step * len + n / step;
        }
        for j0 in (0..xs.len()).step_by(L) {
            // Sample `n` of each lane's block row; past the last corner, the last's.
            let mut px = [[0.0f32; L]; N];
            if self.regular::<L>(j0) {
                for (px, at) in px.iter_mut().zip(first) {
                    *px = phases[at + self.first + j0..][..L].try_into().unwrap();
                }
            } else {
                for i in 0..L {
                    let x = xs[(j0 + i).min(xs.len() - 1)];
                    for (n, px) in px.iter_mut().enumerate() {
                        px[i] = row[x + n];
                    }
                }
            }
            // Along x, the same transform as down the columns.
            let t = columns_forward(c, &px);
            ring[j0 * N..][..N * L].copy_from_slice(t.as_flattened());
        }
    }

    /// A finished output row. Each group's sums go back along x, sample `n` of the `L`
    /// corners from `j` on into row `n` of `grid` from `PAD + j` on (one store: the grid is
    /// indexed by corner, not by pixel), and the corners' weights into its last row. The
    /// border corner off the step's grid, if the tile has it, is taken out and added on its
    /// own (see [`Band::gather`]).
    #[inline(always)]
    fn rows_inverse<const L: usize>(&self, rings: &mut Rings<L>, slot: usize, out: &mut [f32]) {
        let (c, span, xs) = (&self.dct.c, rings.span, self.xs);
        // The slot's first coefficient; a group's are `N * L` on from the one before.
        let slot_at = rings.at(slot, 0, 0);
        let (samples, weights) = rings.grid.split_at_mut(N * span);
        let groups = xs.len().div_ceil(L);
        for g in 0..groups {
            let j0 = g * L;
            let sums = &rings.sums[slot_at + j0 * N..][..N * L];
            let sums: [[f32; L]; N] =
                std::array::from_fn(|l| sums[l * L..][..L].try_into().unwrap());
            // Along x, the same transform as down the columns.
            for (n, v) in columns_inverse(c, &sums).iter().enumerate() {
                samples[n * span + PAD + j0..][..L].copy_from_slice(v);
            }
            let corner_weights = &rings.weights[slot * span + PAD + j0..][..L];
            weights[PAD + j0..][..L].copy_from_slice(corner_weights);
        }
        // Corners past the tile's read as none (their lanes of the last group are already:
        // zero weight, zero sums).
        let tail = PAD + groups * L..PAD + groups * L + L + N;
        for n in 0..N {
            samples[n * span..][tail.clone()].fill(0.0);
        }
        weights[tail].fill(0.0);
        let last = xs.len() - 1;
        let border = (!self.regular::<1>(last)).then(|| {
            let at = PAD + last;
            let corner: [f32; N] =
                std::array::from_fn(|n| std::mem::take(&mut samples[n * span + at]));
            (xs[last], corner, std::mem::take(&mut weights[at]))
        });
        let (samples, weights) = (&*samples, &*weights);
        match self.step {
            1 => self.gather::<L, 1>(samples, weights, span, border, out),
            2 => self.gather::<L, 2>(samples, weights, span, border, out),
            3 => self.gather::<L, 3>(samples, weights, span, border, out),
            step => unreachable!("no pass has a step of {step}"),
        }
    }

    /// The tile's pixels of a finished row from the grid of samples by corner. With corners
    /// `S` apart, pixel `S m + r` gathers sample `r + S t` of corner `m - t` for every `t`
    /// that names a sample: phase `r` of `L` neighbouring `m` is a sum of contiguous slices
    /// of the grid, and so are its weights. The phases, divided, are interleaved into the
    /// row. `border`: the off-grid corner's position, samples and weight.
    #[inline(always)]
    fn gather<const L: usize, const S: usize>(
        &self,
        samples: &[f32],
        weights: &[f32],
        span: usize,
        border: Option<(usize, [f32; N], f32)>,
        out: &mut [f32],
    ) {
        let (pa, pb) = self.pixels;
        // Tile corners by index from the tile's first; the first pixel's is never before it.
        let (first_m, last_m) = (pa / S - self.first, (pb - 1) / S - self.first);
        for m0 in (first_m..=last_m).step_by(L) {
            let (mut acc, mut total) = ([[0.0f32; L]; S], [[0.0f32; L]; S]);
            for r in 0..S {
                for t in 0..(N - r).div_ceil(S) {
                    // PAD zero corners before the first.
                    let at = PAD + m0 - t;
                    let v: &[f32; L] = samples[(r + S * t) * span + at..][..L].try_into().unwrap();
                    let wt: &[f32; L] = weights[at..][..L].try_into().unwrap();
                    for i in 0..L {
                        acc[r][i] += v[i];
                        total[r][i] += wt[i];
                    }
                }
            }
            let x0 = S * (self.first + m0);
            if let Some((bx, corner, weight)) = border {
                for (n, v) in corner.iter().enumerate() {
                    let x = bx + n;
                    if (x0..x0 + S * L).contains(&x) {
                        let (i, r) = ((x - x0) / S, (x - x0) % S);
                        acc[r][i] += v;
                        total[r][i] += weight;
                    }
                }
            }
            // Pixel by pixel; lanes past the tile's pixels are left out.
            let pixels: [[f32; S]; L] =
                std::array::from_fn(|i| std::array::from_fn(|r| acc[r][i] / total[r][i]));
            let (a, b) = (x0.max(pa), (x0 + S * L).min(pb));
            out[a..b].copy_from_slice(&pixels.as_flattened()[a - x0..b - x0]);
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
pub fn noise_level<T: Sample>(img: &Raster<T>) -> f32 {
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
                OPPONENT[0][0] * (p[0].working() + p[1].working() + p[2].working())
            })
        })
    };
    // Clipped samples carry less noise than the rest and would pass for flat.
    let clipped = |bx: usize, by: usize| {
        (by..by + N).any(|y| {
            img.data[(y * w + bx) * ch..(y * w + bx + N) * ch]
                .chunks_exact(ch)
                .any(|p| {
                    p[..3].iter().any(|v| {
                        let v = v.working();
                        v <= 1.0 / 255.0 || v >= 254.0 / 255.0
                    })
                })
        })
    };
    // (energy below the top band, the top band's magnitudes, whether any sample clips)
    let block = |bx: usize, by: usize| {
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
        (low, high, clipped(bx, by))
    };
    // Rows of blocks in parallel, collected in order: the same blocks, the same estimate.
    let rows: Vec<usize> = (0..=h - N).step_by(N).collect();
    let mut blocks: Vec<(f32, [f32; 6], bool)> = rows
        .par_iter()
        .flat_map_iter(|&by| (0..=w - N).step_by(N).map(move |bx| block(bx, by)))
        .collect();
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
/// 7 rows more, and up to [`GRID`] − 1 above to start the window on the grid.
const HALO: usize = 16;

/// The first row of the window of the strip starting at `y0`: [`HALO`] rows above it, down to
/// the grid. Also where the rows kept for the next strip start.
fn window_start(y0: usize) -> usize {
    y0.saturating_sub(HALO) / GRID * GRID
}

/// The most heap [`Strips`] take: a strip's window as three opponent planes, the hard pass's
/// pilot and a pass's output; each thread's rings (see [`Rings`]: the noisy and pilot rows
/// along x and the blocks' sums, for one column tile's corners and a group of padding; the
/// weights and the inverse's grid, by corner too, with room past them; the row's phases, as
/// wide as the image).
fn strips_memory(w: usize) -> u64 {
    let window = (strip_rows(w) + 2 * HALO + GRID) * w * 4;
    let tile_corners = w.min(TILE + N + WIDEST_LANES);
    let span = PAD + tile_corners + WIDEST_LANES + N;
    let per_thread = 3 * N * N * tile_corners + (2 * N + 1) * span + w + N;
    let rings = crate::job_threads() * per_thread * 4;
    (5 * window + rings) as u64
}

/// The most heap [`denoise`] takes beside the image: the strips', and the rows kept for the
/// next window.
pub fn denoise_memory(w: usize, channels: usize) -> u64 {
    strips_memory(w) + ((HALO + GRID) * w * channels * 4) as u64
}

/// The most heap [`DenoisedBytes`] takes beside the bytes and the encoder's bands: the
/// strips', and a strip of output bytes.
pub fn denoised_bytes_memory(w: usize, channels: usize) -> u64 {
    strips_memory(w) + (strip_rows(w) * w * channels) as u64
}

/// A row of `CH`-channel pixels as the three opponent planes' rows. The channel count is a
/// constant so that the loop vectorises.
#[inline(always)]
fn to_opponent<const CH: usize, T: Sample>(src: &[T], planes: [&mut [f32]; 3]) {
    let [r0, r1, r2] = planes;
    let pixels = src.as_chunks::<CH>().0.iter();
    for (((p, o0), o1), o2) in pixels.zip(r0).zip(r1).zip(r2) {
        let p = [p[0], p[1], p[2]].map(T::working);
        [*o0, *o1, *o2] = OPPONENT.map(|m| m[0] * p[0] + m[1] * p[1] + m[2] * p[2]);
    }
}

/// The opponent planes' rows back into a row of `CH`-channel pixels, keeping `opacity` of
/// the change from the `original` row, or from the samples `row` holds (alpha is left as it
/// was).
#[inline(always)]
fn from_opponent<const CH: usize, T: Sample>(
    planes: [&[f32]; 3],
    original: Option<&[T]>,
    row: &mut [T],
    opacity: f32,
) {
    let blend = |p: &mut [T; CH], original: [T; CH], o: [f32; 3]| {
        *p = original;
        for (c, v) in p[..3].iter_mut().enumerate() {
            let denoised = OPPONENT[0][c] * o[0] + OPPONENT[1][c] * o[1] + OPPONENT[2][c] * o[2];
            let v0 = v.working();
            *v = T::from_working(v0 + (denoised - v0) * opacity);
        }
    };
    let [r0, r1, r2] = planes;
    let pixels = row.as_chunks_mut::<CH>().0.iter_mut();
    let planes = r0.iter().zip(r1).zip(r2);
    match original {
        Some(original) => {
            let original = original.as_chunks::<CH>().0;
            for ((p, o), ((o0, o1), o2)) in pixels.zip(original).zip(planes) {
                blend(p, *o, [*o0, *o1, *o2]);
            }
        }
        None => {
            for (p, ((o0, o1), o2)) in pixels.zip(planes) {
                blend(p, *p, [*o0, *o1, *o2]);
            }
        }
    }
}

/// The buffers a plane's passes write, kept from strip to strip so that their pages are
/// mapped once, not once per strip and pass.
#[derive(Default)]
struct Scratch {
    basic: Vec<f32>,
    out: Vec<f32>,
}

/// One plane's denoising, in place: the hard-threshold pass, then (with a `wiener_step`) the
/// Wiener pass it pilots.
#[allow(clippy::too_many_arguments)]
fn denoise_plane(
    ctx: &Ctx,
    plane: &mut Vec<f32>,
    w: usize,
    h: usize,
    sigma: f32,
    threshold: f32,
    wiener_step: Option<usize>,
    scratch: &mut Scratch,
) -> Result<(), ImagingError> {
    let hard = Shrink::Hard {
        threshold: threshold * sigma,
    };
    pass(ctx, plane, w, h, hard, &mut scratch.basic)?;
    let Some(step) = wiener_step else {
        std::mem::swap(plane, &mut scratch.basic);
        return Ok(());
    };
    let shrink = Shrink::Wiener {
        pilot: &scratch.basic,
        sigma,
        step,
    };
    pass(ctx, plane, w, h, shrink, &mut scratch.out)?;
    std::mem::swap(plane, &mut scratch.out);
    Ok(())
}

/// Makes `v` `len` long, growing its allocation to exactly that: a later strip's window is a
/// few rows taller than the first's, and `resize` alone would double it.
fn resize_exactly(v: &mut Vec<f32>, len: usize) {
    v.reserve_exact(len.saturating_sub(v.len()));
    v.resize(len, 0.0);
}

/// A denoise worked strip by strip: its settings, and the opponent planes and pass buffers
/// kept from strip to strip (so that their pages are mapped once).
pub struct Strips {
    sigma: f32,
    threshold: f32,
    wiener: bool,
    opacity: f32,
    planes: [Vec<f32>; 3],
    /// The first image row in the planes.
    planes_from: usize,
    scratch: Scratch,
}

impl Strips {
    /// A denoise of noise whose standard deviation is `sigma` (on the 0–1 scale).
    /// `threshold` is the hard threshold in multiples of σ; `wiener` adds the second pass
    /// (about 0.5 dB better, twice the time); `opacity` is the share of the change kept (1:
    /// all of it).
    pub fn new(sigma: f32, threshold: f32, wiener: bool, opacity: f32) -> Self {
        Strips {
            sigma,
            threshold,
            wiener,
            opacity,
            planes: Default::default(),
            planes_from: 0,
            scratch: Scratch::default(),
        }
    }

    /// Denoises output rows `y0..y1` of a `w × h` image of `ch` channels whose row `y` is
    /// `row(y)`, reading [`HALO`] rows of context either side; [`Strips::write`] gives them.
    fn denoise<'a, T: Sample>(
        &mut self,
        ctx: &Ctx,
        (w, h, ch): (usize, usize, usize),
        (y0, y1): (usize, usize),
        row: impl Fn(usize) -> &'a [T] + Sync,
    ) -> Result<(), ImagingError> {
        let (a, b) = (window_start(y0), (y1 + HALO).min(h));
        for plane in &mut self.planes {
            resize_exactly(plane, w * (b - a));
        }
        self.planes_from = a;
        let [p0, p1, p2] = &mut self.planes;
        let plane_rows = p0.par_chunks_mut(w).zip(p1.par_chunks_mut(w));
        let plane_rows = plane_rows.zip(p2.par_chunks_mut(w)).enumerate();
        plane_rows.for_each(|(i, ((r0, r1), r2))| {
            if ch == 3 {
                to_opponent::<3, T>(row(a + i), [r0, r1, r2]);
            } else {
                to_opponent::<4, T>(row(a + i), [r0, r1, r2]);
            }
        });
        for (i, plane) in self.planes.iter_mut().enumerate() {
            // Grey input has empty colour-difference planes: nothing to denoise there.
            if plane.iter().all(|v| v.abs() < 1e-6) {
                continue;
            }
            let step = self.wiener.then(|| wiener_step(i));
            let (sigma, threshold) = (self.sigma, self.threshold);
            let scratch = &mut self.scratch;
            denoise_plane(ctx, plane, w, b - a, sigma, threshold, step, scratch)?;
        }
        Ok(())
    }

    /// Writes denoised rows from `y` on, of the strip [`Strips::denoise`] did last, into
    /// `rows`: blended into the samples already there, or with `original`'s rows when given.
    fn write<T: Sample>(
        &self,
        w: usize,
        ch: usize,
        y: usize,
        rows: &mut [T],
        original: Option<&[T]>,
    ) {
        let row_len = w * ch;
        let rows = rows.par_chunks_mut(row_len).enumerate();
        rows.for_each(|(i, row)| {
            let at = (y + i - self.planes_from) * w;
            let denoised = self.planes.each_ref().map(|p| &p[at..][..w]);
            let original = original.map(|o| &o[i * row_len..][..row_len]);
            if ch == 3 {
                from_opponent::<3, T>(denoised, original, row, self.opacity);
            } else {
                from_opponent::<4, T>(denoised, original, row, self.opacity);
            }
        });
    }
}

/// Denoises the colour channels of `img` in place (see [`Strips::new`] for the settings).
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
    let mut strips = Strips::new(sigma, threshold, wiener, opacity);
    // Original rows from `kept_from` up to the strip being worked: the next window reads
    // them after this strip has overwritten them.
    let mut kept: Vec<f32> = Vec::new();
    let mut kept_from = 0;
    let mut y0 = 0;
    while y0 < h {
        let y1 = (y0 + strip).min(h);
        let data = &img.data;
        strips.denoise(&quiet, (w, h, ch), (y0, y1), |y| {
            if y < y0 {
                &kept[(y - kept_from) * row_len..][..row_len]
            } else {
                &data[y * row_len..][..row_len]
            }
        })?;
        kept_from = window_start(y1);
        kept.clear();
        kept.extend_from_slice(&img.data[kept_from * row_len..y1 * row_len]);
        strips.write(w, ch, y0, &mut img.data[y0 * row_len..y1 * row_len], None);
        ctx.advance(y1 as f32 / h as f32);
        y0 = y1;
    }
    ctx.pass_done();
    Ok(())
}

/// The denoised rows of an 8-bit image, computed a strip at a time as the encoder asks for
/// bands and written as bytes: the image is never widened to floats. Gives exactly the bytes
/// [`denoise`] on the widened image rounds to.
pub struct DenoisedBytes {
    strips: Strips,
    /// The strip last computed, as output bytes, and its first row.
    strip: Vec<u8>,
    strip_from: usize,
}

impl DenoisedBytes {
    pub fn new(strips: Strips) -> Self {
        DenoisedBytes {
            strips,
            strip: Vec::new(),
            strip_from: 0,
        }
    }
}

impl ByteBands for DenoisedBytes {
    /// Output rows of `bytes` from `y0` on into `band`, computing strips as they are needed.
    fn fill(
        &mut self,
        ctx: &Ctx,
        bytes: &Raster<u8>,
        y0: usize,
        band: &mut Raster<u8>,
    ) -> Result<(), ImagingError> {
        let (w, h, ch) = (bytes.width, bytes.height, bytes.channels);
        let row_len = w * ch;
        let y_end = y0 + band.height;
        let band = &mut band.data;
        if w < N || h < N || self.strips.sigma <= 0.0 {
            band.copy_from_slice(&bytes.data[y0 * row_len..y_end * row_len]);
            return Ok(());
        }
        let mut y = y0;
        while y < y_end {
            let strip_end = self.strip_from + self.strip.len() / row_len;
            if !(self.strip_from..strip_end).contains(&y) {
                // A strip from the first row wanted: the windows keep the whole image's
                // blocks, so where a strip starts changes nothing.
                let y1 = (y + strip_rows(w)).min(h);
                let rows = |y| &bytes.data[y * row_len..][..row_len];
                self.strips.denoise(ctx, (w, h, ch), (y, y1), rows)?;
                self.strip.resize((y1 - y) * row_len, 0);
                let original = &bytes.data[y * row_len..y1 * row_len];
                self.strips.write(w, ch, y, &mut self.strip, Some(original));
                self.strip_from = y;
                continue;
            }
            let n = strip_end.min(y_end) - y;
            let from = (y - self.strip_from) * row_len;
            band[(y - y0) * row_len..][..n * row_len]
                .copy_from_slice(&self.strip[from..][..n * row_len]);
            y += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::max_abs_diff;

    impl Shrink<'_> {
        /// Shrinks a block's coefficients and gives the block's weight in the average: the
        /// inverse of its remaining energy. `pilot`: the pilot's coefficients (Wiener only).
        #[inline(always)]
        fn apply(&self, coef: &mut Block, pilot: Option<&Block>) -> f32 {
            // Branch-free, so it runs a lane at a time; one sum per lane, as a single float sum
            // would serialise.
            let mut lanes = [0.0f32; N];
            match *self {
                Shrink::Hard { threshold } => {
                    let dc = coef[0][0];
                    for row in coef.iter_mut() {
                        for (v, count) in row.iter_mut().zip(&mut lanes) {
                            // 1 or 0 as a number, multiplied in: a select here is compiled to a
                            // branch per coefficient.
                            let keep = f32::from(u8::from(v.abs() >= threshold));
                            *v *= keep;
                            *count += keep;
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
                Shrink::Wiener { sigma, .. } => {
                    let s2 = sigma * sigma;
                    let pilot = pilot.expect("the Wiener pass has a pilot");
                    for (row, prow) in coef.iter_mut().zip(pilot) {
                        for ((v, p), energy) in row.iter_mut().zip(prow).zip(&mut lanes) {
                            let g = p * p / p.mul_add(*p, s2);
                            *v *= g;
                            *energy = g.mul_add(g, *energy);
                        }
                    }
                    1.0 / lanes.iter().sum::<f32>().max(1e-3)
                }
            }
        }
    }

    /// [`pass`] into a new buffer.
    fn passed(ctx: &Ctx, plane: &[f32], w: usize, h: usize, shrink: Shrink) -> Vec<f32> {
        let mut out = Vec::new();
        pass(ctx, plane, w, h, shrink, &mut out).unwrap();
        out
    }

    fn load(plane: &[f32], w: usize, x0: usize, y0: usize) -> Block {
        std::array::from_fn(|r| plane[(y0 + r) * w + x0..][..N].try_into().unwrap())
    }

    /// The textbook pass the fast kernels must agree with: each block's own 2-D transform,
    /// averaged into the pixels it covers.
    fn textbook(plane: &[f32], w: usize, h: usize, shrink: Shrink) -> Vec<f32> {
        let dct = Dct::new();
        let step = stride(&shrink);
        let (mut out, mut weights) = (vec![0.0f32; w * h], vec![0.0f32; w * h]);
        for by in corners(h, step) {
            for bx in corners(w, step) {
                let mut coef = dct.forward(&load(plane, w, bx, by));
                let p = match shrink {
                    Shrink::Wiener { pilot, .. } => Some(dct.forward(&load(pilot, w, bx, by))),
                    Shrink::Hard { .. } => None,
                };
                let weight = shrink.apply(&mut coef, p.as_ref());
                for (r, row) in dct.inverse(&coef).iter().enumerate() {
                    let at = (by + r) * w + bx;
                    for i in 0..N {
                        out[at + i] += weight * row[i];
                        weights[at + i] += weight;
                    }
                }
            }
        }
        for (v, wt) in out.iter_mut().zip(&weights) {
            *v /= wt;
        }
        out
    }

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

    /// The banded passes (16 lanes on AVX-512, 8 on AVX2, where the CPU has them) and the
    /// portable kernel over the whole plane against the textbook pass: no seams where bands
    /// or column tiles meet, and the separable rings compute what each block's own transform
    /// does, for every step.
    #[test]
    fn bands_and_kernels_agree_with_a_single_portable_pass() {
        let h = 150;
        let plane = |w: usize| -> Vec<f32> {
            let noisy = crate::quality::add_noise(&vec![100u8; w * h], 20.0, 3);
            let ramp = |i: usize| (i % w) as f32 / w as f32 * 0.3;
            (noisy.iter().enumerate())
                .map(|(i, v)| *v as f32 / 255.0 + ramp(i))
                .collect()
        };
        let cancel = crate::Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let sigma = 20.0 / 255.0;
        let hard = Shrink::Hard {
            threshold: DEFAULT_THRESHOLD * sigma,
        };
        let portable = |plane: &[f32], w: usize, shrink: Shrink| {
            let step = stride(&shrink);
            let (xs, ys) = (corners(w, step), corners(h, step));
            let mut out = vec![0.0; w * h];
            let job = Band {
                dct: &Dct::new(),
                plane,
                w,
                xs: &xs,
                first: 0,
                pixels: (0, w),
                ys: &ys,
                step,
                shrink,
            };
            job.run_tiles::<8>(0, &mut out);
            out
        };
        // The hard pass on one tile: on a wider plane, some coefficient somewhere lies within
        // rounding of the threshold, and its block comes out differently.
        let narrow = plane(53);
        let reference = textbook(&narrow, 53, h, hard);
        assert!(max_abs_diff(&portable(&narrow, 53, hard), &reference) < 1e-5);
        let basic = passed(&ctx, &narrow, 53, h, hard);
        assert!(max_abs_diff(&basic, &reference) < 1e-5);
        // The Wiener passes, smooth in their input, on three column tiles (the last narrow),
        // at the luma plane's step, the hard pass's and the colour differences'.
        let w = 2 * TILE + 53;
        let wide = plane(w);
        let basic = passed(&ctx, &wide, w, h, hard);
        let spread = |v: &[f32]| {
            let col: Vec<f32> = (0..h).map(|y| v[y * w + 20]).collect();
            let mean = col.iter().sum::<f32>() / h as f32;
            (col.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / h as f32).sqrt()
        };
        assert_eq!([wiener_step(0), HARD_STEP, wiener_step(1)], [1, 2, 3]);
        for step in [1, 2, 3] {
            let wiener = Shrink::Wiener {
                pilot: &basic,
                sigma,
                step,
            };
            let banded = passed(&ctx, &wide, w, h, wiener);
            let reference = textbook(&wide, w, h, wiener);
            let portable = portable(&wide, w, wiener);
            assert!(max_abs_diff(&portable, &reference) < 1e-5, "step {step}");
            assert!(max_abs_diff(&banded, &reference) < 1e-5, "step {step}");
            // And it denoised: the flat rows' spread shrank.
            assert!(spread(&banded) < spread(&wide) / 3.0, "step {step}");
        }
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
        for (i, m) in OPPONENT.iter().enumerate() {
            let plane: Vec<f32> = img
                .data
                .chunks_exact(3)
                .map(|p| m[0] * p[0] + m[1] * p[1] + m[2] * p[2])
                .collect();
            let step = Some(wiener_step(i));
            let mut denoised = plane.clone();
            let scratch = &mut Scratch::default();
            denoise_plane(
                &ctx,
                &mut denoised,
                w,
                h,
                sigma,
                DEFAULT_THRESHOLD,
                step,
                scratch,
            )
            .unwrap();
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
