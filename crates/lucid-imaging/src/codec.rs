//! Probing, decoding and encoding. Dimensions and the memory a decode needs are checked from the
//! header before any pixel is decoded; EXIF orientation is applied on decode, and the ICC profile
//! and EXIF block (orientation reset) are carried into outputs that can hold them.

use std::io::{Cursor, Seek, Write};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use lucid_core::OutputFormat;
use lucid_core::geometry::MAX_SIDE;

use crate::ImagingError;
use crate::jpeg;
use crate::raster::{Raster, Sample};

/// Largest input lucid decodes, in pixels (the spec's 512 MP input cap).
pub const MAX_INPUT_PIXELS: u64 = 512_000_000;

/// What the header of an accepted image says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// `jpeg`, `png` or `tiff`.
    pub format: &'static str,
    /// The size as shown, its EXIF orientation applied (decoding applies it).
    pub width: u32,
    pub height: u32,
    /// Bytes a decoded pixel takes (3 for 8-bit RGB, 8 for 16-bit RGBA, …).
    pub decoded_bytes_per_pixel: u8,
    /// Whether the image has an alpha channel (it is then worked on as RGBA).
    pub alpha: bool,
    /// Whether it can decode reduced (see [`ImageInfo::decoded_size`]): a sequential
    /// Huffman-coded JPEG of 8-bit grey or colour samples.
    pub reduces: bool,
    /// Whether decoding turns it a quarter (its EXIF orientation swaps width and height),
    /// which makes a turned copy of the decoded pixels.
    pub turned: bool,
    /// Whether it is a progressive JPEG, whose decoder holds every coefficient of the image
    /// until the last scan.
    pub progressive: bool,
}

fn format_name(f: ImageFormat) -> Option<&'static str> {
    match f {
        ImageFormat::Jpeg => Some("jpeg"),
        ImageFormat::Png => Some("png"),
        ImageFormat::Tiff => Some("tiff"),
        _ => None,
    }
}

impl ImageInfo {
    /// What a header of `format` and this size may hold at worst, where only those are known:
    /// a JPEG decodes to 8-bit RGB, and may be progressive; a PNG may be 16-bit RGBA, a TIFF
    /// 32-bit float RGBA; any may be turned by its EXIF orientation.
    pub fn assumed(format: &str, width: u32, height: u32) -> Self {
        let (format, decoded_bytes_per_pixel, alpha) = match format {
            "jpeg" => ("jpeg", 3, false),
            "png" => ("png", 8, true),
            _ => ("tiff", 16, true),
        };
        ImageInfo {
            format,
            width,
            height,
            decoded_bytes_per_pixel,
            alpha,
            reduces: false,
            turned: true,
            progressive: format == "jpeg",
        }
    }

    /// The most heap decoding it toward `target` takes (see [`decode_image_toward`]): the
    /// decoded pixels at [`ImageInfo::decoded_size`], and beside them what the decoder holds
    /// while decoding (a reduced JPEG's component planes, a progressive JPEG's coefficients at
    /// 2 bytes a sample, the TIFF decoder's own buffer) or the turned copy EXIF asks for.
    pub fn decode_memory(&self, target: Option<(u32, u32)>) -> u64 {
        let (w, h) = self.decoded_size(target);
        let decoded = w as u64 * h as u64 * self.decoded_bytes_per_pixel as u64;
        // The turned copy is made once the decoder's own buffers are gone.
        let copies = if self.progressive {
            3
        } else if self.reduction(target) > 1 || self.format == "tiff" || self.turned {
            2
        } else {
            1
        };
        decoded * copies
    }

    /// The size the image decodes at when it is about to be resampled to `target` (both as
    /// shown; see [`decode_image_toward`]): one that [`reduces`](Self::reduces) at the
    /// smallest of 1/8, 1/4 and 1/2 of its size that leaves at least twice `target` on both
    /// sides; anything else whole.
    pub fn decoded_size(&self, target: Option<(u32, u32)>) -> (u32, u32) {
        let k = self.reduction(target);
        (self.width.div_ceil(k), self.height.div_ceil(k))
    }

    /// The divisor behind [`ImageInfo::decoded_size`]: 1, 2, 4 or 8.
    fn reduction(&self, target: Option<(u32, u32)>) -> u32 {
        let Some((w, h)) = target.filter(|_| self.reduces) else {
            return 1;
        };
        [8, 4, 2]
            .into_iter()
            .find(|k| self.width.div_ceil(*k) >= 2 * w && self.height.div_ceil(*k) >= 2 * h)
            .unwrap_or(1)
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
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| ImagingError::Decode(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    check_size(width, height)?;
    // Geometry is planned on the image as it is shown: decoding applies the orientation.
    let turned = decoder.orientation().is_ok_and(turns);
    let (width, height) = if turned {
        (height, width)
    } else {
        (width, height)
    };
    if !is_complete(format, bytes) {
        return Err(ImagingError::Decode("the file is truncated".into()));
    }
    Ok(ImageInfo {
        format,
        width,
        height,
        decoded_bytes_per_pixel: color.bytes_per_pixel(),
        alpha: color.has_alpha(),
        reduces: format == "jpeg" && jpeg_reduces(bytes),
        turned,
        progressive: format == "jpeg"
            && jpeg_frame(bytes)
                .is_some_and(|(marker, _)| matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE)),
    })
}

/// Whether an EXIF orientation swaps the image's width and height.
fn turns(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Whether the file's structure runs to its end marker, found without decoding pixels: PNG
/// chunks follow each other to IEND; JPEG segments lead to a scan, and an EOI follows it.
/// TIFF strips and tiles all end inside the file. Truncated uploads are refused at submit
/// instead of failing later in a worker.
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
                Some((0xDA, at, len)) => {
                    let scan = &b[(at + 2 + len).min(b.len())..];
                    // Most files end with it; the search is for those with bytes after it.
                    scan.ends_with(&[0xFF, 0xD9]) || scan.windows(2).any(|w| w == [0xFF, 0xD9])
                }
                _ => false,
            }
        }
        "tiff" => tiff_data_fits(b),
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
    let (_, at) = jpeg_frame(b)?;
    let frame = b.get(at + 5..at + 9)?;
    let h = u16::from_be_bytes([frame[0], frame[1]]);
    let w = u16::from_be_bytes([frame[2], frame[3]]);
    Some((w as u32, h as u32))
}

/// Whether a JPEG's frame is one [`decode_jpeg_reduced`] takes: sequential Huffman-coded
/// (baseline or extended), 8-bit samples, one or three components. Progressive files are
/// left whole: that decoder would hold all their coefficients at full size, over the
/// memory a reduced decode is budgeted.
fn jpeg_reduces(b: &[u8]) -> bool {
    let Some((marker, at)) = jpeg_frame(b) else {
        return false;
    };
    matches!(marker, 0xC0 | 0xC1)
        && b.get(at + 4) == Some(&8)
        && matches!(b.get(at + 9), Some(1 | 3))
}

/// A JPEG's frame header (SOF): its marker, which says how the image is coded, and the index
/// of its 0xFF. Among the 0xC0–0xCF markers, 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) are not
/// frames.
fn jpeg_frame(b: &[u8]) -> Option<(u8, usize)> {
    jpeg_segments(b)
        .find(|(marker, _, _)| {
            (0xC0..=0xCF).contains(marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
        })
        .map(|(marker, at, _)| (marker, at))
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

/// What an output keeps of its input besides pixels: the colour profile, the EXIF block
/// (its orientation reset, since decoding applied it) and the samples' precision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub icc: Option<Vec<u8>>,
    /// The EXIF TIFF structure, without the JPEG `Exif\0\0` prefix.
    pub exif: Option<Vec<u8>>,
    /// The input's samples were wider than 8 bits (16-bit or float): PNG and TIFF outputs are
    /// written with 16-bit samples, so a photographer's 16-bit file keeps its gradations.
    pub sixteen_bit: bool,
    /// The input was grey (with or without alpha): PNG outputs are written grey, and TIFF
    /// outputs without alpha (TIFF has no grey with alpha here), each pixel's grey the mean of
    /// its colour samples. The pipeline clears it for an operation that colours grey.
    pub grey: bool,
}

/// Decodes to the working raster, orientation applied. Alpha is kept when the image has it.
pub fn decode(bytes: &[u8]) -> Result<Raster, ImagingError> {
    decode_with_metadata(bytes).map(|(raster, _)| raster)
}

/// [`decode`], also answering the metadata an output should carry over.
pub fn decode_with_metadata(bytes: &[u8]) -> Result<(Raster, Metadata), ImagingError> {
    let (img, metadata) = decode_image(bytes)?;
    Ok((Raster::from_dynamic(&img), metadata))
}

/// The decoded image as the decoder gives it (8 or 16 bits, grey or colour), orientation
/// applied, and the metadata an output should carry over.
pub fn decode_image(bytes: &[u8]) -> Result<(DynamicImage, Metadata), ImagingError> {
    decode_image_toward(bytes, &probe(bytes)?, None)
}

/// [`decode_image`] for an image about to be resampled to `target` (width, height as shown):
/// a JPEG is decoded at 1/2, 1/4 or 1/8 of its size, the reduction done in its DCT as it is
/// decoded (libjpeg's scaled decoding, vips' shrink-on-load), whenever that leaves at least
/// twice `target` on both sides, so that the resampler's Lanczos-3 still makes the last factor
/// of two or more. Other images, and JPEGs too small to shrink, decode whole. `info` is what
/// [`probe`] answered for `bytes` (which checked the limits: the caller probes once).
pub fn decode_image_toward(
    bytes: &[u8],
    info: &ImageInfo,
    target: Option<(u32, u32)>,
) -> Result<(DynamicImage, Metadata), ImagingError> {
    let mut decoder = whole_decoder(bytes)?;
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
    let whole = |decoder| {
        DynamicImage::from_decoder(decoder).map_err(|e| ImagingError::Decode(e.to_string()))
    };
    let mut img = match info.reduction(target) {
        1 => whole(decoder)?,
        k => {
            // The whole decoder holds a copy of the file: not beside the reduced decode.
            drop(decoder);
            match decode_jpeg_reduced(bytes, k) {
                Some(img) => img,
                None => whole(whole_decoder(bytes)?)?,
            }
        }
    };
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let colour = img.color();
    let meta = Metadata {
        icc,
        exif,
        sixteen_bit: colour.bytes_per_pixel() > colour.channel_count(),
        grey: !colour.has_color(),
    };
    Ok((img, meta))
}

/// The image crate's decoder for the whole image, with lucid's limits.
fn whole_decoder(bytes: &[u8]) -> Result<impl ImageDecoder + '_, ImagingError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImagingError::Decode(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_INPUT_PIXELS * 8);
    reader.limits(limits);
    reader
        .into_decoder()
        .map_err(|e| ImagingError::Decode(e.to_string()))
}

/// A JPEG decoded at 1/`k` of its size (`k` 2, 4 or 8), the reduction made in its inverse
/// DCT. `None` for samples other than 8-bit grey or colour and for files this decoder refuses
/// (probe's [`ImageInfo::reduces`] lets few through): the whole decode then handles them, and
/// reports what is wrong with them.
fn decode_jpeg_reduced(bytes: &[u8], k: u32) -> Option<DynamicImage> {
    use jpeg_decoder::PixelFormat;
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    // Asked for exactly ⌈size / k⌉, the decoder picks that reduction.
    let (w, h) = decoder
        .scale(w.div_ceil(k) as u16, h.div_ceil(k) as u16)
        .ok()?;
    let (w, h) = (u32::from(w), u32::from(h));
    match info.pixel_format {
        PixelFormat::RGB24 => {
            image::RgbImage::from_raw(w, h, decoder.decode().ok()?).map(DynamicImage::ImageRgb8)
        }
        PixelFormat::L8 => {
            image::GrayImage::from_raw(w, h, decoder.decode().ok()?).map(DynamicImage::ImageLuma8)
        }
        _ => None,
    }
}

/// The byte order of a TIFF structure (a TIFF file, or an EXIF block), from its first two bytes.
#[derive(Clone, Copy)]
struct TiffOrder {
    big_endian: bool,
}

impl TiffOrder {
    fn of(b: &[u8]) -> Option<Self> {
        match b.get(..2)? {
            b"MM" => Some(TiffOrder { big_endian: true }),
            b"II" => Some(TiffOrder { big_endian: false }),
            _ => None,
        }
    }

    fn u16(self, b: &[u8], i: usize) -> Option<u16> {
        let v: [u8; 2] = b.get(i..i.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        })
    }

    fn u32(self, b: &[u8], i: usize) -> Option<u32> {
        let v: [u8; 4] = b.get(i..i.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    }

    /// IFD0's entries: (offset of the entry, tag, type, count).
    fn ifd0(self, b: &[u8]) -> Option<Vec<(usize, u16, u16, u32)>> {
        let ifd = self.u32(b, 4)? as usize;
        let count = self.u16(b, ifd)? as usize;
        (0..count)
            .map(|i| {
                let at = ifd + 2 + i * 12;
                Some((
                    at,
                    self.u16(b, at)?,
                    self.u16(b, at + 2)?,
                    self.u32(b, at + 4)?,
                ))
            })
            .collect()
    }

    /// The SHORT or LONG values of an entry, wherever they are kept.
    fn values(self, b: &[u8], (at, _, typ, count): (usize, u16, u16, u32)) -> Option<Vec<u64>> {
        let size = match typ {
            3 => 2,
            4 => 4,
            _ => return None,
        };
        let count = count as usize;
        let start = if count * size <= 4 {
            at + 8
        } else {
            self.u32(b, at + 8)? as usize
        };
        (0..count)
            .map(|k| match size {
                2 => self.u16(b, start + 2 * k).map(u64::from),
                _ => self.u32(b, start + 4 * k).map(u64::from),
            })
            .collect()
    }
}

/// Whether every strip (or tile) of a TIFF's first image lies inside the file. A structure it
/// cannot follow (BigTIFF, compressed-only oddities) is left to the decoder.
fn tiff_data_fits(b: &[u8]) -> bool {
    let Some(order) = TiffOrder::of(b) else {
        return true;
    };
    if order.u16(b, 2) != Some(42) {
        return true;
    }
    let Some(entries) = order.ifd0(b) else {
        return false;
    };
    let find = |tags: [u16; 2]| entries.iter().find(|e| tags.contains(&e.1)).copied();
    let (Some(offsets), Some(counts)) = (find([273, 324]), find([279, 325])) else {
        return false;
    };
    match (order.values(b, offsets), order.values(b, counts)) {
        (Some(offsets), Some(counts)) if offsets.len() == counts.len() => offsets
            .iter()
            .zip(&counts)
            .all(|(o, n)| o + n <= b.len() as u64),
        _ => false,
    }
}

/// Sets the Orientation tag (0x0112) of IFD0 in an EXIF TIFF structure to 1, "as stored".
/// Leaves a structure it cannot follow untouched.
fn reset_orientation(exif: &mut [u8]) {
    let Some(order) = TiffOrder::of(exif) else {
        return;
    };
    let Some(entries) = order.ifd0(exif) else {
        return;
    };
    // A SHORT of count 1 keeps its value in the first two bytes of the value field.
    if let Some((at, ..)) = entries.iter().find(|e| e.1 == 0x0112 && e.2 == 3) {
        let one = if order.big_endian {
            1u16.to_be_bytes()
        } else {
            1u16.to_le_bytes()
        };
        if let Some(v) = exif.get_mut(at + 8..at + 10) {
            v.copy_from_slice(&one);
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
    let out = encode_rows(
        &mut WholeRaster(raster),
        format,
        meta,
        Cursor::new(Vec::new()),
    )?;
    Ok(out.into_inner())
}

/// An output image handed to the encoders band by band, top to bottom: a raster already in
/// memory, or an operation that computes its rows as they are asked for.
pub trait RowSource<T = f32> {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// 3 (RGB) or 4 (RGBA).
    fn channels(&self) -> usize;
    /// Fills `band` (sized by the caller: [`RowSource::width`] wide, up to the bottom) with the
    /// output rows starting at `y0`.
    fn fill(&mut self, y0: usize, band: &mut Raster<T>) -> Result<(), ImagingError>;
}

/// Reads every row of the source into one raster.
pub fn read_all<T: Sample>(source: &mut dyn RowSource<T>) -> Result<Raster<T>, ImagingError> {
    let mut out = Raster::new(source.width(), source.height(), source.channels());
    let row_len = out.row_len();
    let mut y0 = 0;
    for_each_band(source, |band| {
        out.data[y0 * row_len..][..band.data.len()].copy_from_slice(&band.data);
        y0 += band.height;
        Ok(())
    })?;
    Ok(out)
}

/// A raster in memory as a [`RowSource`].
pub struct WholeRaster<'a, T = f32>(pub &'a Raster<T>);

impl<T: Sample> RowSource<T> for WholeRaster<'_, T> {
    fn width(&self) -> usize {
        self.0.width
    }
    fn height(&self) -> usize {
        self.0.height
    }
    fn channels(&self) -> usize {
        self.0.channels
    }
    fn fill(&mut self, y0: usize, band: &mut Raster<T>) -> Result<(), ImagingError> {
        let (start, len) = (y0 * self.0.row_len(), band.data.len());
        band.data.copy_from_slice(&self.0.data[start..start + len]);
        Ok(())
    }
}

/// Rows the encoders take from their source at a time (TIFF strips and JPEG restart
/// intervals are this tall): 128, fewer for very wide images so that a band stays near 16 MB,
/// always a multiple of 16 (one JPEG MCU row at 4:2:0).
pub fn band_rows(width: usize, channels: usize) -> usize {
    const BAND_BYTES: usize = 16 << 20;
    let rows = BAND_BYTES / (width * channels * std::mem::size_of::<f32>()).max(1);
    (rows / 16 * 16).clamp(16, 128)
}

/// Bands computed ahead of the encoder.
const BANDS_AHEAD: usize = 2;

/// A bound on what the PNG writer keeps besides its rows: a 4 KiB chunk buffer and, at
/// `Compression::Fast`, fdeflate's few words of state (no window, no hash table).
const PNG_WRITER_STATE: usize = 64 << 10;

/// JPEG strips encoded at once on a pool of `threads`: one a thread, bounded so memory does
/// not grow with the core count.
fn jpeg_strips_at_once(threads: usize) -> usize {
    threads.clamp(1, 4)
}

/// The most heap encoding a `width`-wide output takes beside its source, on a job's pool
/// ([`crate::job_threads`]): the bands computed ahead, the one being filled and those the
/// encoder holds (of `sample_bytes` a sample), and the encoder's own: JPEG's strips (Y, Cb
/// and Cr planes and the coded bytes, a strip a band), or for PNG and TIFF a band's copy
/// in the file's 8- or 16-bit samples and what the writer buffers.
pub fn encoder_memory(
    width: usize,
    channels: usize,
    sample_bytes: usize,
    format: OutputFormat,
) -> u64 {
    let rows = band_rows(width, channels);
    let band = rows * width * channels;
    let (held, own) = match format {
        OutputFormat::Jpeg => {
            let strips = jpeg_strips_at_once(crate::job_threads());
            // Three 8-bit planes, and coded bytes at up to 2 a pixel.
            (strips, strips * rows * width * (3 + 2))
        }
        // The band's copy in the file's samples (16-bit only from a float source); PNG's
        // writer also keeps three rows and its deflate state.
        OutputFormat::Tiff => (1, band * sample_bytes.min(2)),
        OutputFormat::Png => (
            1,
            band * sample_bytes.min(2) + 3 * width * channels * 2 + PNG_WRITER_STATE,
        ),
    };
    ((BANDS_AHEAD + 1 + held) * band * sample_bytes + own) as u64
}

/// [`encode_rows`] with the source computed on its own thread, a few bands ahead of the
/// encoder, so the encoding overlaps the computing of the next rows. Called on a thread of
/// `pool`, whose other threads compute the rows: the row thread lends each band's work to the
/// pool and waits outside it, so no pool thread ever blocks on a channel while holding work
/// another needs (a pool thread waiting for a parallel pass may run any task of the pool).
pub fn encode_rows_ahead<T: Encodable, W: Write + Seek>(
    pool: &rayon::ThreadPool,
    source: &mut (dyn RowSource<T> + Send),
    format: OutputFormat,
    meta: &Metadata,
    out: W,
) -> Result<W, ImagingError> {
    let (w, h, c) = (source.width(), source.height(), source.channels());
    let rows = band_rows(w, c);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(BANDS_AHEAD);
        let (recycle, recycled) = std::sync::mpsc::channel::<Raster<T>>();
        scope.spawn(move || {
            for y0 in (0..h).step_by(rows) {
                // Bands the encoder is done with are filled again: allocating (and
                // page-faulting) a fresh one per band costs more than some encoders' work.
                let mut band = recycled.try_recv().unwrap_or_else(|_| Raster::new(w, 0, c));
                band.set_height(rows.min(h - y0));
                let result = pool.install(|| source.fill(y0, &mut band)).map(|()| band);
                let failed = result.is_err();
                // A closed channel means the encoder stopped: nothing more is wanted.
                if tx.send(result).is_err() || failed {
                    return;
                }
            }
        });
        let mut ahead = Prefetched {
            rx,
            recycle,
            w,
            h,
            c,
            rows,
            next_y0: 0,
        };
        encode_rows(&mut ahead, format, meta, out)
    })
}

/// The bands another thread computes, in the order the encoders read them.
struct Prefetched<T> {
    rx: std::sync::mpsc::Receiver<Result<Raster<T>, ImagingError>>,
    /// Where the bands handed back go, to be filled again.
    recycle: std::sync::mpsc::Sender<Raster<T>>,
    w: usize,
    h: usize,
    c: usize,
    rows: usize,
    next_y0: usize,
}

impl<T: Sample> RowSource<T> for Prefetched<T> {
    fn width(&self) -> usize {
        self.w
    }
    fn height(&self) -> usize {
        self.h
    }
    fn channels(&self) -> usize {
        self.c
    }
    fn fill(&mut self, y0: usize, band: &mut Raster<T>) -> Result<(), ImagingError> {
        if y0 != self.next_y0 || band.height != self.rows.min(self.h - y0) {
            return Err(ImagingError::Encode(format!(
                "rows asked out of order: {} from {y0}, expected from {}",
                band.height, self.next_y0
            )));
        }
        // Handed back before the next band is taken: taking it wakes the row thread, which
        // must find this one to fill rather than allocate another. (The row thread may have
        // finished; then the band is simply dropped.)
        let used = std::mem::replace(band, Raster::new(self.w, 0, self.c));
        let _ = self.recycle.send(used);
        *band = self
            .rx
            .recv()
            .map_err(|_| ImagingError::Encode("the row thread stopped".into()))??;
        self.next_y0 += band.height;
        Ok(())
    }
}

/// Encodes rows as the source yields them, so only a few bands of the output are ever held
/// as pixels: PNG through a streaming writer, TIFF strip by strip, JPEG as strips encoded in
/// parallel and joined by restart markers (see [`jpeg`]: baseline, 4:2:0 like libjpeg's,
/// Pillow's and OpenCV's defaults). Embeds the ICC profile (all three) and the EXIF block
/// (JPEG, PNG).
pub fn encode_rows<T: Encodable, W: Write + Seek>(
    source: &mut dyn RowSource<T>,
    format: OutputFormat,
    meta: &Metadata,
    out: W,
) -> Result<W, ImagingError> {
    let (w, h, c) = (source.width(), source.height(), source.channels());
    let enc_err = |e: &dyn std::fmt::Display| ImagingError::Encode(e.to_string());
    match format {
        OutputFormat::Jpeg => {
            use rayon::prelude::*;
            let rows = band_rows(w, c);
            let mut jpeg = jpeg::Strips::new(out, w, h, rows, meta)?;
            let at_once = jpeg_strips_at_once(rayon::current_num_threads());
            let mut bands: Vec<(Raster<T>, jpeg::Planes)> = (0..at_once)
                .map(|_| (Raster::new(w, 0, c), jpeg::Planes::default()))
                .collect();
            for batch_y0 in (0..h).step_by(rows * at_once) {
                let mut filled = 0;
                for (i, (band, _)) in bands.iter_mut().enumerate() {
                    let y0 = batch_y0 + i * rows;
                    if y0 >= h {
                        break;
                    }
                    band.set_height(rows.min(h - y0));
                    source.fill(y0, band)?;
                    filled += 1;
                }
                let strips = bands[..filled]
                    .par_iter_mut()
                    .map(|(band, planes)| encode_jpeg_strip(band, planes))
                    .collect::<Vec<_>>();
                for strip in &strips {
                    jpeg.push(strip)?;
                }
            }
            jpeg.finish()
        }
        OutputFormat::Png => {
            let mut info = png::Info::with_size(w as u32, h as u32);
            info.icc_profile = meta.icc.as_deref().map(Into::into);
            info.exif_metadata = meta.exif.as_deref().map(Into::into);
            let mut out = out;
            let mut enc = png::Encoder::with_info(&mut out, info).map_err(|e| enc_err(&e))?;
            enc.set_color(match (meta.grey, c == 4) {
                (true, true) => png::ColorType::GrayscaleAlpha,
                (true, false) => png::ColorType::Grayscale,
                (false, true) => png::ColorType::Rgba,
                (false, false) => png::ColorType::Rgb,
            });
            enc.set_depth(if meta.sixteen_bit {
                png::BitDepth::Sixteen
            } else {
                png::BitDepth::Eight
            });
            enc.set_compression(png::Compression::Fast);
            enc.set_filter(png::Filter::Adaptive);
            let mut writer = enc.write_header().map_err(|e| enc_err(&e))?;
            let mut stream = writer.stream_writer().map_err(|e| enc_err(&e))?;
            for_each_band(source, |band| {
                let written = if meta.sixteen_bit {
                    let mut words = greyed(band.to_u16(), c, meta.grey);
                    // PNG's samples are big-endian.
                    words.iter_mut().for_each(|v| *v = v.to_be());
                    stream.write_all(bytemuck::cast_slice(&words))
                } else {
                    stream.write_all(&greyed(band.to_u8(), c, meta.grey))
                };
                written.map_err(|e| enc_err(&e))
            })?;
            stream.finish().map_err(|e| enc_err(&e))?;
            writer.finish().map_err(|e| enc_err(&e))?;
            Ok(out)
        }
        OutputFormat::Tiff => {
            let mut out = out;
            let mut tiff = tiff::encoder::TiffEncoder::new(&mut out).map_err(|e| enc_err(&e))?;
            use tiff::encoder::colortype::{Gray8, Gray16, RGB8, RGB16, RGBA8, RGBA16};
            let (bytes, words) = (Raster::<T>::to_u8, Raster::<T>::to_u16);
            let grey_bytes = |band: &Raster<T>| greyed(band.to_u8(), 3, true);
            let grey_words = |band: &Raster<T>| greyed(band.to_u16(), 3, true);
            let t = &mut tiff;
            match (c == 4, meta.grey, meta.sixteen_bit) {
                (true, _, true) => write_tiff::<RGBA16, _, _>(t, source, meta, words)?,
                (true, _, false) => write_tiff::<RGBA8, _, _>(t, source, meta, bytes)?,
                (false, true, true) => write_tiff::<Gray16, _, _>(t, source, meta, grey_words)?,
                (false, true, false) => write_tiff::<Gray8, _, _>(t, source, meta, grey_bytes)?,
                (false, false, true) => write_tiff::<RGB16, _, _>(t, source, meta, words)?,
                (false, false, false) => write_tiff::<RGB8, _, _>(t, source, meta, bytes)?,
            }
            Ok(out)
        }
    }
}

/// A band's samples (RGB or RGBA, `channels` a pixel) as the file stores them: when `grey`,
/// each pixel's mean of R, G and B, and its alpha (made in place: a pixel's grey samples are
/// written no later in the vector than its colour samples are read).
fn greyed<V>(mut samples: Vec<V>, channels: usize, grey: bool) -> Vec<V>
where
    V: Copy + Into<u32> + TryFrom<u32>,
{
    if !grey {
        return samples;
    }
    let kept = channels - 2;
    let pixels = samples.len() / channels;
    for i in 0..pixels {
        let p = i * channels;
        let sum: u32 = samples[p..p + 3].iter().map(|&v| v.into()).sum();
        // The mean of three samples is a sample.
        samples[i * kept] = V::try_from((sum + 1) / 3).unwrap_or_else(|_| unreachable!());
        if kept == 2 {
            samples[i * kept + 1] = samples[p + 3];
        }
    }
    samples.truncate(pixels * kept);
    samples
}

/// Hands `f` the source's rows in bands of [`band_rows`], top to bottom.
fn for_each_band<T: Sample>(
    source: &mut dyn RowSource<T>,
    mut f: impl FnMut(&Raster<T>) -> Result<(), ImagingError>,
) -> Result<(), ImagingError> {
    let (w, h, c) = (source.width(), source.height(), source.channels());
    let rows = band_rows(w, c);
    let mut band = Raster::new(w, 0, c);
    for y0 in (0..h).step_by(rows) {
        band.set_height(rows.min(h - y0));
        source.fill(y0, &mut band)?;
        f(&band)?;
    }
    Ok(())
}

/// Writes the source as a TIFF of colour type `C`, each band's samples made `C`'s by `samples`.
fn write_tiff<C, T, W>(
    tiff: &mut tiff::encoder::TiffEncoder<W>,
    source: &mut dyn RowSource<T>,
    meta: &Metadata,
    samples: impl Fn(&Raster<T>) -> Vec<C::Inner>,
) -> Result<(), ImagingError>
where
    C: tiff::encoder::colortype::ColorType,
    [C::Inner]: tiff::encoder::TiffValue,
    T: Sample,
    W: Write + Seek,
{
    let enc_err = |e: tiff::TiffError| ImagingError::Encode(e.to_string());
    let mut image = tiff
        .new_image::<C>(source.width() as u32, source.height() as u32)
        .map_err(enc_err)?;
    image
        .rows_per_strip(band_rows(source.width(), source.channels()) as u32)
        .map_err(enc_err)?;
    if let Some(icc) = &meta.icc {
        image
            .encoder()
            .write_tag(tiff::tags::Tag::IccProfile, icc.as_slice())
            .map_err(enc_err)?;
    }
    for_each_band(source, |band| {
        image.write_strip(&samples(band)).map_err(enc_err)
    })?;
    image.finish().map_err(enc_err)
}

/// One band's coded data (see [`jpeg::encode_strip`]), through `planes`.
fn encode_jpeg_strip<T: Encodable>(band: &Raster<T>, planes: &mut jpeg::Planes) -> Vec<u8> {
    T::to_ycbcr(band, planes);
    let mut data = Vec::with_capacity(band.width * band.height / 2);
    jpeg::encode_strip(planes, &mut data);
    data
}

/// Samples the JPEG encoder takes: each kind turned into Y, Cb and Cr its own fastest way.
pub trait Encodable: Sample {
    /// The band as JFIF Y, Cb and Cr planes (BT.601 full range), any alpha composited onto
    /// white.
    fn to_ycbcr(band: &Raster<Self>, planes: &mut jpeg::Planes);
}

impl Encodable for f32 {
    fn to_ycbcr(band: &Raster, planes: &mut jpeg::Planes) {
        let c = band.channels;
        planes.fill(band, |row, ys, cbs, crs| {
            floats_to_ycbcr(row, c, ys, cbs, crs)
        })
    }
}

impl Encodable for u8 {
    fn to_ycbcr(band: &Raster<u8>, planes: &mut jpeg::Planes) {
        let c = band.channels;
        planes.fill(band, |row, ys, cbs, crs| {
            #[cfg(target_arch = "x86_64")]
            if c == 3 && std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                unsafe { rgb8_row_to_ycbcr_avx2(row, ys, cbs, crs) };
                return;
            }
            bytes_to_ycbcr(row, c, ys, cbs, crs)
        })
    }
}

/// One row of RGB or RGBA in 0..=1 as Y, Cb and Cr: clamping, scaling and the transform on
/// whole vectors where the CPU has AVX2.
fn floats_to_ycbcr(row: &[f32], channels: usize, ys: &mut [u8], cbs: &mut [u8], crs: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if channels == 3 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { rgb_row_to_ycbcr_avx2(row, ys, cbs, crs) };
        return;
    }
    match channels {
        4 => row_to_ycbcr::<4>(row, ys, cbs, crs),
        _ => row_to_ycbcr::<3>(row, ys, cbs, crs),
    }
}

/// Bytes made floats a few pixels at a time and converted as those are: RGBA, CPUs without
/// AVX2, and the vector path's last pixels.
fn bytes_to_ycbcr(row: &[u8], channels: usize, ys: &mut [u8], cbs: &mut [u8], crs: &mut [u8]) {
    const PIXELS: usize = 64;
    let mut floats = [0f32; PIXELS * 4];
    let chunks = row
        .chunks(PIXELS * channels)
        .zip(ys.chunks_mut(PIXELS))
        .zip(cbs.chunks_mut(PIXELS))
        .zip(crs.chunks_mut(PIXELS));
    for (((bytes, ys), cbs), crs) in chunks {
        let floats = &mut floats[..bytes.len()];
        for (f, &b) in floats.iter_mut().zip(bytes) {
            *f = b as f32 * (1.0 / 255.0);
        }
        match channels {
            4 => row_to_ycbcr::<4>(floats, ys, cbs, crs),
            _ => row_to_ycbcr::<3>(floats, ys, cbs, crs),
        }
    }
}

/// [`row_to_ycbcr`] for RGB, eight pixels at a time: see [`ycbcr8_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn rgb_row_to_ycbcr_avx2(row: &[f32], ys: &mut [u8], cbs: &mut [u8], crs: &mut [u8]) {
    use std::arch::x86_64::*;
    let n = ys.len().min(row.len() / 3) / 8 * 8;
    let (zero, one, full) = (
        _mm256_setzero_ps(),
        _mm256_set1_ps(1.0),
        _mm256_set1_ps(255.0),
    );
    let level = |v: __m256| _mm256_mul_ps(_mm256_min_ps(_mm256_max_ps(v, zero), one), full);
    for x in (0..n).step_by(8) {
        let p = &row[x * 3..x * 3 + 24];
        // SAFETY: `p` holds 24 floats: three unaligned loads of eight.
        let (v0, v1, v2) = unsafe {
            (
                _mm256_loadu_ps(p.as_ptr()),
                _mm256_loadu_ps(p.as_ptr().add(8)),
                _mm256_loadu_ps(p.as_ptr().add(16)),
            )
        };
        let [y, cb, cr] = [&mut *ys, &mut *cbs, &mut *crs].map(|plane| eight(plane, x));
        ycbcr8_avx2([level(v0), level(v1), level(v2)], y, cb, cr);
    }
    row_to_ycbcr::<3>(&row[n * 3..], &mut ys[n..], &mut cbs[n..], &mut crs[n..]);
}

/// [`rgb_row_to_ycbcr_avx2`] for bytes: each eight widened to floats in one instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn rgb8_row_to_ycbcr_avx2(row: &[u8], ys: &mut [u8], cbs: &mut [u8], crs: &mut [u8]) {
    use std::arch::x86_64::*;
    let n = ys.len().min(row.len() / 3) / 8 * 8;
    for x in (0..n).step_by(8) {
        let p = &row[x * 3..x * 3 + 24];
        // SAFETY: `p` holds 24 bytes: three unaligned 8-byte loads.
        let [v0, v1, v2] = [0, 8, 16].map(|at| unsafe {
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                p.as_ptr().add(at).cast(),
            )))
        });
        let [y, cb, cr] = [&mut *ys, &mut *cbs, &mut *crs].map(|plane| eight(plane, x));
        ycbcr8_avx2([v0, v1, v2], y, cb, cr);
    }
    bytes_to_ycbcr(&row[n * 3..], 3, &mut ys[n..], &mut cbs[n..], &mut crs[n..]);
}

/// The eight samples of a plane from `x`.
fn eight(plane: &mut [u8], x: usize) -> &mut [u8; 8] {
    (&mut plane[x..x + 8]).try_into().unwrap()
}

/// Eight interleaved RGB pixels (24 samples in three vectors, 0..=255) as eight Y, Cb and Cr:
/// each channel is pulled out of the interleaved samples with two blends and a permute, so
/// the arithmetic runs on whole vectors (the compiler leaves the interleaved loop scalar).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn ycbcr8_avx2(
    [v0, v1, v2]: [std::arch::x86_64::__m256; 3],
    ys: &mut [u8; 8],
    cbs: &mut [u8; 8],
    crs: &mut [u8; 8],
) {
    use std::arch::x86_64::*;
    let weigh = |(r, g, b): (__m256, __m256, __m256), [wr, wg, wb, offset]: [f32; 4]| {
        let sum = _mm256_add_ps(
            _mm256_add_ps(
                _mm256_mul_ps(r, _mm256_set1_ps(wr)),
                _mm256_mul_ps(g, _mm256_set1_ps(wg)),
            ),
            _mm256_mul_ps(b, _mm256_set1_ps(wb)),
        );
        // + 0.5 and truncation: rounding as the scalar path does it.
        let ints = _mm256_cvttps_epi32(_mm256_add_ps(sum, _mm256_set1_ps(offset + 0.5)));
        let words = _mm256_packus_epi32(ints, ints);
        let bytes = _mm256_packus_epi16(words, words);
        let low = _mm_cvtsi128_si32(_mm256_castsi256_si128(bytes)) as u32;
        let high = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(bytes)) as u32;
        (u64::from(high) << 32 | u64::from(low)).to_le_bytes()
    };
    // v0 = r0 g0 b0 r1 g1 b1 r2 g2, v1 = b2 r3 g3 b3 r4 g4 b4 r5, v2 = g5 b5 r6 g6 b6 r7 g7 b7:
    // each channel sits at distinct positions of the three, so two blends gather it and a
    // permute puts it in order.
    let r = _mm256_permutevar8x32_ps(
        _mm256_blend_ps::<0b0010_0100>(_mm256_blend_ps::<0b1001_0010>(v0, v1), v2),
        _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5),
    );
    let g = _mm256_permutevar8x32_ps(
        _mm256_blend_ps::<0b0100_1001>(_mm256_blend_ps::<0b0010_0100>(v0, v1), v2),
        _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6),
    );
    let b = _mm256_permutevar8x32_ps(
        _mm256_blend_ps::<0b1001_0010>(_mm256_blend_ps::<0b0100_1001>(v0, v1), v2),
        _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7),
    );
    *ys = weigh((r, g, b), YCBCR[0]);
    *cbs = weigh((r, g, b), YCBCR[1]);
    *crs = weigh((r, g, b), YCBCR[2]);
}

/// JFIF's full-range BT.601 transform: the R, G and B weights and the offset of Y, Cb and Cr.
const YCBCR: [[f32; 4]; 3] = [
    [0.299, 0.587, 0.114, 0.0],
    [-0.168_736, -0.331_264, 0.5, 128.0],
    [0.5, -0.418_688, -0.081_312, 128.0],
];

fn row_to_ycbcr<const C: usize>(row: &[f32], ys: &mut [u8], cbs: &mut [u8], crs: &mut [u8]) {
    for (((p, y), cb), cr) in row.chunks_exact(C).zip(ys).zip(cbs).zip(crs) {
        let [r, g, b] = on_white::<C>(p);
        (*y, *cb, *cr) = ycbcr(r, g, b);
    }
}

/// A pixel's colour, composited onto white when it has alpha.
#[inline(always)]
fn on_white<const C: usize>(p: &[f32]) -> [f32; 3] {
    if C == 4 {
        let a = p[3].clamp(0.0, 1.0);
        [0, 1, 2].map(|i| p[i] * a + (1.0 - a))
    } else {
        [p[0], p[1], p[2]]
    }
}

/// JFIF YCbCr bytes of an RGB colour in 0..=1 (clamped).
#[inline(always)]
fn ycbcr(r: f32, g: f32, b: f32) -> (u8, u8, u8) {
    let rgb = [r, g, b].map(|v| v.clamp(0.0, 1.0) * 255.0);
    // Rounded and clamped through i32 (a saturating f32 → u8 cast is slower).
    let [y, cb, cr] = YCBCR.map(|[wr, wg, wb, offset]| {
        let v = wr * rgb[0] + wg * rgb[1] + wb * rgb[2];
        ((v + (offset + 0.5)) as i32).clamp(0, 255) as u8
    });
    (y, cb, cr)
}

/// An EXIF block with one tag, the orientation "rotate 90° clockwise" (6), for tests of
/// turned photographs.
#[doc(hidden)]
pub fn exif_rotate_90() -> Vec<u8> {
    // Big-endian TIFF header, IFD0 at 8 with one entry: Orientation, SHORT, 1, value 6.
    [
        b"MM\0\x2a\0\0\0\x08\0\x01".as_slice(),
        &[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0],
        &[0, 0, 0, 0],
    ]
    .concat()
}

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

    /// The row thread fills the bands the encoder hands back, whatever the two threads'
    /// timing: it never holds more of them than [`encoder_memory`] counts.
    #[test]
    fn encoding_ahead_reuses_a_bounded_set_of_bands() {
        /// Grey rows; notes each distinct buffer it is asked to fill.
        struct Noting {
            buffers: std::collections::HashSet<usize>,
        }
        impl RowSource<u8> for Noting {
            fn width(&self) -> usize {
                64
            }
            fn height(&self) -> usize {
                band_rows(64, 3) * 300
            }
            fn channels(&self) -> usize {
                3
            }
            fn fill(&mut self, y0: usize, band: &mut Raster<u8>) -> Result<(), ImagingError> {
                self.buffers.insert(band.data.as_ptr() as usize);
                band.data.fill((y0 % 251) as u8);
                Ok(())
            }
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(crate::job_threads())
            .build()
            .unwrap();
        for format in [OutputFormat::Png, OutputFormat::Tiff, OutputFormat::Jpeg] {
            let mut source = Noting {
                buffers: Default::default(),
            };
            let out = Cursor::new(Vec::new());
            pool.install(|| {
                encode_rows_ahead(&pool, &mut source, format, &Metadata::default(), out)
            })
            .unwrap();
            let held = match format {
                OutputFormat::Jpeg => jpeg_strips_at_once(crate::job_threads()),
                _ => 1,
            };
            // Every band alive, the encoder's among them, comes back to the row thread.
            assert!(
                source.buffers.len() <= BANDS_AHEAD + 1 + held,
                "{format:?}: {} bands filled",
                source.buffers.len()
            );
        }
    }

    #[test]
    fn probe_reads_the_header() {
        let png = encode_test_png(20, 10);
        assert_eq!(
            probe(&png).unwrap(),
            ImageInfo {
                format: "png",
                width: 20,
                height: 10,
                decoded_bytes_per_pixel: 3,
                alpha: false,
                reduces: false,
                turned: false,
                progressive: false,
            }
        );
        assert!(matches!(probe(b"hello"), Err(ImagingError::Decode(_))));
        // A baseline JPEG that EXIF turns: shown 10×20, decodes reduced, not progressive.
        let meta = Metadata {
            icc: None,
            exif: Some(exif_rotate_90()),
            ..Default::default()
        };
        let raster = Raster::from_dynamic(&image::load_from_memory(&png).unwrap());
        let turned = probe(&encode_with_metadata(&raster, OutputFormat::Jpeg, &meta).unwrap());
        let turned = turned.unwrap();
        assert_eq!((turned.width, turned.height), (10, 20));
        assert!(turned.turned && turned.reduces && !turned.progressive);
        let mut progressive = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut progressive, 90);
        encoder.set_progressive(true);
        encoder
            .encode(&[128; 20 * 10 * 3], 20, 10, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let progressive = probe(&progressive).unwrap();
        assert!(progressive.progressive && !progressive.reduces && !progressive.turned);
    }

    /// Toward a small target, a JPEG decodes at the smallest of 1/8, 1/4, 1/2 of its size that
    /// leaves at least twice the target on both sides; grey stays grey; PNGs and targets that
    /// leave no room decode whole.
    #[test]
    fn jpegs_decode_reduced_toward_a_small_target() {
        let photo = |name: &str| {
            let path = format!(
                "{}/../../../shared/images/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            image::open(&path).unwrap()
        };
        let colour = encode(
            &Raster::from_dynamic(&photo("coffee.png")),
            OutputFormat::Jpeg,
        );
        let colour = colour.unwrap();
        // The size decoded, which the memory estimate's `decoded_size` must foresee.
        let size = |bytes: &[u8], target| {
            let info = probe(bytes).unwrap();
            let (img, _) = decode_image_toward(bytes, &info, target).unwrap();
            let foreseen = info.decoded_size(target);
            assert_eq!(foreseen, (img.width(), img.height()), "{target:?}");
            (img.width(), img.height(), img.color())
        };
        let rgb = image::ColorType::Rgb8;
        for (target, want) in [
            (None, (600, 400)),
            (Some((301, 10)), (600, 400)),
            (Some((150, 100)), (300, 200)),
            (Some((75, 50)), (150, 100)),
            (Some((70, 51)), (300, 200)),
            (Some((37, 25)), (75, 50)),
            (Some((1, 1)), (75, 50)),
        ] {
            assert_eq!(size(&colour, target), (want.0, want.1, rgb), "{target:?}");
        }
        let mut grey = Vec::new();
        photo("camera.png")
            .write_to(&mut Cursor::new(&mut grey), ImageFormat::Jpeg)
            .unwrap();
        let l8 = image::ColorType::L8;
        assert_eq!(size(&grey, Some((100, 100))), (256, 256, l8));
        let png = encode_test_png(600, 400);
        assert_eq!(size(&png, Some((75, 50))), (600, 400, rgb));
        assert!(probe(&colour).unwrap().reduces && !probe(&png).unwrap().reduces);
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
    fn a_tiff_with_strips_past_its_end_is_truncated() {
        let tiff = encode(
            &decode(&encode_test_png(40, 30)).unwrap(),
            OutputFormat::Tiff,
        )
        .unwrap();
        assert!(probe(&tiff).is_ok());
        for cut in [tiff.len() - 1, tiff.len() / 2, 200] {
            let err = probe(&tiff[..cut]).unwrap_err();
            assert!(
                matches!(err, ImagingError::Decode(_)),
                "cut at {cut}: {err:?}"
            );
        }
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

    /// The vector conversion gives the scalar one's bytes, out-of-range samples and a row
    /// that does not fill its last vector included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_ycbcr_matches_the_scalar_conversion() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let n = 8 * 37 + 5;
        let mut row: Vec<f32> = (0..3 * n)
            .map(|i| ((i * 7919) % 1013) as f32 / 900.0 - 0.05)
            .collect();
        // A pixel below black and one past white, in the vector part.
        row[9..12].copy_from_slice(&[-0.2, -0.1, -0.3]);
        row[30..33].copy_from_slice(&[1.2, 1.1, 1.3]);
        let convert = |vector: bool| {
            let mut planes = [vec![0u8; n], vec![0u8; n], vec![0u8; n]];
            let [ys, cbs, crs] = &mut planes;
            if vector {
                // SAFETY: the CPU has AVX2, checked above.
                unsafe { rgb_row_to_ycbcr_avx2(&row, ys, cbs, crs) };
            } else {
                row_to_ycbcr::<3>(&row, ys, cbs, crs);
            }
            planes
        };
        let (vector, scalar) = (convert(true), convert(false));
        assert_eq!((scalar[0][3], scalar[0][10]), (0, 255));
        assert_eq!(vector, scalar);
    }

    /// The 8-bit vector conversion gives the scalar path's bytes to within one level (the
    /// scalar path goes through 0..=1 and back), with a row that does not fill its last vector.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_ycbcr_of_bytes_matches_the_scalar_conversion() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let n = 8 * 37 + 5;
        let row: Vec<u8> = (0..3 * n).map(|i| ((i * 7919) % 256) as u8).collect();
        let convert = |vector: bool| {
            let mut planes = [vec![0u8; n], vec![0u8; n], vec![0u8; n]];
            let [ys, cbs, crs] = &mut planes;
            if vector {
                // SAFETY: the CPU has AVX2, checked above.
                unsafe { rgb8_row_to_ycbcr_avx2(&row, ys, cbs, crs) };
            } else {
                bytes_to_ycbcr(&row, 3, ys, cbs, crs);
            }
            planes
        };
        let (vector, scalar) = (convert(true), convert(false));
        let samples = || vector.iter().flatten().zip(scalar.iter().flatten());
        let worst = samples().map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        let differ = samples().filter(|(a, b)| a != b).count();
        assert!(
            worst <= 1 && differ * 100 <= 3 * n,
            "worst {worst}, {differ} of {}",
            3 * n
        );
    }

    /// Strips encoded apart and joined by restart markers decode to exactly the pixels of the
    /// image encoded whole, with rows past the last full strip and columns past the last MCU,
    /// and the restart markers cycling through all eight.
    #[test]
    fn jpeg_strips_decode_as_the_image_encoded_whole() {
        let (w, h) = (45, 11 * 128 + 7);
        assert_eq!(band_rows(w, 3), 128);
        let mut raster = Raster::new(w, h, 3);
        for (i, v) in raster.data.iter_mut().enumerate() {
            let (x, y, c) = ((i / 3) % w, i / 3 / w, i % 3);
            *v = 0.5 + 0.4 * ((x as f32 * 0.1 + c as f32).sin() * (y as f32 * 0.05).cos());
        }
        let striped = encode(&raster, OutputFormat::Jpeg).unwrap();
        let mut one = jpeg::Strips::new(
            Vec::new(),
            w,
            h,
            h.next_multiple_of(16),
            &Metadata::default(),
        )
        .unwrap();
        one.push(&encode_jpeg_strip(&raster, &mut Default::default()))
            .unwrap();
        let whole = one.finish().unwrap();
        let (_, sos, len) = jpeg_segments(&striped).last().unwrap();
        let restarts: Vec<u8> = striped[sos + 2 + len..]
            .windows(2)
            .filter(|p| p[0] == 0xFF && (0xD0..=0xD7).contains(&p[1]))
            .map(|p| p[1] - 0xD0)
            .collect();
        let expected: Vec<u8> = (0..h.div_ceil(128) - 1).map(|k| (k % 8) as u8).collect();
        assert_eq!(restarts, expected);
        assert_eq!(probe(&striped).unwrap().height, h as u32);
        let (a, b) = (decode(&striped).unwrap(), decode(&whole).unwrap());
        assert!(a.data == b.data, "the strips decode differently");
        let error = a
            .data
            .iter()
            .zip(&raster.data)
            .map(|(x, y)| (x - y).abs())
            .sum::<f32>()
            / raster.data.len() as f32;
        assert!(error < 0.01, "mean error {error}");
    }

    /// Columns alternating red and blue: 4:2:0 keeps one chroma sample per 2×2 pixels, which
    /// must be their mean (libjpeg's way), so the image's mean colour survives. Taking the
    /// top-left pixel instead would paint every blue column red.
    #[test]
    fn jpeg_chroma_is_the_mean_of_each_block() {
        let (w, h) = (64, 32);
        let mut raster = Raster::new(w, h, 3);
        for (i, p) in raster.data.chunks_exact_mut(3).enumerate() {
            p[if i % 2 == 0 { 0 } else { 2 }] = 1.0;
        }
        let back = decode(&encode(&raster, OutputFormat::Jpeg).unwrap()).unwrap();
        let mean = |c: usize| back.data.iter().skip(c).step_by(3).sum::<f32>() / (w * h) as f32;
        let (red, blue) = (mean(0), mean(2));
        assert!(
            (red - 0.5).abs() < 0.1 && (blue - 0.5).abs() < 0.1,
            "mean red {red}, mean blue {blue}: expected about 0.5 each"
        );
    }
}
