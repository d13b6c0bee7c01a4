//! The working image (interleaved f32 RGB or RGBA, 0–1, sRGB-encoded) and the filters that
//! several operations share: Gaussian blur, unsharp masking, Richardson–Lucy deconvolution,
//! edge-preserving smoothing, medians and resampling. Every pass runs in parallel row bands
//! through [`Ctx::rows`], so it can be cancelled and reports progress.

use fast_image_resize as fir;
use image::DynamicImage;
use lucid_core::geometry::Placement;

use crate::{Ctx, ImagingError};

/// An image in working form. `channels` is 3 (RGB) or 4 (RGBA, straight alpha).
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<f32>,
}

/// Rec. 709 luma weights, applied to the sRGB-encoded values (a luma, not a luminance).
pub const LUMA: [f32; 3] = [0.2126, 0.7152, 0.0722];

impl Raster {
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        Raster {
            width,
            height,
            channels,
            data: vec![0.0; width * height * channels],
        }
    }

    pub fn from_dynamic(img: &DynamicImage) -> Self {
        use rayon::prelude::*;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let to_f32 = |bytes: &[u8]| -> Vec<f32> {
            bytes
                .par_iter()
                .map(|b| *b as f32 * (1.0 / 255.0))
                .collect()
        };
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

    pub fn has_alpha(&self) -> bool {
        self.channels == 4
    }

    pub fn row_len(&self) -> usize {
        self.width * self.channels
    }

    pub fn color_type(&self) -> image::ExtendedColorType {
        if self.has_alpha() {
            image::ExtendedColorType::Rgba8
        } else {
            image::ExtendedColorType::Rgb8
        }
    }

    pub fn to_u8(&self) -> Vec<u8> {
        use rayon::prelude::*;
        self.data.par_iter().map(|v| to_u8(*v)).collect()
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
        self.data
            .chunks_exact(self.channels)
            .map(|p| LUMA[0] * p[0] + LUMA[1] * p[1] + LUMA[2] * p[2])
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
            *v = o + (*v - o) * opacity;
        }
    }

    pub fn clamp(&mut self) {
        use rayon::prelude::*;
        self.data
            .par_iter_mut()
            .for_each(|v| *v = v.clamp(0.0, 1.0));
    }
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (sigma * 3.0).ceil().max(1.0) as i64;
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
        let s = &src[y * w * c..(y + 1) * w * c];
        for x in 0..w {
            for ch in 0..c {
                let mut acc = 0.0;
                for (k, kv) in kernel.iter().enumerate() {
                    let xx = (x as i64 + k as i64 - r).clamp(0, w as i64 - 1) as usize;
                    acc += kv * s[xx * c + ch];
                }
                row[x * c + ch] = acc;
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
    let sharpened: Vec<f32> = y
        .iter()
        .zip(&blurred)
        .map(|(v, b)| {
            let d = v - b;
            // Soft threshold: details below it are left alone, so flat noise is not amplified.
            let d = if d.abs() <= threshold {
                0.0
            } else {
                d - threshold * d.signum()
            };
            v + amount * d
        })
        .collect();
    img.apply_luma_change(ctx, &y, &sharpened)
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

/// Median of each pixel's `(2r+1)²` neighbourhood in a single plane.
pub fn median(
    ctx: &Ctx,
    src: &[f32],
    w: usize,
    h: usize,
    radius: usize,
) -> Result<Vec<f32>, ImagingError> {
    let r = radius as i64;
    let mut out = vec![0.0; src.len()];
    ctx.rows(&mut out, w, |y, row| {
        let mut window = Vec::with_capacity((2 * radius + 1).pow(2));
        for (x, o) in row.iter_mut().enumerate() {
            window.clear();
            for dy in -r..=r {
                let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
                for dx in -r..=r {
                    let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                    window.push(src[yy * w + xx]);
                }
            }
            let mid = window.len() / 2;
            *o = *window.select_nth_unstable_by(mid, f32::total_cmp).1;
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

/// Lanczos-3 resampling onto the output canvas the placement describes: scaled to fit with
/// borders (transparent with alpha, black without), or scaled to cover and centre-cropped.
pub fn resample(ctx: &Ctx, img: &Raster, p: &Placement) -> Result<Raster, ImagingError> {
    ctx.check()?;
    let (in_w, in_h) = (img.width as f64, img.height as f64);
    let (out_w, out_h) = (p.width as usize, p.height as usize);
    if (img.width, img.height) == (out_w, out_h)
        && !p.is_letterboxed()
        && p.offset_x == 0
        && p.offset_y == 0
    {
        return Ok(img.clone());
    }
    let pixel_type = if img.has_alpha() {
        fir::PixelType::F32x4
    } else {
        fir::PixelType::F32x3
    };
    let src_bytes: &[u8] = bytemuck::cast_slice(&img.data);
    let src =
        fir::images::ImageRef::new(img.width as u32, img.height as u32, src_bytes, pixel_type)
            .map_err(|e| ImagingError::Decode(e.to_string()))?;
    let (sx, sy) = (p.scaled_width as f64 / in_w, p.scaled_height as f64 / in_h);
    // Cropping happens on the source; letterboxing pastes the scaled image into the canvas.
    let (dst_w, dst_h) = if p.is_letterboxed() {
        (p.scaled_width, p.scaled_height)
    } else {
        (p.width, p.height)
    };
    let mut options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3));
    if !p.is_letterboxed() && (p.offset_x < 0 || p.offset_y < 0) {
        options = options.crop(
            -p.offset_x as f64 / sx,
            -p.offset_y as f64 / sy,
            p.width as f64 / sx,
            p.height as f64 / sy,
        );
    }
    let mut dst = fir::images::Image::new(dst_w, dst_h, pixel_type);
    fir::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| ImagingError::Decode(e.to_string()))?;
    ctx.check()?;
    let scaled: Vec<f32> = bytemuck::pod_collect_to_vec(dst.buffer());
    if !p.is_letterboxed() {
        return Ok(Raster {
            width: out_w,
            height: out_h,
            channels: img.channels,
            data: scaled,
        });
    }
    let c = img.channels;
    let mut canvas = Raster::new(out_w, out_h, c);
    let (ox, oy, sw) = (p.offset_x as usize, p.offset_y as usize, dst_w as usize);
    for y in 0..dst_h as usize {
        let dst_start = ((oy + y) * out_w + ox) * c;
        canvas.data[dst_start..dst_start + sw * c]
            .copy_from_slice(&scaled[y * sw * c..(y + 1) * sw * c]);
    }
    Ok(canvas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;

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
