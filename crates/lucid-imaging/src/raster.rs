//! The working image (interleaved f32 RGB or RGBA, 0–1, sRGB-encoded) and the filters that
//! several operations share: Gaussian blur, unsharp masking, Richardson–Lucy deconvolution,
//! edge-preserving smoothing and resampling. Every pass runs in parallel row bands
//! through [`Ctx::rows`], so it can be cancelled and reports progress.

use fast_image_resize as fir;
use image::DynamicImage;
use lucid_core::geometry::Placement;

use crate::{Ctx, ImagingError};

/// An image in working form (f32 samples, 0–1), or as 8-bit samples where an operation works
/// on the decoded bytes directly (a plain resample). `channels` is 3 (RGB) or 4 (RGBA,
/// straight alpha).
#[derive(Debug, Clone, PartialEq)]
pub struct Raster<T = f32> {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<T>,
}

/// A sample type rasters hold: f32 (working form) or u8 (as decoded and encoded).
pub trait Sample: bytemuck::Pod + Default + Send + Sync {
    /// The resizer's pixel type for 3 or 4 interleaved channels of this sample.
    fn pixel_type(channels: usize) -> fir::PixelType;
    /// The samples as 8-bit bytes, as the encoders write them.
    fn to_bytes(samples: &[Self]) -> std::borrow::Cow<'_, [u8]>;
    /// The samples as 16-bit words, for PNG and TIFF outputs of 16-bit inputs.
    fn to_words(samples: &[Self]) -> Vec<u16>;
    /// The sample in working form (0–1).
    fn working(self) -> f32;
    /// A working value as this sample: itself, or the byte the encoders would write of it.
    fn from_working(v: f32) -> Self;
}

impl Sample for f32 {
    fn pixel_type(channels: usize) -> fir::PixelType {
        if channels == 4 {
            fir::PixelType::F32x4
        } else {
            fir::PixelType::F32x3
        }
    }

    fn to_bytes(samples: &[f32]) -> std::borrow::Cow<'_, [u8]> {
        use rayon::prelude::*;
        samples
            .par_iter()
            .map(|v| to_u8(*v))
            .collect::<Vec<_>>()
            .into()
    }

    fn to_words(samples: &[f32]) -> Vec<u16> {
        use rayon::prelude::*;
        samples
            .par_iter()
            .map(|v| (v.clamp(0.0, 1.0) * 65535.0 + 0.5) as u16)
            .collect()
    }

    fn working(self) -> f32 {
        self
    }

    fn from_working(v: f32) -> f32 {
        v
    }
}

impl Sample for u8 {
    fn pixel_type(channels: usize) -> fir::PixelType {
        if channels == 4 {
            fir::PixelType::U8x4
        } else {
            fir::PixelType::U8x3
        }
    }

    fn to_bytes(samples: &[u8]) -> std::borrow::Cow<'_, [u8]> {
        samples.into()
    }

    fn to_words(samples: &[u8]) -> Vec<u16> {
        samples.iter().map(|&v| u16::from(v) * 257).collect()
    }

    fn working(self) -> f32 {
        widen(self)
    }

    fn from_working(v: f32) -> u8 {
        to_u8(v)
    }
}

/// Rec. 709 luma weights, applied to the sRGB-encoded values (a luma, not a luminance).
pub const LUMA: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// The [`LUMA`] of a pixel's first three samples (R, G, B).
#[inline(always)]
pub fn luma_of(p: &[f32]) -> f32 {
    LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2]
}

/// The `q` quantile (0–1) of `v`, which it reorders.
pub(crate) fn percentile(v: &mut [f32], q: f32) -> &f32 {
    let at = ((v.len() - 1) as f32 * q).round() as usize;
    v.select_nth_unstable_by(at, f32::total_cmp).1
}

/// The largest absolute difference between two equally long sample slices (tests compare
/// streamed, banded or tiled results with the whole-image ones by it).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

impl<T: Sample> Raster<T> {
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        Raster {
            width,
            height,
            channels,
            data: vec![T::default(); width * height * channels],
        }
    }

    /// Makes the raster `height` rows tall, keeping its allocation: a buffer filled again
    /// band after band. Rows it already had keep their (stale) samples; callers overwrite them.
    pub fn set_height(&mut self, height: usize) {
        let len = self.width * height * self.channels;
        // Exactly: `resize` alone would double the allocation when a band grows by a few
        // rows (a chunk's halo), and the memory estimates count rows, not capacity.
        self.data.reserve_exact(len.saturating_sub(self.data.len()));
        self.data.resize(len, T::default());
        self.height = height;
    }

    pub fn has_alpha(&self) -> bool {
        self.channels == 4
    }

    pub fn row_len(&self) -> usize {
        self.width * self.channels
    }

    /// The samples as 8-bit bytes.
    pub fn to_u8(&self) -> Vec<u8> {
        T::to_bytes(&self.data).into_owned()
    }

    /// The samples as 16-bit words.
    pub fn to_u16(&self) -> Vec<u16> {
        T::to_words(&self.data)
    }
}

impl Raster<u8> {
    /// The decoded image's own bytes, when it is 8-bit RGB or RGBA (the image is handed back
    /// otherwise).
    pub fn from_dynamic8(img: DynamicImage) -> Result<Self, DynamicImage> {
        let (width, height) = (img.width() as usize, img.height() as usize);
        let (channels, data) = match img {
            DynamicImage::ImageRgb8(rgb) => (3, rgb.into_raw()),
            DynamicImage::ImageRgba8(rgba) => (4, rgba.into_raw()),
            other => return Err(other),
        };
        Ok(Raster {
            width,
            height,
            channels,
            data,
        })
    }

    /// The working raster of these bytes, which go as soon as it is made.
    pub fn widened(self) -> Raster {
        Raster {
            width: self.width,
            height: self.height,
            channels: self.channels,
            data: to_f32(&self.data),
        }
    }
}

/// Bytes as samples in 0..1, in blocks converted in parallel by a loop that vectorises (a
/// per-element parallel map does not).
fn to_f32(bytes: &[u8]) -> Vec<f32> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 16;
    let mut data = vec![0.0f32; bytes.len()];
    data.par_chunks_mut(BLOCK)
        .zip(bytes.par_chunks(BLOCK))
        .for_each(|(out, bytes)| {
            for (o, b) in out.iter_mut().zip(bytes) {
                *o = widen(*b);
            }
        });
    data
}

impl Raster {
    pub fn from_dynamic(img: &DynamicImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        match img {
            // 8-bit images, the common case, convert in parallel; others through `image`.
            DynamicImage::ImageRgb8(rgb) => Raster {
                width: w,
                height: h,
                channels: 3,
                data: to_f32(rgb.as_raw()),
            },
            DynamicImage::ImageRgba8(rgba) => Raster {
                width: w,
                height: h,
                channels: 4,
                data: to_f32(rgba.as_raw()),
            },
            _ if img.color().has_alpha() => Raster {
                width: w,
                height: h,
                channels: 4,
                data: img.to_rgba32f().into_raw(),
            },
            _ => Raster {
                width: w,
                height: h,
                channels: 3,
                data: img.to_rgb32f().into_raw(),
            },
        }
    }

    pub fn color_type(&self) -> image::ExtendedColorType {
        if self.has_alpha() {
            image::ExtendedColorType::Rgba8
        } else {
            image::ExtendedColorType::Rgb8
        }
    }

    /// RGB bytes; transparent pixels composited onto white.
    pub fn to_rgb8_on_white(&self) -> Vec<u8> {
        if !self.has_alpha() {
            return self.to_u8();
        }
        self.data
            .chunks_exact(4)
            .flat_map(|p| {
                let a = p[3].clamp(0.0, 1.0);
                [0, 1, 2].map(|c| to_u8(p[c] * a + (1.0 - a)))
            })
            .collect()
    }

    /// The luma plane.
    pub fn luma(&self) -> Vec<f32> {
        use rayon::prelude::*;
        self.data
            .par_chunks_exact(self.channels)
            .map(luma_of)
            .collect()
    }

    /// Adds `new_luma - old_luma` to every colour channel: a luma-only change that keeps hue.
    pub fn apply_luma_change(
        &mut self,
        ctx: &Ctx,
        old: &[f32],
        new: &[f32],
    ) -> Result<(), ImagingError> {
        let (c, w) = (self.channels, self.width);
        ctx.rows(&mut self.data, w * c, |y, row| {
            for x in 0..w {
                let d = new[y * w + x] - old[y * w + x];
                for ch in 0..3 {
                    row[x * c + ch] += d;
                }
            }
        })
    }

    /// Blends `self` towards `original` by `1 - opacity` (the `opacity` setting).
    pub fn blend_with(&mut self, original: &Raster, opacity: f32) {
        if opacity >= 1.0 || original.data.len() != self.data.len() {
            return;
        }
        for (v, o) in self.data.iter_mut().zip(&original.data) {
            *v = blend(opacity, *o, *v);
        }
    }

    pub fn clamp(&mut self) {
        use rayon::prelude::*;
        self.data
            .par_iter_mut()
            .for_each(|v| *v = v.clamp(0.0, 1.0));
    }
}

/// A byte as a working sample (0..1).
#[inline]
pub(crate) fn widen(v: u8) -> f32 {
    v as f32 * (1.0 / 255.0)
}

/// A working sample as the byte the encoders write.
pub(crate) fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// `changed` blended back towards `original` by `opacity` (the `strength` or `opacity`
/// setting; 1 keeps all of the change).
#[inline]
pub(crate) fn blend(opacity: f32, original: f32, changed: f32) -> f32 {
    if opacity < 1.0 {
        original + (changed - original) * opacity
    } else {
        changed
    }
}

/// [`blend`] as the byte the encoders write.
#[inline]
pub(crate) fn blend_to_u8(opacity: f32, original: f32, changed: f32) -> u8 {
    to_u8(blend(opacity, original, changed))
}

/// How far a Gaussian blur of `sigma` reaches, in pixels: a band's result depends on this many
/// rows above and below it.
pub(crate) fn gaussian_radius(sigma: f32) -> usize {
    (sigma * 3.0).ceil().max(1.0) as usize
}

fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = gaussian_radius(sigma) as i64;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// Separable convolution of an interleaved plane of `c` channels with a symmetric 1-D kernel
/// along x then y. Borders clamp.
pub fn convolve_separable(
    ctx: &Ctx,
    src: &[f32],
    w: usize,
    h: usize,
    c: usize,
    kernel: &[f32],
) -> Result<Vec<f32>, ImagingError> {
    let r = (kernel.len() / 2) as i64;
    let mut tmp = vec![0.0; src.len()];
    ctx.rows(&mut tmp, w * c, |y, row| {
        // The row with its edge pixels repeated `r` times on each side, so that every tap is
        // a plain shifted multiply-add over the whole row (which vectorises).
        let s = &src[y * w * c..(y + 1) * w * c];
        let mut padded = Vec::with_capacity((w + 2 * r as usize) * c);
        for _ in 0..r {
            padded.extend_from_slice(&s[..c]);
        }
        padded.extend_from_slice(s);
        for _ in 0..r {
            padded.extend_from_slice(&s[(w - 1) * c..]);
        }
        for (k, kv) in kernel.iter().enumerate() {
            for (o, v) in row.iter_mut().zip(&padded[k * c..]) {
                *o += kv * v;
            }
        }
    })?;
    let mut out = vec![0.0; src.len()];
    ctx.rows(&mut out, w * c, |y, row| {
        for (k, kv) in kernel.iter().enumerate() {
            let yy = (y as i64 + k as i64 - r).clamp(0, h as i64 - 1) as usize;
            let s = &tmp[yy * w * c..(yy + 1) * w * c];
            for (o, v) in row.iter_mut().zip(s) {
                *o += kv * v;
            }
        }
    })?;
    Ok(out)
}

/// Gaussian blur of an interleaved plane.
pub fn gaussian_blur(
    ctx: &Ctx,
    src: &[f32],
    w: usize,
    h: usize,
    c: usize,
    sigma: f32,
) -> Result<Vec<f32>, ImagingError> {
    convolve_separable(ctx, src, w, h, c, &gaussian_kernel(sigma))
}

/// Unsharp mask on luma: `y + amount * (y - blur(y))` where the difference exceeds
/// `threshold`, added equally to R, G and B so colours do not fringe.
pub fn unsharp(
    ctx: &Ctx,
    img: &mut Raster,
    sigma: f32,
    amount: f32,
    threshold: f32,
) -> Result<(), ImagingError> {
    if amount <= 0.0 {
        return Ok(());
    }
    let y = img.luma();
    let blurred = gaussian_blur(ctx, &y, img.width, img.height, 1, sigma)?;
    let (c, w) = (img.channels, img.width);
    ctx.rows(&mut img.data, w * c, |row_y, row| {
        let (ys, bs) = (&y[row_y * w..][..w], &blurred[row_y * w..][..w]);
        for (p, (v, b)) in row.chunks_exact_mut(c).zip(ys.iter().zip(bs)) {
            let change = unsharp_change(*v, *b, amount, threshold);
            for v in &mut p[..3] {
                *v += change;
            }
        }
    })
}

/// What an unsharp mask adds to a pixel of luma `y` whose blurred luma is `blurred`: `amount`
/// times their difference, less a soft threshold, so details below it are left alone and flat
/// noise is not amplified.
#[inline]
pub(crate) fn unsharp_change(y: f32, blurred: f32, amount: f32, threshold: f32) -> f32 {
    let d = y - blurred;
    // `d - threshold * signum(d)` beyond the threshold, 0 within it: branch-free, so a row
    // of them vectorises.
    amount * (d - d.clamp(-threshold, threshold))
}

/// Richardson–Lucy deconvolution of a single plane with a known point-spread function given
/// as weighted offsets. Reverses a blur instead of only boosting edges.
pub fn richardson_lucy(
    ctx: &Ctx,
    observed: &[f32],
    w: usize,
    h: usize,
    psf: &[(i64, i64, f32)],
    iterations: usize,
) -> Result<Vec<f32>, ImagingError> {
    let eps = 1e-4;
    let mut estimate = observed.to_vec();
    let flipped: Vec<(i64, i64, f32)> = psf.iter().map(|&(dx, dy, v)| (-dx, -dy, v)).collect();
    for _ in 0..iterations {
        let blurred = convolve_2d(ctx, &estimate, w, h, psf)?;
        let ratio: Vec<f32> = observed
            .iter()
            .zip(&blurred)
            .map(|(o, b)| o / b.max(eps))
            .collect();
        let correction = convolve_2d(ctx, &ratio, w, h, &flipped)?;
        for (e, c) in estimate.iter_mut().zip(&correction) {
            // Damped update keeps noise from exploding in flat areas.
            *e = (*e * c.clamp(0.5, 2.0)).clamp(0.0, 1.5);
        }
    }
    Ok(estimate)
}

/// Convolution of a single plane with a sparse kernel of weighted offsets.
pub fn convolve_2d(
    ctx: &Ctx,
    src: &[f32],
    w: usize,
    h: usize,
    kernel: &[(i64, i64, f32)],
) -> Result<Vec<f32>, ImagingError> {
    let mut out = vec![0.0; src.len()];
    ctx.rows(&mut out, w, |y, row| {
        for &(dx, dy, kv) in kernel {
            let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
            let s = &src[yy * w..(yy + 1) * w];
            for (x, o) in row.iter_mut().enumerate() {
                let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                *o += kv * s[xx];
            }
        }
    })?;
    Ok(out)
}

/// A Gaussian point-spread function as sparse offsets.
pub fn gaussian_psf(sigma: f32) -> Vec<(i64, i64, f32)> {
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as i64;
    let mut psf = Vec::new();
    for (j, ky) in k.iter().enumerate() {
        for (i, kx) in k.iter().enumerate() {
            psf.push((i as i64 - r, j as i64 - r, kx * ky));
        }
    }
    psf
}

/// Edge-preserving smoothing: a bilateral filter whose range weight compares luma, so all
/// channels of a pixel share one weight and colours stay aligned. `sigma_r` is in 0–1 units.
pub fn bilateral(
    ctx: &Ctx,
    img: &Raster,
    radius: usize,
    sigma_s: f32,
    sigma_r: f32,
) -> Result<Raster, ImagingError> {
    let (w, h, c) = (img.width, img.height, img.channels);
    let luma = img.luma();
    let r = radius as i64;
    let spatial: Vec<(i64, i64, f32)> = (-r..=r)
        .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
        .map(|(dx, dy)| {
            (
                dx,
                dy,
                (-((dx * dx + dy * dy) as f32) / (2.0 * sigma_s * sigma_s)).exp(),
            )
        })
        .collect();
    const LUT_SIZE: usize = 1024;
    let range_lut: Vec<f32> = (0..LUT_SIZE)
        .map(|i| {
            let d = i as f32 / (LUT_SIZE - 1) as f32;
            (-(d * d) / (2.0 * sigma_r * sigma_r)).exp()
        })
        .collect();
    let mut out = img.clone();
    ctx.rows(&mut out.data, w * c, |y, row| {
        for x in 0..w {
            let centre = luma[y * w + x];
            let mut acc = [0.0f32; 3];
            let mut wsum = 0.0;
            for &(dx, dy, ws) in &spatial {
                let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
                let d = (luma[yy * w + xx] - centre).abs().min(1.0);
                let wt = ws * range_lut[(d * (LUT_SIZE - 1) as f32) as usize];
                let p = &img.data[(yy * w + xx) * c..];
                for ch in 0..3 {
                    acc[ch] += wt * p[ch];
                }
                wsum += wt;
            }
            for ch in 0..3 {
                row[x * c + ch] = acc[ch] / wsum;
            }
        }
    })?;
    Ok(out)
}

/// Estimated standard deviation of additive white noise in a plane: the median absolute value
/// of the finest diagonal Haar wavelet band, over 0.6745 (Donoho & Johnstone 1994). Edges and
/// texture touch few of those coefficients, so the median sees mostly noise.
pub fn noise_sigma(plane: &[f32], w: usize, h: usize) -> f32 {
    if w < 2 || h < 2 {
        return 0.0;
    }
    let mut diagonal = Vec::with_capacity((w / 2) * (h / 2));
    for y in (0..h - 1).step_by(2) {
        let (top, bottom) = (&plane[y * w..], &plane[(y + 1) * w..]);
        for x in (0..w - 1).step_by(2) {
            diagonal.push(((top[x] - top[x + 1] - bottom[x] + bottom[x + 1]) * 0.5).abs());
        }
    }
    let mid = diagonal.len() / 2;
    *diagonal.select_nth_unstable_by(mid, f32::total_cmp).1 / 0.6745
}

/// Output rows resampled per band: small enough to cancel promptly and to bound memory, large
/// enough to keep the resizer's threads busy.
const RESAMPLE_BAND_ROWS: usize = 256;

/// Lanczos-3 resample to the placement: scaled, then letterboxed onto a black (transparent)
/// canvas or cropped to fill. Works in bands of output rows (see [`resample_into`]).
pub fn resample(ctx: &Ctx, img: &Raster, p: &Placement) -> Result<Raster, ImagingError> {
    ctx.check()?;
    let (out_w, out_h) = (p.width as usize, p.height as usize);
    if (img.width, img.height) == (out_w, out_h)
        && !p.is_letterboxed()
        && p.offset_x == 0
        && p.offset_y == 0
    {
        return Ok(img.clone());
    }
    let mut out = Raster::new(out_w, out_h, img.channels);
    let row_len = out.row_len();
    for (i, chunk) in out
        .data
        .chunks_mut(row_len * RESAMPLE_BAND_ROWS)
        .enumerate()
    {
        ctx.check()?;
        let y0 = i * RESAMPLE_BAND_ROWS;
        resample_into(img, p, y0, chunk)?;
        ctx.advance((y0 + chunk.len() / row_len) as f32 / out_h as f32);
    }
    ctx.pass_done();
    Ok(out)
}

/// The Lanczos-3 kernel, sinc(x)·sinc(x/3), with one sine instead of two: for s = sin(πx/3),
/// sin(πx) = 3s − 4s³, so the product is 3s²(3 − 4s²)/(πx)². The resizer evaluates it for
/// every tap of every band (each band computes its own weights), where the second sine was a
/// tenth of a plain upscale's time.
fn lanczos3(x: f64) -> f64 {
    use std::f64::consts::PI;
    if x == 0.0 {
        1.0
    } else if (-3.0..3.0).contains(&x) {
        let s2 = (x * PI / 3.0).sin().powi(2);
        3.0 * s2 * (3.0 - 4.0 * s2) / (PI * x).powi(2)
    } else {
        0.0
    }
}

/// Output rows from `y0` of the resampled image into `out` (whole rows, every sample written,
/// the letterbox with zeros, so `out` may hold anything before), computed from only the source
/// rows their filter taps reach. The taps sit exactly where they would for the whole image
/// (the resizer places them by the crop window but clamps them to the source it is given,
/// which covers them all), so bands join without seams.
pub(crate) fn resample_into<T: Sample>(
    img: &Raster<T>,
    p: &Placement,
    y0: usize,
    out: &mut [T],
) -> Result<(), ImagingError> {
    let c = img.channels;
    let out_w = p.width as usize;
    let y1 = y0 + out.len() / (out_w * c);
    if *p == Placement::identity(img.width as u32, img.height as u32) {
        // Nothing to resample (the operations that keep the size): the rows themselves.
        out.copy_from_slice(&img.data[y0 * img.row_len()..y1 * img.row_len()]);
        return Ok(());
    }
    let letterboxed = p.is_letterboxed();
    if letterboxed {
        out.fill(T::default());
    }
    // The scaled image: where it sits in the output, and its full height.
    let (dst_x, dst_y, dst_w, dst_h) = if letterboxed {
        let (x, y) = (p.offset_x as usize, p.offset_y as usize);
        (x, y, p.scaled_width as usize, p.scaled_height as usize)
    } else {
        (0, 0, out_w, p.height as usize)
    };
    // Rows of the scaled image this band covers.
    let s0 = y0.max(dst_y).min(dst_y + dst_h) - dst_y;
    let s1 = y1.max(dst_y).min(dst_y + dst_h) - dst_y;
    if s0 >= s1 {
        return Ok(());
    }
    let (in_w, in_h) = (img.width as f64, img.height as f64);
    let (sx, sy) = (p.scaled_width as f64 / in_w, p.scaled_height as f64 / in_h);
    // The source window, in source pixels: everything, or the part a crop keeps.
    let (left, top, width, height) = if !letterboxed && (p.offset_x < 0 || p.offset_y < 0) {
        (
            -p.offset_x as f64 / sx,
            -p.offset_y as f64 / sy,
            p.width as f64 / sx,
            p.height as f64 / sy,
        )
    } else {
        (0.0, 0.0, in_w, in_h)
    };
    let scale_y = height / dst_h as f64;
    let band_top = top + s0 as f64 * scale_y;
    let band_height = (s1 - s0) as f64 * scale_y;
    // Lanczos-3 reaches 3 source pixels (times the scale when shrinking) from each centre.
    let reach = 3.0 * scale_y.max(1.0) + 1.0;
    let r0 = (band_top - reach).floor().max(0.0) as usize;
    let r1 = ((band_top + band_height + reach).ceil() as usize).min(img.height);
    let pixel_type = T::pixel_type(c);
    let rows = &img.data[r0 * img.row_len()..r1 * img.row_len()];
    let src = fir::images::ImageRef::new(
        img.width as u32,
        (r1 - r0) as u32,
        bytemuck::cast_slice(rows),
        pixel_type,
    )
    .map_err(|e| ImagingError::Decode(e.to_string()))?;
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Custom(
            fir::Filter::new("Lanczos3", lanczos3, 3.0).expect("a positive support"),
        )))
        // The window can overshoot the source by a rounding error; the resizer refuses that.
        .crop(
            left,
            band_top - r0 as f64,
            width.min(in_w - left),
            band_height.min(r1 as f64 - band_top),
        );
    let first = dst_y + s0 - y0;
    let resize = |into: &mut [T]| {
        let mut dst = fir::images::Image::from_slice_u8(
            dst_w as u32,
            (s1 - s0) as u32,
            bytemuck::cast_slice_mut(into),
            pixel_type,
        )
        .map_err(|e| ImagingError::Decode(e.to_string()))?;
        fir::Resizer::new()
            .resize(&src, &mut dst, &options)
            .map_err(|e| ImagingError::Decode(e.to_string()))
    };
    if dst_w == out_w {
        // Straight into the output rows.
        let row_len = out_w * c;
        resize(&mut out[first * row_len..(first + s1 - s0) * row_len])?;
    } else {
        let mut scaled = vec![T::default(); dst_w * c * (s1 - s0)];
        resize(&mut scaled)?;
        for (i, row) in scaled.chunks_exact(dst_w * c).enumerate() {
            let start = ((first + i) * out_w + dst_x) * c;
            out[start..start + dst_w * c].copy_from_slice(row);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-sine kernel is sinc(x)·sinc(x/3) everywhere in and around its support.
    #[test]
    fn lanczos3_is_the_product_of_two_sincs() {
        let sinc = |x: f64| {
            if x == 0.0 {
                1.0
            } else {
                (x * std::f64::consts::PI).sin() / (x * std::f64::consts::PI)
            }
        };
        for i in -4000..=4000 {
            let x = i as f64 / 1000.0;
            let expected = if x.abs() < 3.0 {
                sinc(x) * sinc(x / 3.0)
            } else {
                0.0
            };
            assert!(
                (lanczos3(x) - expected).abs() < 1e-12,
                "at {x}: {}",
                lanczos3(x)
            );
        }
    }
    use crate::Cancel;

    #[test]
    fn resampled_bands_join_without_seams() {
        let (w, h) = (61, 47);
        let mut img = Raster::new(w, h, 3);
        for (i, v) in img.data.iter_mut().enumerate() {
            // Edges and texture everywhere, so any misplaced tap shows.
            *v = ((i * 7919) % 251) as f32 / 250.0;
        }
        let cases = [
            Placement::compute(61, 47, Some(170), None, false).unwrap(), // ×2.8 up
            Placement::compute(61, 47, Some(19), None, false).unwrap(),  // ×0.31 down
            Placement::compute(61, 47, Some(150), Some(150), false).unwrap(), // letterbox
            Placement::compute(61, 47, Some(150), Some(150), true).unwrap(), // crop to fill
            Placement::compute(61, 47, Some(40), Some(90), true).unwrap(), // crop, shrinking x
        ];
        for p in cases {
            let rows = |y0: usize, y1: usize| {
                let mut out = Raster::new(p.width as usize, y1 - y0, img.channels);
                resample_into(&img, &p, y0, &mut out.data).unwrap();
                out.data
            };
            let whole = rows(0, p.height as usize);
            for band in [1, 5, 16] {
                let mut joined = Vec::new();
                let mut y = 0;
                while y < p.height as usize {
                    let y1 = (y + band).min(p.height as usize);
                    joined.extend(rows(y, y1));
                    y = y1;
                }
                let worst = max_abs_diff(&whole, &joined);
                assert!(worst < 1e-4, "{p:?} in bands of {band}: off by {worst}");
            }
        }
    }

    fn ctx(cancel: &Cancel) -> Ctx<'_> {
        Ctx::new(cancel, &|_| {}, (0.0, 1.0))
    }

    #[test]
    fn blur_preserves_mean_and_smooths() {
        let cancel = Cancel::new();
        let (w, h) = (40, 30);
        let src: Vec<f32> = (0..w * h)
            .map(|i| if (i / w + i % w) % 2 == 0 { 1.0 } else { 0.0 })
            .collect();
        let out = gaussian_blur(&ctx(&cancel), &src, w, h, 1, 2.0).unwrap();
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean(&src) - mean(&out)).abs() < 0.01);
        let interior = (8..h - 8).flat_map(|y| (8..w - 8).map(move |x| y * w + x));
        assert!(interior.map(|i| out[i]).all(|v| (v - 0.5).abs() < 0.05));
    }

    #[test]
    fn noise_sigma_estimates_added_noise() {
        let (w, h) = (200, 200);
        let mut state = 12345u64;
        let plane: Vec<f32> = (0..w * h)
            .map(|_| {
                // Sum of 12 uniforms: approximately normal with σ = 1.
                let s: f32 = (0..12)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (state >> 40) as f32 / (1u64 << 24) as f32
                    })
                    .sum();
                0.5 + (s - 6.0) * 0.05
            })
            .collect();
        let sigma = noise_sigma(&plane, w, h);
        assert!((sigma - 0.05).abs() < 0.01, "{sigma}");
    }

    #[test]
    fn cancelled_context_stops() {
        let cancel = Cancel::new();
        cancel.fire();
        let src = vec![0.0; 64 * 64];
        assert!(matches!(
            gaussian_blur(&ctx(&cancel), &src, 64, 64, 1, 1.0),
            Err(ImagingError::Cancelled)
        ));
    }

    #[test]
    fn letterbox_pads_and_crop_fills() {
        let cancel = Cancel::new();
        let img = Raster {
            width: 20,
            height: 10,
            channels: 3,
            data: vec![1.0; 600],
        };
        let p = Placement::compute(20, 10, Some(30), Some(30), false).unwrap();
        let out = resample(&ctx(&cancel), &img, &p).unwrap();
        assert_eq!((out.width, out.height), (30, 30));
        assert_eq!(out.data[0], 0.0, "top border is black");
        assert!(
            (out.data[(15 * 30 + 15) * 3] - 1.0).abs() < 1e-3,
            "centre is the image"
        );
        let p = Placement::compute(20, 10, Some(30), Some(30), true).unwrap();
        let out = resample(&ctx(&cancel), &img, &p).unwrap();
        assert!(
            out.data.iter().all(|v| (v - 1.0).abs() < 1e-3),
            "no border when cropping"
        );
    }
}
