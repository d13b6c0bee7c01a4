//! Sharpen and sharpen-gen: unsharp masking for the general models; Richardson–Lucy
//! deconvolution for the lens and motion blur models, which undo a blur rather than only
//! boosting edges.

use lucid_core::geometry::Placement;
use lucid_core::request::Settings;

use super::enhance::{Finish, streamed};
use super::{ByteBands, Output, byte_bands};
use crate::raster::{
    Raster, bilateral, blend_to_u8, gaussian_blur, gaussian_psf, gaussian_radius, luma_of,
    richardson_lucy, unsharp, unsharp_change, widen,
};
use crate::{Ctx, ImagingError};

/// (sigma, amount, noise threshold) of the unsharp-mask models; `None` for the deblurring ones.
fn unsharp_mask(model: &str) -> Option<(f32, f32, f32)> {
    match model {
        "Strong" => Some((1.2, 1.6, 0.003)),
        "Natural" => Some((0.8, 0.5, 0.01)),
        "Wildlife" => Some((0.6, 1.1, 0.004)),
        "Portrait" => Some((1.0, 0.8, 0.02)),
        "Refocus" | "Lens Blur" | "Lens Blur V2" | "Motion Blur" | "Super Focus V2"
        | "Super Focus" => None,
        _ => Some((1.0, 0.8, 0.004)),
    }
}

/// The unsharp mask a model applies, as the finishing step of streamed rows: `None` for the
/// deblurring models, and where `denoise_strength` asks for smoothing first.
fn unsharp_finish(model: &str, s: &Settings) -> Option<Finish> {
    let knobs = Knobs::of(model, s);
    let (sigma, amount, threshold) = unsharp_mask(model).filter(|_| !knobs.smooths_first())?;
    Some(Finish {
        sharpen: Some((sigma, amount * knobs.strength, threshold)),
        generative: None,
        text_refine: false,
        opacity: knobs.opacity,
    })
}

/// The settings every model reads.
struct Knobs {
    /// `strength` times `focus_boost`.
    strength: f32,
    opacity: f32,
    /// How much to smooth before sharpening (`denoise_strength`).
    denoise: f32,
}

impl Knobs {
    fn of(model: &str, s: &Settings) -> Self {
        Knobs {
            strength: s.number("strength", 1.0) as f32 * s.number("focus_boost", 1.0) as f32,
            opacity: s.number("opacity", 1.0) as f32,
            denoise: s.number(
                "denoise_strength",
                if model == "Lens Blur V2" { 0.4 } else { 0.0 },
            ) as f32,
        }
    }

    /// Whether the image is smoothed (bilateral) before it is sharpened.
    fn smooths_first(&self) -> bool {
        self.denoise > 0.02
    }
}

/// An unsharp mask only looks a few rows away: computed a band at a time as the encoder asks,
/// never holding the output whole.
fn unsharp_rows<'a>(ctx: &'a Ctx<'a>, img: Raster, finish: Finish) -> Output<'a> {
    ctx.plan_passes(1);
    let placement = Placement::identity(img.width as u32, img.height as u32);
    streamed(ctx, img, placement, finish)
}

/// [`run`] on the decoded 8-bit image, for the unsharp-mask models ([`UnsharpBytes`]); the
/// bytes come back for the other models.
pub(crate) fn run_on_bytes<'a>(
    ctx: &'a Ctx<'a>,
    model: &str,
    s: &Settings,
    bytes: Raster<u8>,
) -> Result<Output<'a>, Raster<u8>> {
    match unsharp_finish(model, s) {
        Some(finish) => {
            let mask = UnsharpBytes {
                mask: finish.sharpen.filter(|&(_, amount, _)| amount > 0.0),
                opacity: finish.opacity,
            };
            Ok(byte_bands(ctx, bytes, mask))
        }
        None => Err(bytes),
    }
}

/// The heap [`run_on_bytes`] takes beside the decoded bytes and the encoder's bands, for a
/// `width`-wide image; `None` for the models it hands back.
pub(crate) fn bytes_memory(
    model: &str,
    s: &Settings,
    width: usize,
    channels: usize,
) -> Option<u64> {
    let finish = unsharp_finish(model, s)?;
    let halo = finish
        .sharpen
        .map_or(0, |(sigma, _, _)| gaussian_radius(sigma));
    // A band's luma with its halo, the blur's horizontal pass and its result.
    let rows = crate::codec::band_rows(width, channels) + 2 * halo;
    Some(3 * (rows * width * 4) as u64)
}

/// The unsharp-mask models on the decoded bytes, a band at a time as the encoder asks: the
/// luma of the band and its halo is blurred and the mask's change added to the band's bytes.
/// The image is never widened to floats (four times its bytes), and the bands the encoder
/// takes are bytes. Gives exactly the bytes [`run`] on the widened image rounds to.
struct UnsharpBytes {
    /// (sigma, amount, threshold); `None` when there is nothing to add.
    mask: Option<(f32, f32, f32)>,
    opacity: f32,
}

impl ByteBands for UnsharpBytes {
    fn fill(
        &mut self,
        quiet: &Ctx,
        bytes: &Raster<u8>,
        y0: usize,
        band: &mut Raster<u8>,
    ) -> Result<(), ImagingError> {
        let (w, h, c) = (bytes.width, bytes.height, bytes.channels);
        let row_len = w * c;
        let rows_of = |y: usize, n: usize| &bytes.data[y * row_len..][..n * row_len];
        match self.mask {
            None => band.data.copy_from_slice(rows_of(y0, band.height)),
            Some((sigma, amount, threshold)) => {
                let halo = gaussian_radius(sigma);
                let (a, b) = (y0.saturating_sub(halo), (y0 + band.height + halo).min(h));
                let mut luma = vec![0.0f32; (b - a) * w];
                quiet.rows(&mut luma, w, |y, out| match c {
                    4 => luma_row::<4>(rows_of(a + y, 1), out),
                    _ => luma_row::<3>(rows_of(a + y, 1), out),
                })?;
                // The blurred luma becomes each pixel's change, in place.
                let mut changes = gaussian_blur(quiet, &luma, w, b - a, 1, sigma)?;
                quiet.rows(&mut changes, w, |y, row| {
                    for (blurred, &l) in row.iter_mut().zip(&luma[y * w..]) {
                        *blurred = unsharp_change(l, *blurred, amount, threshold);
                    }
                })?;
                let opacity = self.opacity;
                quiet.rows(&mut band.data, row_len, |y, out| {
                    let (src, changes) = (rows_of(y0 + y, 1), &changes[(y0 + y - a) * w..][..w]);
                    match c {
                        4 => sharpen_row::<4>(src, changes, opacity, out),
                        _ => sharpen_row::<3>(src, changes, opacity, out),
                    }
                })?;
            }
        }
        Ok(())
    }
}

/// The luma of a row of `C`-channel bytes, as [`Raster::luma`] gives it for the widened row.
fn luma_row<const C: usize>(bytes: &[u8], out: &mut [f32]) {
    for (l, p) in out.iter_mut().zip(bytes.chunks_exact(C)) {
        *l = luma_of(&[p[0], p[1], p[2]].map(widen));
    }
}

/// A row of `C`-channel bytes with each pixel's change added to R, G and B, blended back
/// towards the source by `opacity`, as bytes.
fn sharpen_row<const C: usize>(src: &[u8], changes: &[f32], opacity: f32, out: &mut [u8]) {
    let pixels = out
        .chunks_exact_mut(C)
        .zip(src.chunks_exact(C))
        .zip(changes);
    for ((out, p), &change) in pixels {
        for i in 0..3 {
            let v = widen(p[i]);
            out[i] = blend_to_u8(opacity, v, v + change);
        }
        if C == 4 {
            out[3] = p[3];
        }
    }
}

pub fn run<'a>(
    ctx: &'a Ctx<'a>,
    model: &str,
    s: &Settings,
    img: Raster,
) -> Result<Output<'a>, ImagingError> {
    let knobs = Knobs::of(model, s);
    let strength = knobs.strength;
    let iterations = |base: f32| ((base * strength) as usize).max(1);
    let passes = match model {
        "Refocus" => 2 * iterations(10.0),
        "Lens Blur" | "Motion Blur" => 2 * iterations(12.0),
        "Lens Blur V2" => 2 * iterations(15.0),
        "Super Focus V2" | "Super Focus" => 2 * iterations(10.0) + 3,
        _ => 2,
    };
    if let Some(finish) = unsharp_finish(model, s) {
        return Ok(unsharp_rows(ctx, img, finish));
    }
    ctx.plan_passes(passes + 2 + usize::from(knobs.smooths_first()));
    // The input is kept only when some of it shows through.
    let original = (knobs.opacity < 1.0).then(|| img.clone());
    let mut img = if knobs.smooths_first() {
        bilateral(ctx, &img, 2, 1.0, 0.02 + 0.06 * knobs.denoise)?
    } else {
        img
    };
    match model {
        "Refocus" => deconvolve(ctx, &mut img, &gaussian_psf(1.0), iterations(10.0))?,
        "Lens Blur" => deconvolve(ctx, &mut img, &gaussian_psf(1.5), iterations(12.0))?,
        "Lens Blur V2" => deconvolve(ctx, &mut img, &gaussian_psf(2.0), iterations(15.0))?,
        "Motion Blur" => {
            let psf = motion_psf(&img, 9);
            deconvolve(ctx, &mut img, &psf, iterations(12.0))?
        }
        "Super Focus V2" | "Super Focus" => {
            deconvolve(ctx, &mut img, &gaussian_psf(1.5), iterations(10.0))?;
            unsharp(ctx, &mut img, 0.6, 0.6 * strength, 0.003)?;
        }
        other => {
            let (sigma, amount, threshold) =
                unsharp_mask(other).expect("the deblurring models are matched above");
            unsharp(ctx, &mut img, sigma, amount * strength, threshold)?;
        }
    }
    if let Some(original) = original {
        img.blend_with(&original, knobs.opacity);
    }
    img.clamp();
    Ok(Output::Raster(img))
}

/// Deconvolves luma with the PSF and carries the change into every channel.
fn deconvolve(
    ctx: &Ctx,
    img: &mut Raster,
    psf: &[(i64, i64, f32)],
    iterations: usize,
) -> Result<(), ImagingError> {
    let y = img.luma();
    let sharp = richardson_lucy(ctx, &y, img.width, img.height, psf, iterations)?;
    img.apply_luma_change(ctx, &y, &sharp)
}

/// A line PSF of `length` pixels along the blur direction. Motion blur suppresses gradients
/// along the motion, so the direction is the structure tensor's minor eigenvector.
pub fn motion_psf(img: &Raster, length: usize) -> Vec<(i64, i64, f32)> {
    let angle = blur_angle(&img.luma(), img.width, img.height);
    let (dx, dy) = (angle.cos(), angle.sin());
    let half = (length / 2) as f32;
    let mut taps: Vec<(i64, i64, f32)> = Vec::new();
    for i in 0..length {
        let t = i as f32 - half;
        let (x, y) = ((t * dx).round() as i64, (t * dy).round() as i64);
        match taps.iter_mut().find(|(a, b, _)| *a == x && *b == y) {
            Some(tap) => tap.2 += 1.0,
            None => taps.push((x, y, 1.0)),
        }
    }
    let sum: f32 = taps.iter().map(|t| t.2).sum();
    taps.into_iter().map(|(x, y, v)| (x, y, v / sum)).collect()
}

/// Direction (radians) along which gradients are weakest.
pub fn blur_angle(y: &[f32], w: usize, h: usize) -> f32 {
    let (mut sxx, mut syy, mut sxy) = (0.0f64, 0.0f64, 0.0f64);
    for row in 1..h.saturating_sub(1) {
        for col in 1..w.saturating_sub(1) {
            let gx = (y[row * w + col + 1] - y[row * w + col - 1]) as f64;
            let gy = (y[(row + 1) * w + col] - y[(row - 1) * w + col]) as f64;
            sxx += gx * gx;
            syy += gy * gy;
            sxy += gx * gy;
        }
    }
    // The major eigenvector's angle is the dominant gradient direction; the blur is across it.
    let major = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    (major + std::f64::consts::FRAC_PI_2) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;
    use crate::raster::max_abs_diff;

    /// The unsharp-mask models stream their rows (the output is never whole) and give what the
    /// mask on the whole image gives, opacity included; the deblurring ones work whole.
    /// From the decoded bytes the unsharp-mask models stream bytes, exactly those their
    /// result on the working raster rounds to, RGB and RGBA, over several bands, with and
    /// without opacity; the deblurring models hand the bytes back.
    #[test]
    fn unsharp_models_run_on_the_decoded_bytes() {
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        for channels in [3, 4] {
            let mut bytes = Raster::<u8>::new(120, 300, channels);
            for (i, v) in bytes.data.iter_mut().enumerate() {
                *v = ((i * 7919) % 251) as u8;
            }
            for settings in [r#"{"opacity": 0.6, "strength": 0.9}"#, "{}"] {
                let settings = Settings::from_json(settings);
                let Ok(from_bytes) = run_on_bytes(&ctx, "Strong", &settings, bytes.clone()) else {
                    panic!("Strong is an unsharp-mask model");
                };
                assert!(matches!(from_bytes, Output::ByteRows(_)));
                let from_bytes = from_bytes.into_raster().unwrap();
                let from_floats = run(&ctx, "Strong", &settings, bytes.clone().widened())
                    .unwrap()
                    .into_raster()
                    .unwrap();
                assert_eq!((from_bytes.width, from_bytes.height), (120, 300));
                assert!(from_bytes.to_u8() == from_floats.to_u8());
                assert!(from_bytes.to_u8() != bytes.data, "nothing was sharpened");
            }
        }
        let bytes = Raster::<u8>::new(16, 16, 3);
        assert!(run_on_bytes(&ctx, "Lens Blur", &Settings::default(), bytes).is_err());
    }

    #[test]
    fn unsharp_models_stream_the_whole_image_result() {
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let mut img = Raster::new(120, 300, 3);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = ((i * 7919) % 251) as f32 / 250.0;
        }
        let settings = Settings::from_json(r#"{"opacity": 0.6, "strength": 0.9}"#);
        let out = run(&ctx, "Strong", &settings, img.clone()).unwrap();
        assert!(matches!(out, Output::Rows(_)));
        let streamed = out.into_raster().unwrap();
        let mut whole = img.clone();
        unsharp(&ctx, &mut whole, 1.2, 1.6 * 0.9, 0.003).unwrap();
        whole.blend_with(&img, 0.6);
        whole.clamp();
        let worst = max_abs_diff(&whole.data, &streamed.data);
        assert!(worst < 1e-5, "off by {worst}");
        let deblurred = run(&ctx, "Lens Blur", &Settings::default(), img).unwrap();
        assert!(matches!(deblurred, Output::Raster(_)));
    }

    #[test]
    fn horizontal_smear_is_detected_as_horizontal() {
        // Vertical stripes smeared horizontally keep strong vertical... construct the opposite:
        // horizontal stripes have only vertical gradients, like an image blurred along x.
        let (w, h) = (64, 64);
        let y: Vec<f32> = (0..w * h)
            .map(|i| if (i / w) % 8 < 4 { 1.0 } else { 0.0 })
            .collect();
        let a = blur_angle(&y, w, h);
        assert!(a.cos().abs() > 0.99, "angle {a}");
    }
}
