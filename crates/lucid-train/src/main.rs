//! Trains lucid's ×2 super-resolution network (`lucid_imaging::sr`) on the CPU.
//!
//! Data: the luma of every image in `--images` except the held-out ones, made low-resolution
//! by an antialiased bicubic ×½ (rounded to 8 bits, as a saved image would be). Each step
//! draws random patches with random flips and rotations, runs the network on the
//! low-resolution patch and fits its four phase planes to what bicubic ×2 missed (mean
//! squared error, Adam, cosine learning-rate decay). Everything random comes from one seeded
//! ChaCha stream and per-patch gradients are summed in a fixed order, so a run is repeatable.
//! The held-out images are only measured, never trained on.
//!
//! The defaults are the committed network's: about 40 minutes on two cores.
//!
//! ```sh
//! cargo run --release -p lucid-train -- --images ../shared/images \
//!     --out crates/lucid-imaging/weights/sr2x.bin
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use lucid_core::geometry::Placement;
use lucid_imaging::raster::resample;
use lucid_imaging::sr::{self, Conv, Network, bicubic_down2, bicubic_up2, sgemm};
use lucid_imaging::{Cancel, Ctx, codec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

#[derive(Parser)]
#[command(about = "Train lucid's x2 super-resolution network")]
struct Args {
    /// Folder of training images (PNG, JPEG, TIFF).
    #[arg(long)]
    images: PathBuf,
    /// Images in that folder never trained on, only measured.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "astronaut.png,coffee.png"
    )]
    hold_out: Vec<String>,
    /// Where to write the weights.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Optimisation steps.
    #[arg(long, default_value_t = 12_000)]
    steps: usize,
    /// Patches per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Low-resolution patch side (the output is twice that).
    #[arg(long, default_value_t = 40)]
    patch: usize,
    /// Sizes at which every training image is also used (its luma shrunk by Lanczos-3 before
    /// the ×½ bicubic), so nine photographs teach detail at several scales.
    #[arg(long, value_delimiter = ',', default_value = "1,0.9,0.8,0.7,0.6,0.5")]
    scales: Vec<f64>,
    /// Feature maps per hidden layer.
    #[arg(long, default_value_t = 48)]
    width: usize,
    /// Hidden 3×3 layers between the 5×5 input layer and the 3×3 output layer.
    #[arg(long, default_value_t = 4)]
    hidden: usize,
    /// Peak learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// The error fitted: `l2` (mean squared) or `l1` (Charbonnier, a smooth absolute error,
    /// which trains super-resolution networks to sharper results).
    #[arg(long, default_value = "l1", value_parser = ["l1", "l2"])]
    loss: String,
    /// Measure the held-out images every this many steps.
    #[arg(long, default_value_t = 1000)]
    report_every: usize,
}

/// A training image: its luma and the low-resolution luma made from it.
struct Sample {
    name: String,
    hr: Vec<f32>,
    lr: Vec<f32>,
    w: usize,
    h: usize,
}

/// The image at `scale` of its size (Lanczos-3), as luma.
fn load(path: &std::path::Path, scale: f64) -> anyhow::Result<Sample> {
    let bytes = std::fs::read(path)?;
    let mut img = codec::decode(&bytes).with_context(|| format!("decoding {}", path.display()))?;
    if scale != 1.0 {
        let size = |n: usize| Some((n as f64 * scale).round() as u32);
        let (w, h) = (img.width as u32, img.height as u32);
        let placement = Placement::compute(w, h, size(img.width), size(img.height), false)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let cancel = Cancel::new();
        img = resample(&Ctx::new(&cancel, &|_| {}, (0.0, 1.0)), &img, &placement)?;
        img.clamp();
    }
    let (w, h) = (img.width / 2 * 2, img.height / 2 * 2);
    let full = sr::luma(&img);
    let hr: Vec<f32> = (0..h)
        .flat_map(|y| full[y * img.width..y * img.width + w].iter().copied())
        .collect();
    let lr = bicubic_down2(&hr, w, h)
        .into_iter()
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) / 255.0)
        .collect();
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let name = if scale == 1.0 {
        name.into()
    } else {
        format!("{name}@{scale}")
    };
    Ok(Sample { name, hr, lr, w, h })
}

/// One of the eight symmetries of the square, applied to an `n × n` patch.
fn dihedral(x: &[f32], n: usize, d: u8) -> Vec<f32> {
    let mut out = vec![0.0; n * n];
    for y in 0..n {
        for xx in 0..n {
            let (mut sx, mut sy) = (xx, y);
            if d & 1 != 0 {
                sx = n - 1 - sx;
            }
            if d & 2 != 0 {
                sy = n - 1 - sy;
            }
            if d & 4 != 0 {
                (sx, sy) = (sy, sx);
            }
            out[y * n + xx] = x[sy * n + sx];
        }
    }
    out
}

/// A training patch: the low-resolution input with the network's margin, and the four phase
/// planes of what bicubic misses.
struct Patch {
    input: Vec<f32>,
    target: Vec<f32>,
}

fn draw_patch(rng: &mut ChaCha8Rng, data: &[Sample], areas: &[usize], p: usize, r: usize) -> Patch {
    let total: usize = areas.iter().sum();
    let mut pick = rng.random_range(0..total);
    let s = data
        .iter()
        .zip(areas)
        .find(|(_, a)| {
            let hit = pick < **a;
            pick = pick.saturating_sub(**a);
            hit
        })
        .map(|(s, _)| s)
        .expect("weighted pick lands in some image");
    let (lw, lh) = (s.w / 2, s.h / 2);
    let n = p + 2 * r;
    let (x0, y0) = (rng.random_range(0..=lw - n), rng.random_range(0..=lh - n));
    let d = rng.random_range(0..8u8);
    let lr: Vec<f32> = (0..n)
        .flat_map(|y| s.lr[(y0 + y) * lw + x0..][..n].iter().copied())
        .collect();
    let (hx, hy) = (2 * (x0 + r), 2 * (y0 + r));
    let hr: Vec<f32> = (0..2 * p)
        .flat_map(|y| s.hr[(hy + y) * s.w + hx..][..2 * p].iter().copied())
        .collect();
    let (lr, hr) = (dihedral(&lr, n, d), dihedral(&hr, 2 * p, d));
    let base = bicubic_up2(&lr, n, n, r);
    let mut target = vec![0.0; 4 * p * p];
    for y in 0..2 * p {
        for x in 0..2 * p {
            let phase = (y % 2) * 2 + x % 2;
            target[phase * p * p + (y / 2) * p + x / 2] = hr[y * 2 * p + x] - base[y * 2 * p + x];
        }
    }
    Patch { input: lr, target }
}

/// Adds `col`'s columns back onto the planes they were unfolded from (the adjoint of im2col).
fn col2im(col: &[f32], c: usize, w: usize, h: usize, k: usize) -> Vec<f32> {
    let (ow, oh) = (w + 1 - k, h + 1 - k);
    let mut x = vec![0.0; c * w * h];
    let mut rows = col.chunks_exact(ow * oh);
    for plane in x.chunks_exact_mut(w * h) {
        for dy in 0..k {
            for dx in 0..k {
                let row = rows.next().expect("sized by the caller");
                for (y, src) in row.chunks_exact(ow).enumerate() {
                    let dst = &mut plane[(y + dy) * w + dx..][..ow];
                    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                }
            }
        }
    }
    x
}

/// Charbonnier's ε: below it the L1 loss rounds off into a parabola.
const CHARBONNIER_EPS: f32 = 1e-3;

/// The error of one patch (squared, or Charbonnier with `l1`) and its gradient with respect
/// to every weight.
fn patch_gradient(net: &Network, patch: &Patch, side: usize, l1: bool) -> (f64, Network) {
    let mut acts = vec![patch.input.clone()];
    let mut cols = Vec::new();
    let mut dims = vec![(side, side)];
    for (i, conv) in net.convs.iter().enumerate() {
        let (w, h) = dims[i];
        let mut col = Vec::new();
        let mut out = Vec::new();
        let next = sr::conv_forward(conv, &acts[i], w, h, &mut col, &mut out);
        if i + 1 < net.convs.len() {
            out.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        acts.push(out);
        cols.push(col);
        dims.push(next);
    }
    let out = acts.last().expect("one layer at least");
    let mut delta: Vec<f32> = out.iter().zip(&patch.target).map(|(o, t)| o - t).collect();
    let loss;
    if l1 {
        let eps2 = CHARBONNIER_EPS * CHARBONNIER_EPS;
        loss = delta.iter().map(|d| (d * d + eps2).sqrt() as f64).sum();
        delta.iter_mut().for_each(|d| *d /= (*d * *d + eps2).sqrt());
    } else {
        loss = delta.iter().map(|d| (*d as f64).powi(2)).sum();
        delta.iter_mut().for_each(|d| *d *= 2.0);
    }
    let mut grad = net.clone();
    for (i, conv) in net.convs.iter().enumerate().rev() {
        let (ow, oh) = dims[i + 1];
        let n = ow * oh;
        let kk = conv.cin * conv.k * conv.k;
        if i + 1 < net.convs.len() {
            for (d, a) in delta.iter_mut().zip(&acts[i + 1]) {
                if *a <= 0.0 {
                    *d = 0.0;
                }
            }
        }
        let g = &mut grad.convs[i];
        sgemm(
            conv.cout,
            n,
            kk,
            &delta,
            false,
            &cols[i],
            true,
            &mut g.weight,
            0.0,
        );
        for (b, d) in g.bias.iter_mut().zip(delta.chunks_exact(n)) {
            *b = d.iter().sum();
        }
        if i > 0 {
            let mut dcol = vec![0.0; kk * n];
            sgemm(
                kk,
                conv.cout,
                n,
                &conv.weight,
                true,
                &delta,
                false,
                &mut dcol,
                0.0,
            );
            let (w, h) = dims[i];
            delta = col2im(&dcol, conv.cin, w, h, conv.k);
        }
    }
    (loss, grad)
}

/// A normally distributed sample (Box–Muller), from the seeded stream.
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

fn init(args: &Args, rng: &mut ChaCha8Rng) -> Network {
    let mut shapes = vec![(1, args.width, 5)];
    shapes.extend(std::iter::repeat_n(
        (args.width, args.width, 3),
        args.hidden,
    ));
    shapes.push((args.width, 4, 3));
    let last = shapes.len() - 1;
    let convs = shapes
        .into_iter()
        .enumerate()
        .map(|(i, (cin, cout, k))| {
            let mut c = Conv::zeros(cin, cout, k);
            // He initialisation; the output layer starts near zero, i.e. at plain bicubic.
            let std = if i == last {
                1e-3
            } else {
                (2.0 / (cin * k * k) as f32).sqrt()
            };
            c.weight.iter_mut().for_each(|w| *w = std * normal(rng));
            c
        })
        .collect();
    Network { convs }
}

/// Held-out PSNR on luma of an upscale of the sample's low-resolution plane, in dB, after
/// rounding to 8 bits as an output would be.
fn held_out_psnr(up: Vec<f32>, s: &Sample) -> f64 {
    let clipped: Vec<f32> = up
        .into_iter()
        .map(|x| (x * 255.0).round().clamp(0.0, 255.0) / 255.0)
        .collect();
    sr::luma_psnr(&clipped, &s.hr, s.w, s.h, 2)
}

/// Held-out PSNR of the network on the sample, in dB.
fn measure(net: &Network, s: &Sample) -> f64 {
    let cancel = Cancel::new();
    let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
    let up = sr::upscale_plane(&ctx, net, &s.lr, s.w / 2, s.h / 2).expect("not cancelled");
    held_out_psnr(up, s)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut paths: Vec<_> = std::fs::read_dir(&args.images)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for path in paths {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["png", "jpg", "jpeg", "tif", "tiff"].contains(&ext.to_ascii_lowercase().as_str()) {
            continue;
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if args.hold_out.iter().any(|h| *h == name) {
            held.push(load(&path, 1.0)?);
        } else {
            for &scale in &args.scales {
                train.push(load(&path, scale)?);
            }
        }
    }
    if held.len() != args.hold_out.len() {
        bail!("held-out images {:?} not all found", args.hold_out);
    }
    // The bicubic baseline never changes: measured once per held-out image.
    let bicubic_db: Vec<f64> = held
        .iter()
        .map(|s| held_out_psnr(sr::bicubic_plane(&s.lr, s.w / 2, s.h / 2), s))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut net = init(&args, &mut rng);
    let r = net.radius();
    let side = args.patch + 2 * r;
    let areas: Vec<usize> = train
        .iter()
        .map(|s| {
            let fits = s.w / 2 >= side && s.h / 2 >= side;
            if fits { s.w * s.h } else { 0 }
        })
        .collect();
    eprintln!(
        "training on {} images at {} sizes ({}), holding out {}; {} parameters, {} multiply-adds per input pixel",
        train.len() / args.scales.len(),
        args.scales.len(),
        train
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        held.iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        net.parameters(),
        net.macs_per_pixel(),
    );
    let params = net.parameters();
    let (mut m, mut v) = (vec![0.0f32; params], vec![0.0f32; params]);
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let started = Instant::now();
    let mut running = 0.0;
    let scale = 1.0 / (args.batch * 4 * args.patch * args.patch) as f32;
    for step in 1..=args.steps {
        let patches: Vec<Patch> = (0..args.batch)
            .map(|_| draw_patch(&mut rng, &train, &areas, args.patch, r))
            .collect();
        let grads: Vec<(f64, Network)> = patches
            .par_iter()
            .map(|p| patch_gradient(&net, p, side, args.loss == "l1"))
            .collect();
        let mut loss = 0.0;
        let mut total = vec![0.0f32; params];
        for (l, g) in &grads {
            loss += l;
            let flat = g.convs.iter().flat_map(|c| c.weight.iter().chain(&c.bias));
            total.iter_mut().zip(flat).for_each(|(t, g)| *t += g);
        }
        running += loss * scale as f64;
        // Cosine decay from the peak rate to 1 % of it, after a short warm-up.
        let progress = step as f64 / args.steps as f64;
        let warm = (step as f64 / 200.0).min(1.0);
        let lr =
            args.lr * warm * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
        let (c1, c2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
        let weights = net
            .convs
            .iter_mut()
            .flat_map(|c| c.weight.iter_mut().chain(c.bias.iter_mut()));
        for (((w, g), m), v) in weights.zip(&total).zip(&mut m).zip(&mut v) {
            let g = g * scale;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *w -= (lr as f32) * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
        if step % args.report_every == 0 || step == args.steps {
            let scores: Vec<String> = held
                .iter()
                .zip(&bicubic_db)
                .map(|(s, &bic_db)| {
                    let net_db = measure(&net, s);
                    format!(
                        "{} {net_db:.2} dB (bicubic {bic_db:.2}, +{:.2})",
                        s.name,
                        net_db - bic_db
                    )
                })
                .collect();
            eprintln!(
                "step {step}: loss {:.3e}, {:.0} s; held out: {}",
                running / args.report_every as f64,
                started.elapsed().as_secs_f64(),
                scores.join("; ")
            );
            running = 0.0;
            std::fs::write(&args.out, net.to_bytes())?;
        }
    }
    std::fs::write(&args.out, net.to_bytes())?;
    eprintln!(
        "wrote {} ({} bytes)",
        args.out.display(),
        net.to_bytes().len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The back-propagated gradient agrees with finite differences of the loss.
    #[test]
    fn gradients_match_finite_differences() {
        let args = Args::parse_from([
            "t", "--images", ".", "--out", "x", "--width", "4", "--hidden", "1",
        ]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut net = init(&args, &mut rng);
        for c in &mut net.convs {
            c.weight.iter_mut().for_each(|w| *w *= 20.0);
            c.bias.iter_mut().for_each(|b| *b = 0.05 * normal(&mut rng));
        }
        let side = 6 + 2 * net.radius();
        let patch = Patch {
            input: (0..side * side).map(|_| rng.random()).collect(),
            target: (0..4 * 36).map(|_| rng.random()).collect(),
        };
        for l1 in [false, true] {
            let (_, grad) = patch_gradient(&net, &patch, side, l1);
            let loss = |net: &Network| patch_gradient(net, &patch, side, l1).0;
            for (layer, index) in [(0, 3), (1, 17), (2, 5), (2, 40)] {
                let eps = 1e-2;
                let mut plus = net.clone();
                plus.convs[layer].weight[index] += eps;
                let mut minus = net.clone();
                minus.convs[layer].weight[index] -= eps;
                let numeric = (loss(&plus) - loss(&minus)) / (2.0 * eps as f64);
                let analytic = grad.convs[layer].weight[index] as f64;
                assert!(
                    (numeric - analytic).abs() <= 0.02 * numeric.abs().max(1.0),
                    "l1 {l1}, layer {layer} weight {index}: {analytic} vs {numeric}"
                );
            }
        }
    }
}
