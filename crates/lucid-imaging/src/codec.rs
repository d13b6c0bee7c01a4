//! Probing, decoding and encoding. Dimensions and the memory a decode needs are checked from the
//! header before any pixel is decoded; EXIF orientation is applied on decode, and the ICC profile
//! and EXIF block (orientation reset) are carried into outputs that can hold them.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use lucid_core::OutputFormat;
use lucid_core::geometry::MAX_SIDE;

use crate::ImagingError;
use crate::raster::Raster;

/// JPEG quality of every JPEG lucid writes.
pub const JPEG_QUALITY: u8 = 92;

/// Largest input lucid decodes, in pixels (the spec's 512 MP input cap).
pub const MAX_INPUT_PIXELS: u64 = 512_000_000;

/// What the header of an accepted image says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// `jpeg`, `png` or `tiff`.
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
}

fn format_name(f: ImageFormat) -> Option<&'static str> {
    match f {
        ImageFormat::Jpeg => Some("jpeg"),
        ImageFormat::Png => Some("png"),
        ImageFormat::Tiff => Some("tiff"),
        _ => None,
    }
}

/// Reads the header only: format and size, with the limits applied.
pub fn probe(bytes: &[u8]) -> Result<ImageInfo, ImagingError> {
    if let Some((width, height)) = declared_size(bytes) {
        check_size(width, height)?;
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImagingError::Decode(e.to_string()))?;
    let format = reader
        .format()
        .and_then(format_name)
        .ok_or_else(|| ImagingError::Decode("not a JPEG, PNG or TIFF image".into()))?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| ImagingError::Decode(e.to_string()))?;
    check_size(width, height)?;
    if !is_complete(format, bytes) {
        return Err(ImagingError::Decode("the file is truncated".into()));
    }
    Ok(ImageInfo {
        format,
        width,
        height,
    })
}

/// Whether the file's structure runs to its end marker, found without decoding pixels: PNG
/// chunks follow each other to IEND; JPEG segments lead to a scan, and an EOI follows it.
/// Truncated uploads are refused at submit instead of failing later in a worker. (TIFF keeps
/// its data anywhere in the file; a truncated one fails when decoded.)
fn is_complete(format: &str, b: &[u8]) -> bool {
    match format {
        "png" => {
            let mut i = 8;
            while i + 12 <= b.len() {
                let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
                if &b[i + 4..i + 8] == b"IEND" {
                    return true;
                }
                i = match i.checked_add(12 + len) {
                    Some(next) => next,
                    None => return false,
                };
            }
            false
        }
        "jpeg" => {
            // EOI cannot appear inside scan data, so one after the first scan ends the image.
            match jpeg_segments(b).last() {
                Some((0xDA, at, len)) => b[(at + 2 + len).min(b.len())..]
                    .windows(2)
                    .any(|w| w == [0xFF, 0xD9]),
                _ => false,
            }
        }
        _ => true,
    }
}

/// The size a PNG or JPEG header declares, read directly: the spec answers a zero side with
/// 422 and an oversized one with 400, whatever the decoder would make of the rest of the file.
fn declared_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.len() >= 24 && b.starts_with(b"\x89PNG\r\n\x1a\n") && &b[12..16] == b"IHDR" {
        let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
        let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
        return Some((w, h));
    }
    let (_, at, _) = jpeg_segments(b).find(|(marker, _, _)| {
        (0xC0..=0xCF).contains(marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
    })?;
    let frame = b.get(at + 5..at + 9)?;
    let h = u16::from_be_bytes([frame[0], frame[1]]);
    let w = u16::from_be_bytes([frame[2], frame[3]]);
    Some((w as u32, h as u32))
}

/// The marker segments of a JPEG, `(marker, index of its 0xFF, length)`, from the one after SOI
/// to the first scan (SOS) included. Segment contents are skipped, so an EXIF thumbnail's own
/// markers are never mistaken for the image's. Stops early at anything that is not a marker.
fn jpeg_segments(b: &[u8]) -> impl Iterator<Item = (u8, usize, usize)> + '_ {
    let mut at = 2;
    let mut done = !b.starts_with(&[0xFF, 0xD8]);
    std::iter::from_fn(move || {
        while !done && at + 4 <= b.len() && b[at] == 0xFF {
            let marker = b[at + 1];
            if marker == 0xFF {
                // Fill byte before a marker.
                at += 1;
                continue;
            }
            let len = u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize;
            let segment = (marker, at, len);
            done = marker == 0xDA;
            at += 2 + len;
            return Some(segment);
        }
        None
    })
}

/// Refuses a zero or oversized side.
fn check_size(width: u32, height: u32) -> Result<(), ImagingError> {
    if width == 0 || height == 0 {
        return Err(ImagingError::ZeroDimensions);
    }
    if width > MAX_SIDE || height > MAX_SIDE || width as u64 * height as u64 > MAX_INPUT_PIXELS {
        return Err(ImagingError::TooLarge { width, height });
    }
    Ok(())
}

/// What an output keeps of its input besides pixels: the colour profile and the EXIF block
/// (its orientation reset, since decoding applied it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub icc: Option<Vec<u8>>,
    /// The EXIF TIFF structure, without the JPEG `Exif\0\0` prefix.
    pub exif: Option<Vec<u8>>,
}

/// Decodes to the working raster, orientation applied. Alpha is kept when the image has it.
pub fn decode(bytes: &[u8]) -> Result<Raster, ImagingError> {
    decode_with_metadata(bytes).map(|(raster, _)| raster)
}

/// [`decode`], also answering the metadata an output should carry over.
pub fn decode_with_metadata(bytes: &[u8]) -> Result<(Raster, Metadata), ImagingError> {
    let info = probe(bytes)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImagingError::Decode(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_INPUT_PIXELS * 8);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| ImagingError::Decode(e.to_string()))?;
    // Unreadable metadata is dropped rather than failing a decodable image.
    let icc = decoder.icc_profile().ok().flatten();
    let exif = decoder.exif_metadata().ok().flatten().map(|mut exif| {
        if exif.starts_with(b"Exif\0\0") {
            exif.drain(..6);
        }
        reset_orientation(&mut exif);
        exif
    });
    let orientation = decoder.orientation().ok();
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| ImagingError::Decode(e.to_string()))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    debug_assert!(info.width > 0);
    Ok((Raster::from_dynamic(&img), Metadata { icc, exif }))
}

/// Sets the Orientation tag (0x0112) of IFD0 in an EXIF TIFF structure to 1, "as stored".
/// Leaves a structure it cannot follow untouched.
fn reset_orientation(exif: &mut [u8]) {
    let big_endian = match exif.get(..2) {
        Some(b"MM") => true,
        Some(b"II") => false,
        _ => return,
    };
    let u16_at = |b: &[u8], i: usize| -> Option<u16> {
        let v: [u8; 2] = b.get(i..i + 2)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        })
    };
    let u32_at = |b: &[u8], i: usize| -> Option<u32> {
        let v: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    };
    let Some(ifd) = u32_at(exif, 4).map(|v| v as usize) else {
        return;
    };
    let Some(count) = u16_at(exif, ifd) else {
        return;
    };
    for i in 0..count as usize {
        let entry = ifd + 2 + i * 12;
        // A SHORT of count 1 keeps its value in the first two bytes of the value field.
        if u16_at(exif, entry) == Some(0x0112) && u16_at(exif, entry + 2) == Some(3) {
            let one = if big_endian {
                1u16.to_be_bytes()
            } else {
                1u16.to_le_bytes()
            };
            if let Some(v) = exif.get_mut(entry + 8..entry + 10) {
                v.copy_from_slice(&one);
            }
            return;
        }
    }
}

/// Encodes the raster. JPEG has no alpha: transparent pixels are composited onto white.
pub fn encode(raster: &Raster, format: OutputFormat) -> Result<Vec<u8>, ImagingError> {
    encode_with_metadata(raster, format, &Metadata::default())
}

/// [`encode`], embedding the ICC profile (JPEG, PNG, TIFF) and EXIF block (JPEG, PNG).
pub fn encode_with_metadata(
    raster: &Raster,
    format: OutputFormat,
    meta: &Metadata,
) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::new();
    let err = |e: image::ImageError| ImagingError::Encode(e.to_string());
    let jpeg_err = |e: jpeg_encoder::EncodingError| ImagingError::Encode(e.to_string());
    let unsupported = |e: image::error::UnsupportedError| ImagingError::Encode(e.to_string());
    let (w, h) = (raster.width as u32, raster.height as u32);
    match format {
        OutputFormat::Jpeg => {
            // jpeg-encoder uses AVX2 where the CPU has it. 4:2:0 chroma like libjpeg's, Pillow's
            // and OpenCV's defaults (the crate would pick 4:4:4 at quality 90 and above).
            let rgb = raster.to_rgb8_on_white();
            let mut enc = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
            enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
            if let Some(icc) = &meta.icc {
                enc.add_icc_profile(icc).map_err(jpeg_err)?;
            }
            // An APP1 segment holds at most 64 KiB; a larger EXIF block is left out.
            if let Some(exif) = meta.exif.as_ref().filter(|e| e.len() <= 65_000) {
                enc.add_app_segment(1, [b"Exif\0\0".as_slice(), exif].concat())
                    .map_err(jpeg_err)?;
            }
            enc.encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
                .map_err(jpeg_err)?;
        }
        OutputFormat::Png => {
            let mut enc = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            if let Some(icc) = &meta.icc {
                enc.set_icc_profile(icc.clone()).map_err(unsupported)?;
            }
            if let Some(exif) = &meta.exif {
                enc.set_exif_metadata(exif.clone()).map_err(unsupported)?;
            }
            enc.write_image(&raster.to_u8(), w, h, raster.color_type())
                .map_err(err)?;
        }
        OutputFormat::Tiff => {
            let mut enc = image::codecs::tiff::TiffEncoder::new(Cursor::new(&mut out));
            if let Some(icc) = &meta.icc {
                enc.set_icc_profile(icc.clone()).map_err(unsupported)?;
            }
            enc.write_image(&raster.to_u8(), w, h, raster.color_type())
                .map_err(err)?;
        }
    }
    Ok(out)
}

use image::ImageEncoder;

/// A small textured PNG (gradients plus a fine pattern) for examples and tests.
#[doc(hidden)]
pub fn encode_test_png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let texture = if (x / 3 + y / 2) % 2 == 0 { 40 } else { 0 };
        image::Rgb([
            (x * 200 / width.max(1) + texture) as u8,
            (y * 200 / height.max(1) + texture) as u8,
            (100 + texture) as u8,
        ])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_the_header() {
        let png = encode_test_png(20, 10);
        assert_eq!(
            probe(&png).unwrap(),
            ImageInfo {
                format: "png",
                width: 20,
                height: 10
            }
        );
        assert!(matches!(probe(b"hello"), Err(ImagingError::Decode(_))));
    }

    #[test]
    fn zero_width_png_is_zero_dimensions() {
        let mut png = encode_test_png(20, 10);
        png[16..20].copy_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(probe(&png), Err(ImagingError::ZeroDimensions)));
    }

    #[test]
    fn huge_declared_png_is_refused_before_decoding() {
        let mut png = encode_test_png(20, 10);
        png[16..20].copy_from_slice(&60000u32.to_be_bytes());
        png[20..24].copy_from_slice(&60000u32.to_be_bytes());
        assert!(matches!(
            probe(&png),
            Err(ImagingError::TooLarge { .. }) | Err(ImagingError::Decode(_))
        ));
    }

    #[test]
    fn round_trips_every_format() {
        let raster = decode(&encode_test_png(16, 8)).unwrap();
        for f in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Tiff] {
            let bytes = encode(&raster, f).unwrap();
            let info = probe(&bytes).unwrap();
            assert_eq!((info.width, info.height), (16, 8), "{f:?}");
        }
    }
}
