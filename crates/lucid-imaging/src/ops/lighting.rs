//! Colour and lighting: automatic levels and gamma (Adjust), plus contrast-limited adaptive
//! histogram equalisation of luma (Adjust V2), gray-world white balance, and duotone
//! colorization of luma.

use lucid_core::request::Settings;

use super::{ByteBands, Output, byte_bands};
use crate::raster::{Raster, blend_to_u8, luma_of, widen};
use crate::{Ctx, ImagingError};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, mut img: Raster) -> Result<Raster, ImagingError> {
    let strength = s.number("strength", 1.0) as f32;
    // Only a partial strength needs the original to blend with.
    let original = (strength < 1.0).then(|| img.clone());
    ctx.plan_passes(4);
    match model {
        "White Balance" => white_balance(&mut img),
        "Colorize" => colorize(&mut img),
        _ => {
            auto_levels(&mut img);
            if model == "Adjust V2" {
                clahe(ctx, &mut img, CLAHE_CLIP, CLAHE_WEIGHT)?;
            }
        }
    }
    ctx.check()?;
    if let Some(original) = original {
        img.blend_with(&original, strength);
    }
    img.clamp();
    Ok(img)
}

/// The most memory [`run`] holds, in rasters of the image's size (the image included): the
/// per-pixel models (auto levels among them) work in place, Adjust V2's equalisation also
/// holds a luma plane and its equalised copy; a partial `strength` keeps the original beside.
pub fn peak_rasters(model: &str, s: &Settings) -> f64 {
    let own = match model {
        "Adjust V2" => 2.0,
        _ => 1.0,
    };
    let original = if s.number("strength", 1.0) < 1.0 {
        1.0
    } else {
        0.0
    };
    own + original
}

/// Contrast limit of Adjust V2's equalisation: a bin may hold at most this many times the
/// tile's average count (OpenCV's `createCLAHE` default is 40 on 8×8 tiles; photographs look
/// natural nearer 2–3).
const CLAHE_CLIP: f32 = 2.5;
/// Share of the equalised luma in the result, the rest being the levelled image.
const CLAHE_WEIGHT: f32 = 0.6;
/// Tiles across the shorter side.
const CLAHE_TILES: usize = 8;
const CLAHE_BINS: usize = 256;

/// Contrast-limited adaptive histogram equalisation (Zuiderveld 1994) of luma: each tile's
/// histogram, clipped at `clip` times its mean and the excess spread evenly, becomes a tone
/// curve; every pixel takes the bilinear blend of its four nearest tiles' curves, so tiles do
/// not show. The luma change goes equally into R, G and B (hue kept), weighted by `weight`.
pub fn clahe(ctx: &Ctx, img: &mut Raster, clip: f32, weight: f32) -> Result<(), ImagingError> {
    let (w, h) = (img.width, img.height);
    let tile = (w.min(h) / CLAHE_TILES).max(8);
    let (gx, gy) = (w.div_ceil(tile), h.div_ceil(tile));
    let luma = img.luma();
    let bin = |v: f32| ((v.clamp(0.0, 1.0) * (CLAHE_BINS - 1) as f32) + 0.5) as usize;
    let mut curves = vec![[0f32; CLAHE_BINS]; gx * gy];
    for ty in 0..gy {
        for tx in 0..gx {
            let mut hist = [0f32; CLAHE_BINS];
            let (x0, x1) = (tx * tile, ((tx + 1) * tile).min(w));
            let (y0, y1) = (ty * tile, ((ty + 1) * tile).min(h));
            for y in y0..y1 {
                for &v in &luma[y * w + x0..y * w + x1] {
                    hist[bin(v)] += 1.0;
                }
            }
            let count = ((x1 - x0) * (y1 - y0)) as f32;
            let limit = (clip * count / CLAHE_BINS as f32).max(1.0);
            let excess: f32 = hist.iter().map(|n| (n - limit).max(0.0)).sum();
            let mut acc = 0.0;
            for (i, n) in hist.iter().enumerate() {
                acc += n.min(limit) + excess / CLAHE_BINS as f32;
                curves[ty * gx + tx][i] = acc / count;
            }
        }
    }
    // Tile centres sit at (t + 0.5) · tile; beyond the outer centres a pixel uses the edge tile.
    let between = |p: usize, n: usize| {
        let f = ((p as f32 + 0.5) / tile as f32 - 0.5).clamp(0.0, (n - 1) as f32);
        let t0 = (f as usize).min(n - 1);
        (t0, (t0 + 1).min(n - 1), f - t0 as f32)
    };
    let mut equalised = vec![0f32; w * h];
    ctx.rows(&mut equalised, w, |y, row| {
        let (ty0, ty1, fy) = between(y, gy);
        for (x, out) in row.iter_mut().enumerate() {
            let (tx0, tx1, fx) = between(x, gx);
            let b = bin(luma[y * w + x]);
            let top = curves[ty0 * gx + tx0][b] * (1.0 - fx) + curves[ty0 * gx + tx1][b] * fx;
            let bottom = curves[ty1 * gx + tx0][b] * (1.0 - fx) + curves[ty1 * gx + tx1][b] * fx;
            let v = top * (1.0 - fy) + bottom * fy;
            *out = luma[y * w + x] + weight * (v - luma[y * w + x]);
        }
    })?;
    img.apply_luma_change(ctx, &luma, &equalised)
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
    let levels = Levels::of(|| img.data.chunks_exact(c).map(|p| [p[0], p[1], p[2]]));
    for p in img.data.chunks_exact_mut(c) {
        for v in &mut p[..3] {
            *v = levels.apply(*v);
        }
    }
}

/// Auto levels' curve for one image.
struct Levels {
    lo: f32,
    hi: f32,
    gamma: f32,
}

impl Levels {
    /// The curve of the RGB pixels `pixels()` gives, in two passes over them: the luma
    /// histogram's percentiles, then the mean luma once stretched.
    fn of<I: Iterator<Item = [f32; 3]>>(pixels: impl Fn() -> I) -> Levels {
        let mut hist = [0u64; 1024];
        let mut total = 0u64;
        for p in pixels() {
            hist[(luma_of(&p).clamp(0.0, 1.0) * 1023.0) as usize] += 1;
            total += 1;
        }
        let lo = percentile(&hist, total, 0.005);
        let hi = percentile(&hist, total, 0.995).max(lo + 0.05);
        let mut levels = Levels { lo, hi, gamma: 1.0 };
        let mut mean = 0.0f64;
        for p in pixels() {
            mean += luma_of(&p.map(|v| levels.stretch(v))) as f64;
        }
        let mean = (mean / total.max(1) as f64).clamp(0.02, 0.98) as f32;
        levels.gamma = (0.45f32.ln() / mean.ln()).clamp(0.5, 2.0);
        levels
    }

    fn stretch(&self, v: f32) -> f32 {
        ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }

    fn apply(&self, v: f32) -> f32 {
        self.stretch(v).powf(self.gamma)
    }
}

/// Gray world: gains that make the mean of unclipped pixels neutral, keeping its brightness.
pub fn white_balance(img: &mut Raster) {
    let c = img.channels;
    let Some(gains) = gray_world_gains(img.data.chunks_exact(c).map(|p| [p[0], p[1], p[2]])) else {
        return;
    };
    for p in img.data.chunks_exact_mut(c) {
        for ch in 0..3 {
            p[ch] *= gains[ch];
        }
    }
}

/// The gray-world gains of these RGB pixels: those that make the mean of the unclipped ones
/// neutral, keeping its brightness. `None` when every pixel is clipped.
fn gray_world_gains(pixels: impl Iterator<Item = [f32; 3]>) -> Option<[f32; 3]> {
    let mut sum = [0.0f64; 3];
    let mut n = 0u64;
    for p in pixels {
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
        return None;
    }
    let mean = sum.map(|s| s / n as f64);
    let grey = (mean[0] + mean[1] + mean[2]) / 3.0;
    Some(mean.map(|m| (grey / m.max(1e-4)).clamp(0.5, 2.0) as f32))
}

/// [`run`] on the decoded 8-bit image, for the models whose change is a function of each pixel
/// and a few numbers measured on the whole image: White Balance's gains and Adjust's levels
/// come from passes over the bytes, then each channel maps through a 256-entry table (Colorize:
/// each pixel through the palette) as the encoder asks for rows, so the image is never widened
/// to floats. Gives exactly the bytes [`run`] on the widened image rounds to. The bytes come
/// back for Adjust V2, whose equalisation needs the luma plane.
pub(crate) fn run_on_bytes<'a>(
    ctx: &'a Ctx<'a>,
    model: &str,
    s: &Settings,
    bytes: Raster<u8>,
) -> Result<Output<'a>, Raster<u8>> {
    let strength = s.number("strength", 1.0) as f32;
    let pixels =
        || (bytes.data.chunks_exact(bytes.channels)).map(|p| [p[0], p[1], p[2]].map(widen));
    let table = |f: &dyn Fn(f32) -> f32| -> [u8; 256] {
        std::array::from_fn(|v| {
            let original = widen(v as u8);
            blend_to_u8(strength, original, f(original))
        })
    };
    let tables = match model {
        "White Balance" => {
            let gains = gray_world_gains(pixels()).unwrap_or([1.0; 3]);
            gains.map(|gain| table(&|v| v * gain))
        }
        "Adjust" => {
            let levels = Levels::of(pixels);
            [table(&|v| levels.apply(v)); 3]
        }
        "Colorize" => {
            return Ok(byte_bands(
                ctx,
                bytes,
                PixelMap(move |p: &[u8]| {
                    let original = [p[0], p[1], p[2]].map(widen);
                    let col = duotone(luma_of(&original));
                    [0, 1, 2].map(|ch| blend_to_u8(strength, original[ch], col[ch]))
                }),
            ));
        }
        _ => return Err(bytes),
    };
    let map = move |p: &[u8]| [0, 1, 2].map(|ch| tables[ch][p[ch] as usize]);
    Ok(byte_bands(ctx, bytes, PixelMap(map)))
}

/// The heap [`run_on_bytes`] takes beside the decoded bytes and the encoder's bands; `None`
/// for the models it hands back.
pub(crate) fn bytes_memory(model: &str) -> Option<u64> {
    matches!(model, "White Balance" | "Adjust" | "Colorize").then_some(0)
}

/// Each pixel's R, G and B computed from its bytes alone (alpha kept).
struct PixelMap<F>(F);

impl<F: Fn(&[u8]) -> [u8; 3] + Send + Sync> ByteBands for PixelMap<F> {
    fn fill(
        &mut self,
        ctx: &Ctx,
        bytes: &Raster<u8>,
        y0: usize,
        band: &mut Raster<u8>,
    ) -> Result<(), ImagingError> {
        let (c, row_len) = (bytes.channels, bytes.row_len());
        let source = &bytes.data[y0 * row_len..][..band.data.len()];
        ctx.rows(&mut band.data, row_len, |y, out| {
            let pixels = out
                .chunks_exact_mut(c)
                .zip(source[y * row_len..].chunks_exact(c));
            for (out, p) in pixels {
                out[..3].copy_from_slice(&(self.0)(p));
                out[3..].copy_from_slice(&p[3..]);
            }
        })
    }
}

/// Maps luma onto a duotone palette (cool shadows → warm mid-tones → warm whites), then
/// rescales so each pixel keeps its luma.
pub fn colorize(img: &mut Raster) {
    let c = img.channels;
    for p in img.data.chunks_exact_mut(c) {
        let col = duotone(luma_of(p));
        p[..3].copy_from_slice(&col);
    }
}

/// The palette's colour for luma `y`, scaled to have that luma.
fn duotone(y: f32) -> [f32; 3] {
    const STOPS: [(f32, [f32; 3]); 4] = [
        (0.0, [0.02, 0.03, 0.06]),
        (0.35, [0.30, 0.27, 0.30]),
        (0.65, [0.78, 0.62, 0.50]),
        (1.0, [1.0, 0.97, 0.92]),
    ];
    let y = y.clamp(0.0, 1.0);
    let i = STOPS
        .iter()
        .rposition(|(t, _)| *t <= y)
        .unwrap_or(0)
        .min(STOPS.len() - 2);
    let (t0, c0) = STOPS[i];
    let (t1, c1) = STOPS[i + 1];
    let f = ((y - t0) / (t1 - t0)).clamp(0.0, 1.0);
    let col: [f32; 3] = [0, 1, 2].map(|ch| c0[ch] + (c1[ch] - c0[ch]) * f);
    let cy = luma_of(&col);
    let k = if cy > 1e-4 { y / cy } else { 0.0 };
    col.map(|v| v * k)
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

    /// From the decoded bytes White Balance, Adjust and Colorize stream bytes, exactly those
    /// their result on the working raster rounds to, RGB and RGBA, at full and partial
    /// strength; Adjust V2 hands the bytes back.
    #[test]
    fn per_pixel_models_run_on_the_decoded_bytes() {
        let cancel = crate::Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        for channels in [3, 4] {
            // A warm cast: red high, blue low, with some clipped pixels the means leave out.
            let mut bytes = Raster::<u8>::new(90, 300, channels);
            for (i, p) in bytes.data.chunks_exact_mut(channels).enumerate() {
                let v = (i * 7919 % 160) as u8;
                p[..3].copy_from_slice(&[v + 90, v + 40, v / 2 + 10]);
                if i % 50 == 0 {
                    p[..3].copy_from_slice(&[255, 255, 255]);
                }
                if channels == 4 {
                    p[3] = (i % 256) as u8;
                }
            }
            for (model, settings) in ["White Balance", "Adjust", "Colorize"]
                .into_iter()
                .flat_map(|m| [(m, r#"{"strength": 0.7}"#), (m, "{}")])
            {
                let settings = Settings::from_json(settings);
                let Ok(from_bytes) = run_on_bytes(&ctx, model, &settings, bytes.clone()) else {
                    panic!("{model} runs on bytes");
                };
                assert!(matches!(from_bytes, Output::ByteRows(_)));
                let from_bytes = from_bytes.into_raster().unwrap();
                let from_floats = run(&ctx, model, &settings, bytes.clone().widened());
                assert!(
                    from_bytes.to_u8() == from_floats.unwrap().to_u8(),
                    "{model}"
                );
                assert!(from_bytes.to_u8() != bytes.data, "{model} changed nothing");
            }
        }
        let bytes = Raster::<u8>::new(16, 16, 3);
        assert!(run_on_bytes(&ctx, "Adjust V2", &Settings::default(), bytes).is_err());
    }

    /// A dim, low-contrast left half next to a bright right half: equalisation spreads each
    /// half's tones (global levels cannot, the full range being used overall), keeps their
    /// order, and leaves no step at the tile borders inside a flat area.
    #[test]
    fn clahe_raises_local_contrast_smoothly() {
        let (w, h) = (128, 64);
        let mut img = Raster::new(w, h, 3);
        for y in 0..h {
            for x in 0..w {
                let base = if x < w / 2 { 0.1 } else { 0.8 };
                let ripple = 0.03 * (((x * 7 + y * 3) % 11) as f32 / 10.0);
                let flat = y >= h / 2 && x < w / 2;
                let v = if flat { 0.12 } else { base + ripple };
                img.data[(y * w + x) * 3..][..3].fill(v);
            }
        }
        let spread = |img: &Raster| {
            let top_left: Vec<f32> = (0..h / 2)
                .flat_map(|y| (0..w / 2).map(move |x| (y, x)))
                .map(|(y, x)| img.data[(y * w + x) * 3])
                .collect();
            let mean = top_left.iter().sum::<f32>() / top_left.len() as f32;
            (top_left.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / top_left.len() as f32)
                .sqrt()
        };
        let before = spread(&img);
        let original = img.clone();
        let cancel = crate::Cancel::new();
        clahe(&Ctx::new(&cancel, &|_| {}, (0.0, 1.0)), &mut img, 2.5, 1.0).unwrap();
        assert!(spread(&img) > 2.0 * before, "{} vs {before}", spread(&img));
        // Order kept: of two neighbours, the brighter stays brighter.
        let (a, b) = ((3 * w + 5) * 3, (3 * w + 6) * 3);
        assert!(original.data[a] < original.data[b] && img.data[a] < img.data[b]);
        // The flat area changes smoothly: neighbours differ by little.
        for y in h / 2 + 1..h {
            for x in 1..w / 2 - 1 {
                let d = img.data[(y * w + x) * 3] - img.data[(y * w + x + 1) * 3];
                assert!(d.abs() < 0.02, "step of {d} at ({x}, {y})");
            }
        }
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
        assert!((luma_of(p) - 0.5).abs() < 0.01);
    }
}
