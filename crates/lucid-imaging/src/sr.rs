//! lucid's learned ×2 super-resolution: a small convolutional network on luma that predicts
//! what bicubic interpolation misses. Trained by `crates/lucid-train` on the shared CC0
//! photographs; the weights are committed in `weights/sr2x.bin` and built into the binary.
//!
//! The network takes low-resolution luma and outputs four planes, one per phase of the ×2
//! output grid (sub-pixel convolution); the result is those planes added to the bicubic ×2
//! upscale. Every convolution is "valid" (no padding), so an output pixel depends only on its
//! neighbourhood in the input: tiles computed with that neighbourhood as overlap join without
//! seams, whatever the tile size.

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::raster::Raster;
use crate::{Ctx, ImagingError};

/// One convolution layer: `cout` filters of `cin × k × k` weights (row-major, the layout of
/// [`im2col`]'s rows) and a bias each.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Conv {
    pub fn zeros(cin: usize, cout: usize, k: usize) -> Self {
        Conv {
            cin,
            cout,
            k,
            weight: vec![0.0; cout * cin * k * k],
            bias: vec![0.0; cout],
        }
    }
}

/// Convolutions with ReLU between them; one luma plane in, four phase planes out.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub convs: Vec<Conv>,
}

const MAGIC: &[u8; 4] = b"LSR1";

impl Network {
    /// Input pixels on each side that the output depends on (the sum of the kernel radii).
    pub fn radius(&self) -> usize {
        self.convs.iter().map(|c| c.k / 2).sum()
    }

    /// Multiply-adds per input pixel, for speed estimates.
    pub fn macs_per_pixel(&self) -> usize {
        self.convs.iter().map(|c| c.weight.len()).sum()
    }

    pub fn parameters(&self) -> usize {
        self.convs
            .iter()
            .map(|c| c.weight.len() + c.bias.len())
            .sum()
    }

    /// `LSR1`, the layer count, then per layer `cin cout k` (u32) and its weights and biases
    /// (f32), all little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend((self.convs.len() as u32).to_le_bytes());
        for c in &self.convs {
            for n in [c.cin, c.cout, c.k] {
                out.extend((n as u32).to_le_bytes());
            }
            for v in c.weight.iter().chain(&c.bias) {
                out.extend(v.to_le_bytes());
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let mut rest = bytes
            .strip_prefix(MAGIC)
            .ok_or("not a lucid super-resolution network")?;
        let mut word = || -> Result<[u8; 4], String> {
            let (w, r) = rest.split_first_chunk::<4>().ok_or("truncated network")?;
            rest = r;
            Ok(*w)
        };
        let layers = u32::from_le_bytes(word()?) as usize;
        let mut convs = Vec::with_capacity(layers.min(64));
        for _ in 0..layers {
            let mut dims = [0usize; 3];
            for d in &mut dims {
                *d = u32::from_le_bytes(word()?) as usize;
            }
            let [cin, cout, k] = dims;
            if cin == 0 || cout == 0 || k % 2 == 0 || cin * cout * k * k > 1 << 24 {
                return Err(format!("bad layer shape {cin}x{cout}x{k}"));
            }
            let mut conv = Conv::zeros(cin, cout, k);
            for v in conv.weight.iter_mut().chain(&mut conv.bias) {
                *v = f32::from_le_bytes(word()?);
            }
            convs.push(conv);
        }
        let (first, last) = (convs.first(), convs.last());
        if first.is_none_or(|c| c.cin != 1) || last.is_none_or(|c| c.cout != 4) {
            return Err("the network must take 1 plane and give 4".into());
        }
        if convs.windows(2).any(|w| w[0].cout != w[1].cin) {
            return Err("layer shapes do not chain".into());
        }
        if !rest.is_empty() {
            return Err("trailing bytes after the network".into());
        }
        Ok(Network { convs })
    }

    /// The network built into lucid.
    pub fn builtin() -> &'static Network {
        static NET: OnceLock<Network> = OnceLock::new();
        NET.get_or_init(|| {
            Network::from_bytes(include_bytes!("../weights/sr2x.bin"))
                .expect("the built-in weights are valid")
        })
    }

    /// Runs the network on a `w × h` plane; returns the four phase planes of the
    /// `(w − 2r) × (h − 2r)` interior, phase `2·py + px` first-index-major.
    pub fn forward(&self, input: &[f32], w: usize, h: usize, scratch: &mut Scratch) -> Vec<f32> {
        let (mut a, mut b) = (
            std::mem::take(&mut scratch.a),
            std::mem::take(&mut scratch.b),
        );
        a.clear();
        a.extend_from_slice(input);
        let (mut w, mut h) = (w, h);
        for (i, conv) in self.convs.iter().enumerate() {
            (w, h) = conv_forward(conv, &a, w, h, &mut scratch.col, &mut b);
            if i + 1 < self.convs.len() {
                b.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            std::mem::swap(&mut a, &mut b);
        }
        let out = a.clone();
        (scratch.a, scratch.b) = (a, b);
        out
    }
}

/// Buffers reused between tiles: activations and the unfolded patches.
#[derive(Default)]
pub struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    col: Vec<f32>,
}

/// Unfolds `x` (`c` planes of `w × h`) into the patch matrix of a valid `k × k` convolution:
/// row `(ci·k + dy)·k + dx`, column `y·ow + x` holds `x[ci][y + dy][x + dx]`.
pub fn im2col(x: &[f32], c: usize, w: usize, h: usize, k: usize, col: &mut Vec<f32>) {
    let (ow, oh) = (w + 1 - k, h + 1 - k);
    col.resize(c * k * k * ow * oh, 0.0);
    let mut rows = col.chunks_exact_mut(ow * oh);
    for plane in x.chunks_exact(w * h).take(c) {
        for dy in 0..k {
            for dx in 0..k {
                let row = rows.next().expect("sized above");
                for (y, out) in row.chunks_exact_mut(ow).enumerate() {
                    let start = (y + dy) * w + dx;
                    out.copy_from_slice(&plane[start..start + ow]);
                }
            }
        }
    }
}

/// `out = weight · patches + bias`: a valid convolution of `x` (`cin` planes of `w × h`).
/// Returns the output's width and height.
pub fn conv_forward(
    conv: &Conv,
    x: &[f32],
    w: usize,
    h: usize,
    col: &mut Vec<f32>,
    out: &mut Vec<f32>,
) -> (usize, usize) {
    let (ow, oh) = (w + 1 - conv.k, h + 1 - conv.k);
    let n = ow * oh;
    let kk = conv.cin * conv.k * conv.k;
    im2col(x, conv.cin, w, h, conv.k, col);
    out.clear();
    for &b in &conv.bias {
        out.extend(std::iter::repeat_n(b, n));
    }
    sgemm(conv.cout, kk, n, &conv.weight, false, col, false, out, 1.0);
    (ow, oh)
}

/// `c = a · b + beta · c` for row-major `a` (`m × k`, or its transpose stored `k × m`),
/// `b` (`k × n`, or transposed `n × k`) and `c` (`m × n`).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_transposed: bool,
    b: &[f32],
    b_transposed: bool,
    c: &mut [f32],
    beta: f32,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let (rsa, csa) = if a_transposed { (1, m) } else { (k, 1) };
    let (rsb, csb) = if b_transposed { (1, k) } else { (n, 1) };
    // SAFETY: the assert above keeps every index the strides reach inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The bicubic kernel with a = −0.5 (Keys; Pillow's and MATLAB's `bicubic`).
fn cubic(x: f32) -> f32 {
    const A: f32 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Bicubic ×2 upscale of the interior of a `w × h` plane that has `m ≥ 2` pixels of margin
/// on each side; the result is `2(w − 2m) × 2(h − 2m)`. Output pixel `2i + p` sits at input
/// position `i ∓ 0.25` (pixel centres aligned), like Pillow's and MATLAB's resize.
pub fn bicubic_up2(x: &[f32], w: usize, h: usize, m: usize) -> Vec<f32> {
    assert!(m >= 2 && w > 2 * m && h > 2 * m);
    // Taps i−2..=i+1 for the even phase, i−1..=i+2 for the odd one.
    let even = [cubic(1.75), cubic(0.75), cubic(0.25), cubic(1.25)];
    let odd = [even[3], even[2], even[1], even[0]];
    let (iw, ih) = (w - 2 * m, h - 2 * m);
    let taps = |src: &dyn Fn(usize) -> f32, i: usize, phase: usize| -> f32 {
        let (first, k) = if phase == 0 {
            (i - 2, &even)
        } else {
            (i - 1, &odd)
        };
        (0..4).map(|t| k[t] * src(first + t)).sum()
    };
    // Horizontal pass over every row (the vertical pass needs the margin rows).
    let mut wide = vec![0.0; 2 * iw * h];
    for y in 0..h {
        let row = &x[y * w..(y + 1) * w];
        for i in 0..iw {
            for p in 0..2 {
                wide[y * 2 * iw + 2 * i + p] = taps(&|j| row[j], i + m, p);
            }
        }
    }
    let ow = 2 * iw;
    let mut out = vec![0.0; ow * 2 * ih];
    for i in 0..ih {
        for p in 0..2 {
            let dst = &mut out[(2 * i + p) * ow..][..ow];
            for (xo, d) in dst.iter_mut().enumerate() {
                *d = taps(&|j| wide[j * ow + xo], i + m, p);
            }
        }
    }
    out
}

/// Bicubic ×½ downscale with the kernel stretched to the output's pixel size (antialiased,
/// as Pillow's `resize(BICUBIC)`): how the training data and the quality test make their
/// low-resolution inputs. `w` and `h` must be even.
pub fn bicubic_down2(x: &[f32], w: usize, h: usize) -> Vec<f32> {
    // Each pass shrinks the rows and transposes, so the second pass shrinks the columns.
    let wide = shrink_rows_transposed(x, w, h);
    shrink_rows_transposed(&wide, h, w / 2)
}

/// Halves the rows of a `w × h` plane by antialiased bicubic and returns the result
/// transposed (`h × w/2`). Output pixel o is centred on input 2o + 1; its taps 2o−3..=2o+4
/// are clipped at the borders and renormalised, as Pillow does.
fn shrink_rows_transposed(x: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w / 2 * h];
    for o in 0..w / 2 {
        let lo = (2 * o).saturating_sub(3);
        let hi = (2 * o + 4).min(w - 1);
        let taps: Vec<f32> = (lo..=hi)
            .map(|i| cubic((i as f32 + 0.5 - (2 * o + 1) as f32) / 2.0))
            .collect();
        let sum: f32 = taps.iter().sum();
        let taps: Vec<f32> = taps.into_iter().map(|k| k / sum).collect();
        for y in 0..h {
            let row = &x[y * w + lo..=y * w + hi];
            out[o * h + y] = taps.iter().zip(row).map(|(k, v)| k * v).sum();
        }
    }
    out
}

/// BT.601 weights (JPEG's Y′CbCr): the luma the network works on and is measured on.
pub const LUMA_601: [f32; 3] = [0.299, 0.587, 0.114];

/// The BT.601 luma of an RGB or RGBA raster.
pub fn luma(img: &Raster) -> Vec<f32> {
    img.data
        .chunks_exact(img.channels)
        .map(|p| LUMA_601[0] * p[0] + LUMA_601[1] * p[1] + LUMA_601[2] * p[2])
        .collect()
}

/// PSNR in dB of luma planes (values 0–1) on the studio-range scale that super-resolution
/// papers report (Y = 16 + 219·luma, peak 255), ignoring `border` pixels on each side.
pub fn luma_psnr(a: &[f32], b: &[f32], w: usize, h: usize, border: usize) -> f64 {
    let mut sum = 0.0f64;
    for y in border..h - border {
        for x in border..w - border {
            let d = (a[y * w + x] - b[y * w + x]) as f64 * 219.0;
            sum += d * d;
        }
    }
    let n = ((w - 2 * border) * (h - 2 * border)) as f64;
    10.0 * (255.0f64 * 255.0 / (sum / n)).log10()
}

/// Low-resolution pixels per tile side. Each tile also reads the network's radius around it.
const TILE: usize = 96;

thread_local! {
    /// The network's working buffers, one set per thread.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Frees every pool thread's [`SCRATCH`] (tens of megabytes each) once an upscale is done,
/// so that what follows it, and the next job, has that memory.
fn free_scratch() {
    rayon::broadcast(|_| SCRATCH.take());
}

/// The network's ×2 upscale of one luma plane (`w × h` → `2w × 2h`), in tiles of output
/// rows that run in parallel, check the cancel token and report progress. Pixels outside
/// the plane repeat its edge.
pub fn upscale_plane(
    ctx: &Ctx,
    net: &Network,
    plane: &[f32],
    w: usize,
    h: usize,
) -> Result<Vec<f32>, ImagingError> {
    let mut out = vec![0.0; 4 * w * h];
    let done = ctx.bands(&mut out, 2 * w, 2 * TILE, |y0, band| {
        upscale_plane_band(ctx, net, plane, w, h, y0 / 2, band)
    });
    free_scratch();
    done.map(|()| out)
}

/// Output rows `2·ty ..` of [`upscale_plane`] into `band` (`2w` wide, an even number of rows),
/// a tile at a time, from only the input rows they reach. The cancel token is checked before
/// every tile: a band of a wide image is seconds of work, a tile tens of milliseconds.
fn upscale_plane_band(
    ctx: &Ctx,
    net: &Network,
    plane: &[f32],
    w: usize,
    h: usize,
    ty: usize,
    band: &mut [f32],
) -> Result<(), ImagingError> {
    let r = net.radius().max(2);
    let th = band.len() / (4 * w);
    SCRATCH.with_borrow_mut(|scratch| {
        let mut tile = Vec::new();
        for tx in (0..w).step_by(TILE) {
            ctx.check()?;
            let tw = TILE.min(w - tx);
            let (iw, ih) = (tw + 2 * r, th + 2 * r);
            tile.clear();
            for y in 0..ih {
                let sy = (ty + y).saturating_sub(r).min(h - 1);
                let row = &plane[sy * w..(sy + 1) * w];
                tile.extend((0..iw).map(|x| row[(tx + x).saturating_sub(r).min(w - 1)]));
            }
            let base = bicubic_up2(&tile, iw, ih, r);
            let trim = r - net.radius();
            let (nw, nh) = (iw - 2 * trim, ih - 2 * trim);
            let inner: Vec<f32> = if trim == 0 {
                std::mem::take(&mut tile)
            } else {
                (trim..trim + nh)
                    .flat_map(|y| tile[y * iw + trim..y * iw + trim + nw].iter().copied())
                    .collect()
            };
            let residual = net.forward(&inner, nw, nh, scratch);
            tile = inner;
            let plane_len = tw * th;
            for y in 0..2 * th {
                let dst = &mut band[y * 2 * w + 2 * tx..][..2 * tw];
                let src = &base[y * 2 * tw..][..2 * tw];
                let phase = &residual[(y % 2) * 2 * plane_len..];
                for (x, d) in dst.iter_mut().enumerate() {
                    let p = (x % 2) * plane_len + (y / 2) * tw + x / 2;
                    *d = src[x] + phase[p];
                }
            }
        }
        Ok(())
    })
}

/// Bicubic ×2 of a whole plane, edges repeated: for chroma and alpha, which the eye and the
/// metrics forgive far more than luma.
pub fn bicubic_plane(plane: &[f32], w: usize, h: usize) -> Vec<f32> {
    bicubic_band(plane, w, h, 0, h)
}

/// Output rows `2·ty .. 2·(ty + th)` of [`bicubic_plane`], from only the input rows their
/// taps reach.
fn bicubic_band(plane: &[f32], w: usize, h: usize, ty: usize, th: usize) -> Vec<f32> {
    let m = 2;
    let (pw, ph) = (w + 2 * m, th + 2 * m);
    let padded: Vec<f32> = (0..ph)
        .flat_map(|y| {
            let row = &plane[(ty + y).saturating_sub(m).min(h - 1) * w..][..w];
            (0..pw).map(move |x| row[x.saturating_sub(m).min(w - 1)])
        })
        .collect();
    bicubic_up2(&padded, pw, ph, m)
}

/// The learned ×2 upscale of an RGB or RGBA raster: luma through the network, the colour
/// differences and alpha by bicubic. Colour is premultiplied by alpha on the way, so what
/// lies under transparent pixels does not bleed into edges. Computed in bands of output rows
/// straight into the output: no full-size plane besides it.
pub fn upscale(ctx: &Ctx, net: &Network, img: &Raster) -> Result<Raster, ImagingError> {
    let (w, h, c) = (img.width, img.height, img.channels);
    let alpha = |p: &[f32]| if c == 4 { p[3] } else { 1.0 };
    let mut planes = [vec![0.0; w * h], vec![0.0; w * h], vec![0.0; w * h], vec![]];
    for (i, p) in img.data.chunks_exact(c).enumerate() {
        let a = alpha(p);
        let y = a * (LUMA_601[0] * p[0] + LUMA_601[1] * p[1] + LUMA_601[2] * p[2]);
        planes[0][i] = y;
        planes[1][i] = a * p[2] - y;
        planes[2][i] = a * p[0] - y;
    }
    if c == 4 {
        planes[3] = img.data.chunks_exact(4).map(|p| p[3]).collect();
    }
    ctx.check()?;
    let mut out = Raster::new(2 * w, 2 * h, c);
    let done = ctx.bands(&mut out.data, 2 * w * c, 2 * TILE, |y0, band| {
        let (ty, th) = (y0 / 2, band.len() / (4 * w * c));
        let mut luma = vec![0.0; 4 * w * th];
        upscale_plane_band(ctx, net, &planes[0], w, h, ty, &mut luma)?;
        let blue = bicubic_band(&planes[1], w, h, ty, th);
        let red = bicubic_band(&planes[2], w, h, ty, th);
        let alpha = (c == 4).then(|| bicubic_band(&planes[3], w, h, ty, th));
        for (i, p) in band.chunks_exact_mut(c).enumerate() {
            let y = luma[i];
            let (r, b) = (red[i] + y, blue[i] + y);
            let g = (y - LUMA_601[0] * r - LUMA_601[2] * b) / LUMA_601[1];
            let a = alpha.as_ref().map_or(1.0, |a| a[i].clamp(0.0, 1.0));
            let unpremultiply = if a > 1e-4 { 1.0 / a } else { 0.0 };
            p[0] = r * unpremultiply;
            p[1] = g * unpremultiply;
            p[2] = b * unpremultiply;
            if c == 4 {
                p[3] = a;
            }
        }
        Ok(())
    });
    free_scratch();
    done.map(|()| out)
}

/// The most heap [`upscale`] takes for a `w × h` raster of `channels`, its input not counted:
/// the planes, the ×2 output, and on each of `threads` threads a tile's activations and
/// unfolded patches ([`Scratch`]) and a band's luma, colour and alpha rows.
pub fn upscale_memory(net: &Network, w: usize, h: usize, channels: usize, threads: usize) -> u64 {
    let tile = (TILE + 2 * net.radius()).pow(2);
    let widest = net
        .convs
        .iter()
        .map(|c| c.cin.max(c.cout))
        .max()
        .unwrap_or(1);
    let patches = net
        .convs
        .iter()
        .map(|c| c.cin * c.k * c.k)
        .max()
        .unwrap_or(1);
    let per_thread = (patches + 2 * widest) * tile + (channels + 1) * 4 * (w + 4) * (TILE + 4);
    let floats = channels * w * h + 4 * channels * w * h + threads * per_thread;
    floats as u64 * 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;

    fn test_plane(w: usize, h: usize) -> Vec<f32> {
        (0..w * h)
            .map(|i| ((i * 7919 + i / w * 104_729) % 251) as f32 / 250.0)
            .collect()
    }

    #[test]
    fn bicubic_keeps_constants_and_ramps() {
        let (w, h) = (12, 10);
        let ramp: Vec<f32> = (0..w * h).map(|i| (i % w) as f32).collect();
        let up = bicubic_up2(&ramp, w, h, 2);
        // Output pixel 2i + p sits at input position i + 2 − 0.25 + 0.5p.
        for (j, v) in up[..2 * (w - 4)].iter().enumerate() {
            let expected = 2.0 + (j / 2) as f32 - 0.25 + 0.5 * (j % 2) as f32;
            assert!((v - expected).abs() < 1e-4, "{j}: {v} vs {expected}");
        }
        let down = bicubic_down2(&vec![0.3; w * h], w, h);
        assert!(down.iter().all(|v| (v - 0.3).abs() < 1e-6));
    }

    #[test]
    fn weights_round_trip_and_bad_bytes_are_refused() {
        let net = Network::builtin();
        assert_eq!(&Network::from_bytes(&net.to_bytes()).unwrap(), net);
        let bytes = net.to_bytes();
        assert!(Network::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Network::from_bytes(b"LSR1\0\0\0\0").is_err());
        assert!(Network::from_bytes(b"PNG").is_err());
    }

    /// Tiles join without seams: the upscale equals the network run on the whole plane at once.
    #[test]
    fn tiles_match_the_whole_plane() {
        let net = Network::builtin();
        let (w, h) = (TILE + 37, TILE * 2 + 5);
        let plane = test_plane(w, h);
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let tiled = upscale_plane(&ctx, net, &plane, w, h).unwrap();
        // The whole plane in one piece, edges repeated by the same rule.
        let r = net.radius().max(2);
        let (iw, ih) = (w + 2 * r, h + 2 * r);
        let padded: Vec<f32> = (0..ih)
            .flat_map(|y| {
                let sy = y.saturating_sub(r).min(h - 1);
                let plane = &plane;
                (0..iw).map(move |x| plane[sy * w + x.saturating_sub(r).min(w - 1)])
            })
            .collect();
        let base = bicubic_up2(&padded, iw, ih, r);
        let trim = r - net.radius();
        assert_eq!(
            trim, 0,
            "the test assumes the network's radius covers bicubic's"
        );
        let residual = net.forward(&padded, iw, ih, &mut Scratch::default());
        let worst = (0..4 * w * h)
            .map(|i| {
                let (y, x) = (i / (2 * w), i % (2 * w));
                let p = ((y % 2) * 2 + x % 2) * w * h + (y / 2) * w + x / 2;
                (tiled[i] - (base[i] + residual[p])).abs()
            })
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "tiles differ from the whole by {worst}");
    }

    /// The banded upscale equals the network and bicubic run on the whole planes, composed
    /// afterwards: bands join without seams, alpha and all.
    #[test]
    fn banded_upscale_matches_whole_planes() {
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let (w, h) = (50, 2 * TILE + 17);
        let mut img = Raster::new(w, h, 4);
        let (p0, p1) = (test_plane(w, h), test_plane(h, w));
        for (i, px) in img.data.chunks_exact_mut(4).enumerate() {
            let a = 0.2 + 0.8 * p1[i];
            px.copy_from_slice(&[p0[i], 1.0 - p0[i], 0.5 * p1[i], a]);
        }
        let net = Network::builtin();
        let banded = upscale(&ctx, net, &img).unwrap();
        let plane = |f: &dyn Fn(&[f32]) -> f32| img.data.chunks_exact(4).map(f).collect::<Vec<_>>();
        let luma_of =
            |p: &[f32]| p[3] * (LUMA_601[0] * p[0] + LUMA_601[1] * p[1] + LUMA_601[2] * p[2]);
        let luma = upscale_plane(&ctx, net, &plane(&luma_of), w, h).unwrap();
        let blue = bicubic_plane(&plane(&|p| p[3] * p[2] - luma_of(p)), w, h);
        let red = bicubic_plane(&plane(&|p| p[3] * p[0] - luma_of(p)), w, h);
        let alpha = bicubic_plane(&plane(&|p| p[3]), w, h);
        let mut whole = Vec::new();
        for i in 0..4 * w * h {
            let (y, a) = (luma[i], alpha[i].clamp(0.0, 1.0));
            let (r, b) = (red[i] + y, blue[i] + y);
            let g = (y - LUMA_601[0] * r - LUMA_601[2] * b) / LUMA_601[1];
            whole.extend([r / a, g / a, b / a, a]);
        }
        let worst = crate::raster::max_abs_diff(&banded.data, &whole);
        assert!(worst < 1e-4, "banded upscale differs by {worst}");
    }

    #[test]
    fn cancel_stops_the_upscale() {
        let cancel = Cancel::new();
        cancel.fire();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let plane = test_plane(64, 64);
        let result = upscale_plane(&ctx, Network::builtin(), &plane, 64, 64);
        assert!(matches!(result, Err(ImagingError::Cancelled)));
        // Inside a band too, before any tile: a wide band is seconds of work.
        let mut band = vec![f32::NAN; 2 * 64 * 2 * 16];
        let result = upscale_plane_band(&ctx, Network::builtin(), &plane, 64, 64, 0, &mut band);
        assert!(matches!(result, Err(ImagingError::Cancelled)));
        assert!(band.iter().all(|v| v.is_nan()), "a tile was computed");
    }
}
