//! Denoise and denoise-gen: DCT shrinkage denoising ([`crate::dct`]) at the measured noise
//! level, so clean images are barely touched and noisy ones lose their grain but keep edges.

use lucid_core::request::Settings;

use crate::ops::{Output, byte_bands};
use crate::raster::{Raster, unsharp};
use crate::{Ctx, ImagingError, dct};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, img: Raster) -> Result<Raster, ImagingError> {
    let sigma = dct::noise_level(&img) * strength(s);
    let deblur = deblur(model, s);
    ctx.plan_passes(dct::passes(&img) + if deblur > 0.0 { 2 } else { 0 });
    // `original_detail` gives back part of the removed texture: blended in place as the
    // strips are written, unless the deblurring comes between (then a copy is kept).
    let opacity = opacity(s);
    let original = (deblur > 0.0 && opacity < 1.0).then(|| img.clone());
    let mut img = img;
    let in_place = if original.is_some() { 1.0 } else { opacity };
    dct::denoise(ctx, &mut img, sigma, threshold(model), true, in_place)?;
    if deblur > 0.0 {
        unsharp(ctx, &mut img, 1.0, deblur, sigma)?;
    }
    if let Some(original) = original {
        img.blend_with(&original, opacity);
    }
    img.clamp();
    Ok(img)
}

/// [`run`] on the decoded 8-bit image, for the models without a deblurring step: strips
/// denoised from the bytes to bytes as the encoder asks for rows (see
/// [`dct::DenoisedBytes`]), never a float copy of the whole image. The bytes come back
/// for the others.
pub(crate) fn run_on_bytes<'a>(
    ctx: &'a Ctx<'a>,
    model: &str,
    s: &Settings,
    bytes: Raster<u8>,
) -> Result<Output<'a>, Raster<u8>> {
    if deblur(model, s) > 0.0 {
        return Err(bytes);
    }
    let sigma = dct::noise_level(&bytes) * strength(s);
    let strips = dct::Strips::new(sigma, threshold(model), true, opacity(s));
    Ok(byte_bands(ctx, bytes, dct::DenoisedBytes::new(strips)))
}

/// The noise level the filter assumes, as a multiple of the measured one: `strength` 0–1
/// (default 0.5) gives 0.25× to 1.75×.
fn strength(s: &Settings) -> f32 {
    0.25 + 1.5 * s.number("strength", 0.5).clamp(0.0, 1.0) as f32
}

/// The hard threshold, in multiples of σ.
fn threshold(model: &str) -> f32 {
    match model {
        "Strong" | "Denoise Max" => 3.0,
        "Extreme" => 3.4,
        _ => dct::DEFAULT_THRESHOLD,
    }
}

/// The share of the change kept: `original_detail` gives back up to half of the removed
/// texture.
fn opacity(s: &Settings) -> f32 {
    1.0 - s.number("original_detail", 0.0).clamp(0.0, 1.0) as f32 * 0.5
}

/// Unsharp masking after the denoise: Denoise Max's own, and `minor_deblur`.
fn deblur(model: &str, s: &Settings) -> f32 {
    let minor_deblur = s.number("minor_deblur", 0.0).clamp(0.0, 1.0) as f32;
    let own = if model == "Denoise Max" { 0.3 } else { 0.0 };
    own + minor_deblur
}

/// The most heap [`run`] takes for a `w × h` image of `channels`, the image included.
pub fn peak_memory(model: &str, s: &Settings, w: usize, h: usize, channels: usize) -> u64 {
    let raster = (w * h * channels * 4) as u64;
    let strips = dct::denoise_memory(w, channels);
    if deblur(model, s) <= 0.0 {
        return raster + strips;
    }
    // The unsharp mask's luma, its blur and the blur's scratch; and the copy for the blend.
    let copy = if s.number("original_detail", 0.0) > 0.0 {
        raster
    } else {
        0
    };
    raster + copy + strips.max(raster)
}

/// The heap [`run_on_bytes`] takes beside the decoded bytes and the encoder's bands, for a
/// `width`-wide image; `None` for the models it hands back.
pub(crate) fn bytes_memory(
    model: &str,
    s: &Settings,
    width: usize,
    channels: usize,
) -> Option<u64> {
    (deblur(model, s) <= 0.0).then(|| dct::denoised_bytes_memory(width, channels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;
    use crate::ops::ByteBands;

    /// A noisy gradient of `channels` channels, 53 wide and 1300 tall (three of the
    /// denoiser's strips), with a varying alpha where there is one.
    fn noisy(channels: usize) -> Raster<u8> {
        let (w, h) = (53, 1300);
        let clean: Vec<u8> = (0..w * h * channels)
            .map(|i| {
                let (x, y, c) = (i / channels % w, i / channels / w, i % channels);
                if c == 3 {
                    (x * 4 + y) as u8
                } else {
                    (40 + (x + 2 * y + 30 * c) % 170) as u8
                }
            })
            .collect();
        let mut bytes = Raster::<u8>::new(w, h, channels);
        bytes.data = crate::quality::add_noise(&clean, 20.0, 7);
        if channels == 4 {
            // Alpha stays clean.
            for (v, c) in bytes.data.iter_mut().zip(&clean).skip(3).step_by(4) {
                *v = *c;
            }
        }
        bytes
    }

    /// From the decoded bytes the models without deblurring stream bytes, exactly those
    /// their result on the working raster rounds to (RGB and RGBA, alpha untouched, with and
    /// without `original_detail`), whatever bands the encoder asks for; the deblurring
    /// models hand the bytes back.
    #[test]
    fn models_without_deblurring_run_on_the_decoded_bytes() {
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        for channels in [3, 4] {
            let bytes = noisy(channels);
            for settings in [r#"{"original_detail": 0.4}"#, "{}"] {
                let settings = Settings::from_json(settings);
                let Ok(from_bytes) = run_on_bytes(&ctx, "Normal", &settings, bytes.clone()) else {
                    panic!("Normal has no deblurring");
                };
                assert!(matches!(from_bytes, Output::ByteRows(_)));
                let from_bytes = from_bytes.into_raster().unwrap().to_u8();
                let from_floats = run(&ctx, "Normal", &settings, bytes.clone().widened())
                    .unwrap()
                    .to_u8();
                assert!(from_bytes == from_floats);
                let changed = from_bytes.iter().zip(&bytes.data).filter(|(a, b)| a != b);
                assert!(
                    changed.count() > bytes.data.len() / 2,
                    "nothing was denoised"
                );
                if channels == 4 {
                    let alpha = |v: &[u8]| v.iter().skip(3).step_by(4).copied().collect::<Vec<_>>();
                    assert_eq!(alpha(&from_bytes), alpha(&bytes.data));
                }
                // Bands of 100 rows, which straddle the 512-row strips.
                let sigma = dct::noise_level(&bytes) * strength(&settings);
                let strips = dct::Strips::new(sigma, threshold("Normal"), true, opacity(&settings));
                let mut source = dct::DenoisedBytes::new(strips);
                let mut banded = Vec::new();
                for y0 in (0..bytes.height).step_by(100) {
                    let mut band =
                        Raster::<u8>::new(bytes.width, 100.min(bytes.height - y0), channels);
                    source.fill(&ctx, &bytes, y0, &mut band).unwrap();
                    banded.extend_from_slice(&band.data);
                }
                assert!(banded == from_floats);
            }
        }
        let bytes = Raster::<u8>::new(16, 16, 3);
        let settings = Settings::default();
        assert!(run_on_bytes(&ctx, "Denoise Max", &settings, bytes.clone()).is_err());
        let deblurred = Settings::from_json(r#"{"minor_deblur": 0.5}"#);
        assert!(run_on_bytes(&ctx, "Normal", &deblurred, bytes).is_err());
    }
}
