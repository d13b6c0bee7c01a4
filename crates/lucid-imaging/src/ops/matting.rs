//! Matting: a foreground alpha matte, found without a trained model, in two steps.
//!
//! 1. **Segmentation** by GrabCut (Rother, Kolmogorov and Blake, 2004) on a copy at most
//!    [`SEGMENT_SIDE`] pixels a side: background and foreground are each modelled by a mixture
//!    of five full-covariance Gaussians in RGB, and the labelling is the minimum cut of a graph
//!    whose terminal links are each pixel's colour likelihoods and whose neighbour links are
//!    cheap to cut across colour edges; the models are refitted to the new labels and the cut
//!    repeated, [`ROUNDS`] times. GrabCut starts from a rectangle a user draws; lucid starts
//!    from the image's border instead: the border strip is background where its colours also
//!    occur on the other sides (a subject that runs off one side, a portrait's shoulders, is
//!    not), and inner pixels near those colours start as probable background, the rest as
//!    probable foreground. Unlike one border colour and a threshold, this keeps a subject whose
//!    colours are close to part of a many-coloured background (a red saucer on brown wood).
//! 2. **Edge** by a guided filter (He, Sun and Tang) of the cut, with the colour as guide, at up
//!    to [`GUIDE_SIDE`] pixels a side; its linear coefficients are interpolated to the full
//!    size and applied to the full-size colours (the fast guided filter), so the matte's edge
//!    follows the image's own edges at full resolution. `Object` keeps that soft matte;
//!    `RemoveBG` hardens it into a crisp cut-out.
//!
//! `mode=mask` answers the matte itself as a grey image.

use lucid_core::geometry::Placement;
use lucid_core::request::Settings;

use crate::codec::RowSource;
use crate::maxflow::Graph;
use crate::ops::Output;
use crate::raster::{Raster, percentile, resample};
use crate::{Ctx, ImagingError};

/// Longest side of the copy GrabCut segments.
pub const SEGMENT_SIDE: usize = 400;
/// Longest side at which the guided filter fits the matte to the image.
pub const GUIDE_SIDE: usize = 1024;
/// Rounds of refitting the colour models and cutting.
pub const ROUNDS: usize = 5;
/// Width of the border strip taken as background, in pixels of the segmented copy.
const STRIP: usize = 4;
/// Gaussians per colour model.
const COMPONENTS: usize = 5;
/// Weight of the neighbour links against the colour likelihoods (GrabCut's γ).
const GAMMA: f64 = 50.0;
/// Least colour distance (0–255 scale) that counts as different from the background's colours,
/// so that a flat, noisy backdrop does not make its own noise look like a subject.
const LEAST_DISTANCE: f32 = 8.0;

/// The matte of `img` as RGBA rows (or the mask's), computed as the encoder reads them: the
/// output is never held whole.
pub fn run<'a>(
    ctx: &'a Ctx<'a>,
    model: &str,
    s: &Settings,
    img: Raster,
) -> Result<Output<'a>, ImagingError> {
    // Passes: the guide's resample, the rounds, the output's rows.
    ctx.plan_passes(ROUNDS + 2);
    let guide = shrink(ctx, &img, GUIDE_SIDE)?;
    let small = shrink(&ctx.quiet(), &guide, SEGMENT_SIDE)?;
    let foreground = segment(ctx, &small)?;
    let fit = EdgeFit::new(&guide, &foreground, small.width, small.height);
    drop((guide, small));
    let mask_only = s
        .text("mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("mask") || m.eq_ignore_ascii_case("alpha"));
    Ok(Output::Rows(Box::new(MatteRows {
        ctx,
        img,
        fit,
        crisp: model == "RemoveBG",
        mask_only,
    })))
}

/// The output rows: each pixel's colour with its alpha from the edge fit, or the mask.
struct MatteRows<'a> {
    ctx: &'a Ctx<'a>,
    img: Raster,
    fit: EdgeFit,
    /// `RemoveBG`: the soft matte hardened to a ramp of a few pixels.
    crisp: bool,
    mask_only: bool,
}

impl RowSource for MatteRows<'_> {
    fn width(&self) -> usize {
        self.img.width
    }

    fn height(&self) -> usize {
        self.img.height
    }

    fn channels(&self) -> usize {
        4
    }

    fn fill(&mut self, y0: usize, band: &mut Raster) -> Result<(), ImagingError> {
        let (w, h, c) = (self.img.width, self.img.height, self.img.channels);
        let fit = &self.fit;
        self.ctx.quiet().rows(&mut band.data, w * 4, |i, row| {
            let y = y0 + i;
            let src = &self.img.data[y * w * c..(y + 1) * w * c];
            let gy = on_grid(y, h, fit.h);
            for (x, (o, p)) in row.chunks_exact_mut(4).zip(src.chunks_exact(c)).enumerate() {
                let mut a = fit.alpha(on_grid(x, w, fit.w), gy, p);
                if self.crisp {
                    a = ((a - 0.5) * 4.0 + 0.5).clamp(0.0, 1.0);
                }
                if c == 4 {
                    a *= p[3];
                }
                if self.mask_only {
                    o.copy_from_slice(&[a, a, a, 1.0]);
                } else {
                    o.copy_from_slice(&[p[0], p[1], p[2], a]);
                }
            }
        })?;
        self.ctx.advance((y0 + band.height) as f32 / h as f32);
        Ok(())
    }
}

/// Peak memory of matting a `w`×`h` image of `c` channels: the image, the guide copy and the
/// segmentation's graph or the edge fit's planes (whose four coefficient planes stay while the
/// output rows are made; those are the encoder's bands, which the pipeline counts).
pub(crate) fn peak_memory(w: usize, h: usize, c: usize) -> u64 {
    let pixels_at = |side: usize| {
        let scale = (side as f64 / w.max(h) as f64).min(1.0);
        let size = |v: usize| (v as f64 * scale).round().max(1.0);
        (size(w) * size(h)) as u64
    };
    let (guide, small) = (pixels_at(GUIDE_SIDE), pixels_at(SEGMENT_SIDE));
    let image = (w * h * c * 4) as u64;
    // The graph's nodes and eight arcs, the neighbour links and colours: about 220 bytes a
    // pixel; the edge fit holds at most twenty planes (window means, products, coefficients).
    let fitting = guide * (c as u64 * 4) + (small * 220).max(guide * 20 * 4);
    image + fitting
}

/// The image scaled (Lanczos-3) so its longer side is at most `side`; small images as they are.
/// One pass of `ctx`'s progress either way.
fn shrink(ctx: &Ctx, img: &Raster, side: usize) -> Result<Raster, ImagingError> {
    let longer = img.width.max(img.height);
    if longer <= side {
        ctx.pass_done();
        return Ok(img.clone());
    }
    let scale = side as f64 / longer as f64;
    let size = |v: usize| ((v as f64 * scale).round() as u32).max(1);
    resample(
        ctx,
        img,
        &Placement::identity(size(img.width), size(img.height)),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    /// Fixed: the border strip's background.
    Background,
    ProbableBackground,
    ProbableForeground,
}

/// GrabCut of `img` (see the module): true where a pixel is foreground.
fn segment(ctx: &Ctx, img: &Raster) -> Result<Vec<bool>, ImagingError> {
    let (w, h, c) = (img.width, img.height, img.channels);
    let px: Vec<[f64; 3]> = img
        .data
        .chunks_exact(c)
        .map(|p| [p[0], p[1], p[2]].map(|v| v.clamp(0.0, 1.0) as f64 * 255.0))
        .collect();
    let mut labels = initial_labels(&px, w, h);
    let links = NeighbourLinks::new(&px, w, h);
    let mut bg_parts = vec![0u8; px.len()];
    let mut fg_parts = vec![0u8; px.len()];
    kmeans_parts(&px, &labels, false, &mut bg_parts);
    kmeans_parts(&px, &labels, true, &mut fg_parts);
    for _ in 0..ROUNDS {
        ctx.check()?;
        let is_fg = |l: &Label| *l == Label::ProbableForeground;
        if !labels.iter().any(is_fg) {
            break;
        }
        let bg = Gmm::fit(&px, &bg_parts, |i| !is_fg(&labels[i]));
        let fg = Gmm::fit(&px, &fg_parts, |i| is_fg(&labels[i]));
        let mut graph = Graph::new(px.len(), px.len() * 4);
        for (i, (p, l)) in px.iter().zip(&labels).enumerate() {
            match l {
                Label::Background => graph.set_terminals(i, 0.0, links.fixed),
                // Cutting the source link labels the pixel background, at the cost of its
                // unlikeliness as background; the sink link the other way round.
                _ => graph.set_terminals(i, -bg.density(p).ln(), -fg.density(p).ln()),
            }
        }
        links.add_to(&mut graph);
        graph.solve();
        for (i, l) in labels.iter_mut().enumerate() {
            if *l != Label::Background {
                *l = if graph.on_source_side(i) {
                    Label::ProbableForeground
                } else {
                    Label::ProbableBackground
                };
            }
        }
        // Each pixel to its likeliest Gaussian in its side's model, for the next fit.
        for (i, p) in px.iter().enumerate() {
            if is_fg(&labels[i]) {
                fg_parts[i] = fg.likeliest(p);
            } else {
                bg_parts[i] = bg.likeliest(p);
            }
        }
        ctx.advance(1.0);
        ctx.pass_done();
    }
    Ok(labels
        .iter()
        .map(|l| *l == Label::ProbableForeground)
        .collect())
}

/// The starting labels: the border strip's background (each side judged by the other three's
/// colours), pixels near its colours probable background, the rest probable foreground.
fn initial_labels(px: &[[f64; 3]], w: usize, h: usize) -> Vec<Label> {
    let strip = STRIP.min(w / 4).min(h / 4).max(1);
    let sides_of = |i: usize| {
        let (x, y) = (i % w, i / w);
        [y < strip, y + strip >= h, x < strip, x + strip >= w]
    };
    let mut fixed = vec![false; px.len()];
    for side in 0..4 {
        let others: Vec<[f64; 3]> = (0..px.len())
            .filter(|&i| {
                let s = sides_of(i);
                !s[side] && s.iter().any(|b| *b)
            })
            .map(|i| px[i])
            .collect();
        if others.is_empty() {
            continue;
        }
        let centres = kmeans(&others, 8);
        let limit = near_limit(
            others.iter().map(|p| nearest(&centres, p).1).collect(),
            0.95,
            1.5,
        );
        for (i, f) in fixed.iter_mut().enumerate() {
            if sides_of(i)[side] && nearest(&centres, &px[i]).1 < limit {
                *f = true;
            }
        }
    }
    if !fixed.iter().any(|f| *f) {
        // Every side unlike the others: take the whole strip.
        for (i, f) in fixed.iter_mut().enumerate() {
            *f = sides_of(i).iter().any(|b| *b);
        }
    }
    let border: Vec<[f64; 3]> = (0..px.len()).filter(|&i| fixed[i]).map(|i| px[i]).collect();
    let centres = kmeans(&border, 8);
    let d: Vec<f32> = px.iter().map(|p| nearest(&centres, p).1).collect();
    // Strict here: a colour only near the background's starts as background (skin and hair
    // near a beige backdrop's colours start as subject); the cut decides the rest.
    let limit = near_limit(
        (0..px.len()).filter(|&i| fixed[i]).map(|i| d[i]).collect(),
        0.9,
        1.0,
    );
    (0..px.len())
        .map(|i| {
            if fixed[i] {
                Label::Background
            } else if d[i] < limit {
                Label::ProbableBackground
            } else {
                Label::ProbableForeground
            }
        })
        .collect()
}

/// How far from a set of colours' k-means centres a colour may be and still count as one of
/// them, from the set's own distances to the centres: their `quantile` times `slack`.
fn near_limit(mut distances: Vec<f32>, quantile: f32, slack: f32) -> f32 {
    (*percentile(&mut distances, quantile) * slack).max(LEAST_DISTANCE)
}

/// The index of the centre nearest `p` and its distance.
fn nearest(centres: &[[f64; 3]], p: &[f64; 3]) -> (usize, f32) {
    let mut best = (0, f64::INFINITY);
    for (k, c) in centres.iter().enumerate() {
        let d = (0..3).map(|j| (p[j] - c[j]).powi(2)).sum::<f64>();
        if d < best.1 {
            best = (k, d);
        }
    }
    (best.0, best.1.sqrt() as f32)
}

/// Up to `k` k-means centres of `points` (at most 4,096 of them, evenly picked): farthest-point
/// seeding from the mean, then ten rounds of Lloyd's iteration. Deterministic.
fn kmeans(points: &[[f64; 3]], k: usize) -> Vec<[f64; 3]> {
    let step = points.len().div_ceil(4096).max(1);
    let sample: Vec<[f64; 3]> = points.iter().step_by(step).copied().collect();
    if sample.is_empty() {
        return vec![[0.0; 3]];
    }
    let mean = sample
        .iter()
        .fold([0.0; 3], |a, p| [0, 1, 2].map(|j| a[j] + p[j]));
    let mut centres = vec![mean.map(|v| v / sample.len() as f64)];
    while centres.len() < k {
        let (far, d) = sample
            .iter()
            .map(|p| (p, nearest(&centres, p).1))
            .fold((&sample[0], -1.0f32), |a, b| if b.1 > a.1 { b } else { a });
        if d <= 0.0 {
            break;
        }
        centres.push(*far);
    }
    for _ in 0..10 {
        let mut sums = vec![([0.0; 3], 0usize); centres.len()];
        for p in &sample {
            let s = &mut sums[nearest(&centres, p).0];
            for j in 0..3 {
                s.0[j] += p[j];
            }
            s.1 += 1;
        }
        for (c, (sum, n)) in centres.iter_mut().zip(&sums) {
            if *n > 0 {
                *c = sum.map(|v| v / *n as f64);
            }
        }
    }
    centres
}

/// Each pixel of one side (`foreground` or not) to its nearest of [`COMPONENTS`] k-means
/// centres of that side's colours: the Gaussians' first assignment.
fn kmeans_parts(px: &[[f64; 3]], labels: &[Label], foreground: bool, parts: &mut [u8]) {
    let on_side = |l: &Label| (*l == Label::ProbableForeground) == foreground;
    let points: Vec<[f64; 3]> = px
        .iter()
        .zip(labels)
        .filter(|(_, l)| on_side(l))
        .map(|(p, _)| *p)
        .collect();
    let centres = kmeans(&points, COMPONENTS);
    for ((p, l), part) in px.iter().zip(labels).zip(parts.iter_mut()) {
        if on_side(l) {
            *part = nearest(&centres, p).0 as u8;
        }
    }
}

/// A Gaussian of a colour mixture, with its weight folded into the normalisation.
struct Gaussian {
    mean: [f64; 3],
    inverse: [[f64; 3]; 3],
    /// weight / √((2π)³ det Σ).
    scale: f64,
}

impl Gaussian {
    fn weighted_density(&self, p: &[f64; 3]) -> f64 {
        let d = [0, 1, 2].map(|j| p[j] - self.mean[j]);
        let mut m = 0.0;
        for (a, row) in self.inverse.iter().enumerate() {
            for (b, v) in row.iter().enumerate() {
                m += d[a] * v * d[b];
            }
        }
        self.scale * (-0.5 * m).exp()
    }
}

/// A Gaussian mixture model of a set of colours.
struct Gmm(Vec<Gaussian>);

impl Gmm {
    /// Fits the mixture to the pixels `member` picks, each to the Gaussian `parts` names.
    fn fit(px: &[[f64; 3]], parts: &[u8], member: impl Fn(usize) -> bool) -> Gmm {
        let mut n = [0f64; COMPONENTS];
        let mut sum = [[0f64; 3]; COMPONENTS];
        let mut prod = [[[0f64; 3]; 3]; COMPONENTS];
        for (i, p) in px.iter().enumerate().filter(|(i, _)| member(*i)) {
            let k = parts[i] as usize;
            n[k] += 1.0;
            for a in 0..3 {
                sum[k][a] += p[a];
                for b in 0..3 {
                    prod[k][a][b] += p[a] * p[b];
                }
            }
        }
        let total: f64 = n.iter().sum::<f64>().max(1.0);
        let gaussians = (0..COMPONENTS)
            .filter(|&k| n[k] > 0.0)
            .map(|k| {
                let mean = sum[k].map(|v| v / n[k]);
                let mut cov = [[0.0; 3]; 3];
                for a in 0..3 {
                    for b in 0..3 {
                        cov[a][b] = prod[k][a][b] / n[k] - mean[a] * mean[b];
                    }
                    // A floor on the spread: a flat region's Gaussian must not be a spike.
                    cov[a][a] += 1.0;
                }
                let (inverse, det) = invert(&cov);
                let norm = (2.0 * std::f64::consts::PI).powf(1.5) * det.sqrt();
                Gaussian {
                    mean,
                    inverse,
                    scale: n[k] / total / norm,
                }
            })
            .collect();
        Gmm(gaussians)
    }

    /// The mixture's density at `p`, kept above zero so its logarithm is finite.
    fn density(&self, p: &[f64; 3]) -> f64 {
        self.0
            .iter()
            .map(|g| g.weighted_density(p))
            .sum::<f64>()
            .max(1e-300)
    }

    fn likeliest(&self, p: &[f64; 3]) -> u8 {
        let mut best = (0, -1.0);
        for (k, g) in self.0.iter().enumerate() {
            let d = g.weighted_density(p);
            if d > best.1 {
                best = (k, d);
            }
        }
        best.0 as u8
    }
}

/// The inverse of a symmetric positive-definite 3×3 matrix and its determinant.
fn invert(m: &[[f64; 3]; 3]) -> ([[f64; 3]; 3], f64) {
    let cof = |a: usize, b: usize| {
        let (r0, r1) = ((a + 1) % 3, (a + 2) % 3);
        let (c0, c1) = ((b + 1) % 3, (b + 2) % 3);
        m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
    };
    let det = m[0][0] * cof(0, 0) + m[0][1] * cof(0, 1) + m[0][2] * cof(0, 2);
    let mut inv = [[0.0; 3]; 3];
    for (a, row) in inv.iter_mut().enumerate() {
        for (b, v) in row.iter_mut().enumerate() {
            // The inverse is the transposed cofactors over the determinant.
            *v = cof(b, a) / det;
        }
    }
    (inv, det)
}

/// GrabCut's neighbour links over the 8-neighbourhood: γ·exp(−β‖Δcolour‖²), divided by the
/// distance for diagonals, with β the inverse of twice the mean squared colour step.
struct NeighbourLinks {
    w: usize,
    h: usize,
    /// Per pixel: the links to its right, lower, lower-right and lower-left neighbours.
    weights: Vec<[f64; 4]>,
    /// The terminal link that pins a fixed pixel, more than all its neighbour links.
    fixed: f64,
}

impl NeighbourLinks {
    const OFFSETS: [(isize, isize); 4] = [(1, 0), (0, 1), (1, 1), (-1, 1)];

    fn new(px: &[[f64; 3]], w: usize, h: usize) -> Self {
        let step = |i: usize, (dx, dy): (isize, isize)| {
            let (x, y) = ((i % w) as isize + dx, (i / w) as isize + dy);
            (x >= 0 && (x as usize) < w && (y as usize) < h).then(|| {
                let q = &px[y as usize * w + x as usize];
                (0..3).map(|j| (px[i][j] - q[j]).powi(2)).sum::<f64>()
            })
        };
        let (mut sum, mut count) = (0.0, 0usize);
        for i in 0..px.len() {
            for o in Self::OFFSETS {
                if let Some(d) = step(i, o) {
                    sum += d;
                    count += 1;
                }
            }
        }
        let beta = if sum > 0.0 {
            count as f64 / (2.0 * sum)
        } else {
            0.0
        };
        let weights = (0..px.len())
            .map(|i| {
                Self::OFFSETS.map(|o| {
                    step(i, o).map_or(0.0, |d| {
                        let length = if o.0 != 0 && o.1 != 0 {
                            std::f64::consts::SQRT_2
                        } else {
                            1.0
                        };
                        GAMMA / length * (-beta * d).exp()
                    })
                })
            })
            .collect();
        NeighbourLinks {
            w,
            h,
            weights,
            fixed: 9.0 * GAMMA,
        }
    }

    fn add_to(&self, graph: &mut Graph) {
        for (i, links) in self.weights.iter().enumerate() {
            let (x, y) = ((i % self.w) as isize, (i / self.w) as isize);
            for (o, wt) in Self::OFFSETS.iter().zip(links) {
                let (qx, qy) = (x + o.0, y + o.1);
                if *wt > 0.0 && qx >= 0 && (qx as usize) < self.w && (qy as usize) < self.h {
                    graph.add_edge(i, qy as usize * self.w + qx as usize, *wt, *wt);
                }
            }
        }
    }
}

/// The guided filter's coefficients on colour: alpha ≈ a·(R, G, B) + b in each window, a and b
/// averaged over the windows that cover a pixel, at the guide's size. A colour guide (He et
/// al.'s choice for mattes) follows an edge between colours of equal luma, a red saucer on brown
/// wood, which a luma guide would blur across the window.
struct EdgeFit {
    /// Per guide pixel: the coefficients of R, G and B, then the offset.
    coeffs: [Vec<f32>; 4],
    w: usize,
    h: usize,
}

impl EdgeFit {
    /// Regularisation of the fit (a colour variance): below it, a window's colours are too
    /// flat to steer the edge and the matte is smoothed instead.
    const EPS: f64 = 1e-3;
    /// The colour products whose window means make each window's covariance.
    const PAIRS: [(usize, usize); 6] = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)];

    /// Fits the segmentation `mask` (`mw`×`mh`) to `guide`.
    fn new(guide: &Raster, mask: &[bool], mw: usize, mh: usize) -> Self {
        let (w, h, c) = (guide.width, guide.height, guide.channels);
        let colour: [Vec<f32>; 3] =
            [0, 1, 2].map(|k| guide.data.chunks_exact(c).map(|p| p[k]).collect());
        let p: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let (sx, sy) = (on_grid(x, w, mw), on_grid(y, h, mh));
                let (corners, weights) = bilinear_taps(mw, mh, sx, sy);
                (0..4)
                    .filter(|&t| mask[corners[t]])
                    .map(|t| weights[t])
                    .sum::<f32>()
            })
            .collect();
        let r = (w.max(h) / 128).max(2);
        let mean = |v: &[f32]| box_mean(v, w, h, r);
        let mean_product =
            |u: &[f32], v: &[f32]| mean(&u.iter().zip(v).map(|(a, b)| a * b).collect::<Vec<_>>());
        let mean_i = colour.each_ref().map(|v| mean(v));
        let mean_p = mean(&p);
        let mean_ip = colour.each_ref().map(|v| mean_product(v, &p));
        let corr = Self::PAIRS.map(|(u, v)| mean_product(&colour[u], &colour[v]));
        drop((colour, p));
        let mut coeffs: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0; w * h]);
        for i in 0..w * h {
            let m = [0, 1, 2].map(|k| f64::from(mean_i[k][i]));
            let mut cov = [[0.0; 3]; 3];
            for (n, &(u, v)) in Self::PAIRS.iter().enumerate() {
                let s = f64::from(corr[n][i]) - m[u] * m[v];
                cov[u][v] = s;
                cov[v][u] = s;
            }
            for (k, row) in cov.iter_mut().enumerate() {
                row[k] += Self::EPS;
            }
            let (inverse, _) = invert(&cov);
            let mp = f64::from(mean_p[i]);
            let cov_ip = [0, 1, 2].map(|k| f64::from(mean_ip[k][i]) - m[k] * mp);
            let a = inverse.map(|row| row[0] * cov_ip[0] + row[1] * cov_ip[1] + row[2] * cov_ip[2]);
            for k in 0..3 {
                coeffs[k][i] = a[k] as f32;
            }
            coeffs[3][i] = (mp - a[0] * m[0] - a[1] * m[1] - a[2] * m[2]) as f32;
        }
        drop((mean_i, mean_p, mean_ip, corr));
        EdgeFit {
            coeffs: coeffs.map(|v| mean(&v)),
            w,
            h,
        }
    }

    /// The matte at guide position (`gx`, `gy`) for a pixel of colour `p`.
    fn alpha(&self, gx: f32, gy: f32, p: &[f32]) -> f32 {
        let (corners, weights) = bilinear_taps(self.w, self.h, gx, gy);
        let at = |k: usize| {
            let plane = &self.coeffs[k];
            (0..4).map(|t| plane[corners[t]] * weights[t]).sum::<f32>()
        };
        (at(0) * p[0] + at(1) * p[1] + at(2) * p[2] + at(3)).clamp(0.0, 1.0)
    }
}

/// Where the centre of pixel `v` of a side `from` pixels long falls on a grid `to` points long
/// over the same extent (in grid units, pixel centres at whole numbers).
fn on_grid(v: usize, from: usize, to: usize) -> f32 {
    (v as f32 + 0.5) * to as f32 / from as f32 - 0.5
}

/// The four grid points around (`x`, `y`) on a `w`×`h` grid, edges clamped, and their
/// bilinear weights.
fn bilinear_taps(w: usize, h: usize, x: f32, y: f32) -> ([usize; 4], [f32; 4]) {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    (
        [y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1],
        [
            (1.0 - fx) * (1.0 - fy),
            fx * (1.0 - fy),
            (1.0 - fx) * fy,
            fx * fy,
        ],
    )
}

/// The mean of `src` over the (2r+1)² window around each pixel, the window cut at the edges.
fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    // Along x: each row's prefix sums.
    let mut rows = vec![0.0; w * h];
    let mut prefix = vec![0.0f64; w + 1];
    for (row, out) in src.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        for (i, v) in row.iter().enumerate() {
            prefix[i + 1] = prefix[i] + f64::from(*v);
        }
        for (i, o) in out.iter_mut().enumerate() {
            let (lo, hi) = (i.saturating_sub(r), (i + r + 1).min(w));
            *o = ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
        }
    }
    // Along y: a running sum of whole rows (rows enter and leave the window), so the pass
    // reads memory in order.
    let mut out = vec![0.0; w * h];
    let mut sum = vec![0.0f64; w];
    for y in 0..r.min(h) {
        for (s, v) in sum.iter_mut().zip(&rows[y * w..(y + 1) * w]) {
            *s += f64::from(*v);
        }
    }
    for y in 0..h {
        if y + r < h {
            for (s, v) in sum.iter_mut().zip(&rows[(y + r) * w..(y + r + 1) * w]) {
                *s += f64::from(*v);
            }
        }
        if y > r {
            let gone = y - r - 1;
            for (s, v) in sum.iter_mut().zip(&rows[gone * w..(gone + 1) * w]) {
                *s -= f64::from(*v);
            }
        }
        let count = ((y + r + 1).min(h) - y.saturating_sub(r)) as f64;
        for (o, s) in out[y * w..(y + 1) * w].iter_mut().zip(&sum) {
            *o = (s / count) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;

    fn matte(img: Raster, model: &str) -> Vec<f32> {
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let out = run(&ctx, model, &Settings::default(), img).unwrap();
        let out = out.into_raster().unwrap();
        out.data.chunks_exact(4).map(|p| p[3]).collect()
    }

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
        for model in ["Object", "RemoveBG"] {
            let alpha = matte(img.clone(), model);
            assert!(alpha[20 * w + 20] > 0.99, "{model}");
            assert!(alpha[0] < 0.01, "{model}");
        }
    }

    /// A subject in a colour that also covers part of the background (a red square on a
    /// background half red, half blue) is kept: its colour is background only where the
    /// border shows it, and the cut follows the edges.
    #[test]
    fn keeps_a_subject_whose_colour_is_in_part_of_the_background() {
        let (w, h) = (80, 60);
        let mut img = Raster::new(w, h, 3);
        for y in 0..h {
            for x in 0..w {
                let p = &mut img.data[(y * w + x) * 3..(y * w + x) * 3 + 3];
                let subject = (30..50).contains(&x) && (20..40).contains(&y);
                let colour = if subject {
                    [0.8, 0.1, 0.1]
                } else if x < 15 {
                    [0.85, 0.15, 0.1]
                } else {
                    [0.1, 0.2, 0.8]
                };
                p.copy_from_slice(&colour);
            }
        }
        let alpha = matte(img, "RemoveBG");
        assert!(alpha[30 * w + 40] > 0.99, "subject");
        assert!(alpha[30 * w + 5] < 0.01, "red background");
        assert!(alpha[10 * w + 60] < 0.01, "blue background");
    }

    /// Images down to a pixel are matted without failing; a flat image is all background.
    #[test]
    fn tiny_and_flat_images_are_all_background() {
        for (w, h) in [(1, 1), (2, 3), (7, 1), (30, 20)] {
            let img = Raster {
                width: w,
                height: h,
                channels: 3,
                data: vec![0.4; w * h * 3],
            };
            let alpha = matte(img, "Object");
            assert_eq!(alpha.len(), w * h);
            assert!(alpha.iter().all(|a| *a < 0.01), "{w}x{h}: {alpha:?}");
        }
    }

    #[test]
    fn box_mean_is_the_mean_over_the_window_cut_at_the_edges() {
        let (w, h, r) = (9, 7, 2);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32).collect();
        let out = box_mean(&src, w, h, r);
        for y in 0..h {
            for x in 0..w {
                let (mut sum, mut n) = (0.0, 0.0);
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                        sum += src[yy * w + xx];
                        n += 1.0;
                    }
                }
                assert!((out[y * w + x] - sum / n).abs() < 1e-5, "({x}, {y})");
            }
        }
    }
}
