//! lucid's baseline JPEG encoder: 4:2:0 with each chroma sample the mean of its 2×2 pixels
//! (kept in floating point, not rounded), the Annex K quantisation tables scaled by quality as
//! libjpeg scales them, libjpeg's floating-point AAN DCT, and the Annex K Huffman tables.
//!
//! An image is coded in strips apart (on as many threads as there are) and joined by restart
//! markers ([`Strips`]): a restart resets everything the coded data depends on from before it
//! (the DC predictions; each strip starts byte-aligned), so strips coded on their own decode as
//! one image, identical to coding it whole.
//!
//! lucid has its own rather than jpeg-encoder's because the encoder was over half the time of a
//! ×2 upscale, most of it in that crate's scalar chroma averaging and block gathering and its
//! coefficient-by-coefficient AC coding. Here the DCT and quantisation run on whole vectors
//! (AVX2 where the CPU has it) and the AC coder visits only the non-zero coefficients.

use std::io::Write;
use std::sync::LazyLock;

use crate::ImagingError;
use crate::codec::Metadata;
use crate::raster::{Raster, Sample};

/// Quality of every JPEG lucid writes (libjpeg's scale).
pub const JPEG_QUALITY: u8 = 92;

/// Natural (row-major) index of each coefficient in zigzag order.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Where each coefficient of zigzag order sits in the transposed layout [`dct`] leaves
/// (coefficient (u, v) at v × 8 + u), and the inverse.
const LAYOUT_OF_ZIGZAG: [usize; 64] = {
    let mut table = [0; 64];
    let mut k = 0;
    while k < 64 {
        table[k] = ZIGZAG[k] % 8 * 8 + ZIGZAG[k] / 8;
        k += 1;
    }
    table
};
const ZIGZAG_OF_LAYOUT: [u32; 64] = {
    let mut table = [0; 64];
    let mut k = 0;
    while k < 64 {
        table[LAYOUT_OF_ZIGZAG[k]] = k as u32;
        k += 1;
    }
    table
};

/// Annex K.1's luminance and chrominance quantisation tables, natural order.
const QUANT: [[u16; 64]; 2] = [
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
        56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
        104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ],
    [
        17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99,
        99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    ],
];

/// A Huffman table as DHT writes it: how many codes of each length 1–16, then the symbols.
struct HuffmanSpec {
    counts: [u8; 16],
    symbols: &'static [u8],
}

/// Annex K.3's tables: luminance DC, luminance AC, chrominance DC, chrominance AC.
const HUFFMAN: [HuffmanSpec; 4] = [
    HuffmanSpec {
        counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    },
    HuffmanSpec {
        counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D],
        symbols: &[
            0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51,
            0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1,
            0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18,
            0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
            0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57,
            0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75,
            0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92,
            0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
            0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
            0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8,
            0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2,
            0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
        ],
    },
    HuffmanSpec {
        counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    },
    HuffmanSpec {
        counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
        symbols: &[
            0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
            0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09,
            0x23, 0x33, 0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25,
            0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38,
            0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56,
            0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74,
            0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
            0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
            0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA,
            0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6,
            0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2,
            0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
        ],
    },
];

/// A Huffman table as the coder uses it: each symbol's code and its length in bits.
struct Codes {
    code: [u16; 256],
    len: [u8; 256],
}

impl Codes {
    /// The canonical codes of Annex C: shortest first, consecutive within a length.
    fn new(spec: &HuffmanSpec) -> Self {
        let mut codes = Codes {
            code: [0; 256],
            len: [0; 256],
        };
        let (mut code, mut k) = (0u16, 0);
        for (len, &count) in (1..=16).zip(&spec.counts) {
            for _ in 0..count {
                let symbol = spec.symbols[k] as usize;
                codes.code[symbol] = code;
                codes.len[symbol] = len;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        codes
    }
}

/// The quantisers and codes of one quality.
struct Tables {
    /// Luminance and chrominance steps, natural order.
    steps: [[u8; 64]; 2],
    /// What turns each output of [`dct`] into its quantised coefficient: 1 / (step × the AAN
    /// scale of its row and column × 8), laid out as `dct` leaves its outputs (transposed).
    scales: [[f32; 64]; 2],
    /// Luminance DC, luminance AC, chrominance DC, chrominance AC.
    codes: [Codes; 4],
}

impl Tables {
    fn new(quality: u8) -> Self {
        let quality = quality.clamp(1, 100) as u32;
        let percent = if quality < 50 {
            5000 / quality
        } else {
            200 - 2 * quality
        };
        let steps =
            QUANT.map(|table| table.map(|q| ((q as u32 * percent + 50) / 100).clamp(1, 255) as u8));
        // libjpeg's aanscalefactor: 1 and cos(kπ/16)·√2.
        let aan: [f64; 8] = std::array::from_fn(|k| {
            if k == 0 {
                1.0
            } else {
                (k as f64 * std::f64::consts::PI / 16.0).cos() * std::f64::consts::SQRT_2
            }
        });
        let scales = steps.map(|steps| {
            std::array::from_fn(|i| {
                // Position i of the transposed output holds coefficient (row i % 8, column i / 8).
                let (u, v) = (i % 8, i / 8);
                (1.0 / (steps[u * 8 + v] as f64 * aan[u] * aan[v] * 8.0)) as f32
            })
        });
        Tables {
            steps,
            scales,
            codes: [0, 1, 2, 3].map(|i| Codes::new(&HUFFMAN[i])),
        }
    }
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| Tables::new(JPEG_QUALITY));

/// One JPEG written from strips coded apart: the headers (with a restart interval of one
/// strip), then every strip's coded data, a restart marker between each two.
pub struct Strips<W> {
    out: W,
    strips: usize,
    written: usize,
}

impl<W: Write> Strips<W> {
    /// Writes the headers of a `width`×`height` image coded in strips of `rows` rows (a
    /// multiple of 16, the height of a 4:2:0 MCU), with the ICC profile and EXIF block.
    pub fn new(
        mut out: W,
        width: usize,
        height: usize,
        rows: usize,
        meta: &Metadata,
    ) -> Result<Self, ImagingError> {
        if width == 0 || height == 0 || width > u16::MAX as usize || height > u16::MAX as usize {
            return Err(ImagingError::Encode(format!(
                "JPEG holds 1 to 65535 pixels a side, not {width}x{height}"
            )));
        }
        let strips = height.div_ceil(rows);
        // Restart interval, in MCUs (16×16 pixels): one strip. The encoder's bands (at most
        // 128 rows of at most 65535 pixels: 4096 × 8 MCUs) are within its 16 bits.
        let mcus = width.div_ceil(16) * rows / 16;
        if !rows.is_multiple_of(16) || (strips > 1 && mcus > u16::MAX as usize) {
            return Err(ImagingError::Encode(format!(
                "JPEG strips of {rows} rows at {width} pixels are not whole restart intervals"
            )));
        }
        let interval = (strips > 1).then_some(mcus as u16);
        let header = header(width as u16, height as u16, interval, meta);
        out.write_all(&header).map_err(io_error)?;
        Ok(Strips {
            out,
            strips,
            written: 0,
        })
    }

    /// Appends the next strip's data, as [`encode_strip`] codes it.
    pub fn push(&mut self, data: &[u8]) -> Result<(), ImagingError> {
        if self.written > 0 {
            let rst = 0xD0 + ((self.written - 1) % 8) as u8;
            self.out.write_all(&[0xFF, rst]).map_err(io_error)?;
        }
        self.out.write_all(data).map_err(io_error)?;
        self.written += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<W, ImagingError> {
        if self.written != self.strips {
            return Err(ImagingError::Encode(format!(
                "{} JPEG strips written of {}",
                self.written, self.strips
            )));
        }
        self.out.write_all(&[0xFF, 0xD9]).map_err(io_error)?;
        Ok(self.out)
    }
}

fn io_error(e: std::io::Error) -> ImagingError {
    ImagingError::Encode(e.to_string())
}

/// SOI, JFIF, EXIF, ICC profile, quantisation and Huffman tables, frame, restart interval and
/// scan headers: everything before the coded data.
fn header(width: u16, height: u16, restart_interval: Option<u16>, meta: &Metadata) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut segment = |marker: u8, parts: &[&[u8]]| {
        let len = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        for part in parts {
            out.extend_from_slice(part);
        }
    };
    // JFIF 1.02, no density unit, aspect ratio 1:1, no thumbnail.
    segment(0xE0, &[b"JFIF\0", &[1, 2, 0, 0, 1, 0, 1, 0, 0]]);
    // An APP1 segment holds at most 64 KiB; a larger EXIF block is left out.
    if let Some(exif) = meta.exif.as_ref().filter(|e| e.len() <= 65_000) {
        segment(0xE1, &[b"Exif\0\0", exif]);
    }
    if let Some(icc) = &meta.icc {
        // ICC.1 B.4: the profile in numbered APP2 chunks (at most 255 of them).
        const CHUNK: usize = 65_535 - 2 - 14;
        let chunks = icc.len().div_ceil(CHUNK);
        if chunks <= 255 {
            for (i, chunk) in icc.chunks(CHUNK).enumerate() {
                segment(
                    0xE2,
                    &[b"ICC_PROFILE\0", &[i as u8 + 1, chunks as u8], chunk],
                );
            }
        }
    }
    let tables = &*TABLES;
    let dqt: Vec<u8> = (0..2)
        .flat_map(|t| std::iter::once(t as u8).chain(ZIGZAG.map(|n| tables.steps[t][n])))
        .collect();
    segment(0xDB, &[&dqt]);
    let [w, h] = [width.to_be_bytes(), height.to_be_bytes()];
    // 8-bit samples; Y at 2×2, Cb and Cr at 1×1 with the chrominance table.
    segment(
        0xC0,
        &[&[
            8, h[0], h[1], w[0], w[1], 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
        ]],
    );
    let dht: Vec<u8> = HUFFMAN
        .iter()
        .zip([0x00, 0x10, 0x01, 0x11])
        .flat_map(|(spec, class_id)| {
            std::iter::once(class_id)
                .chain(spec.counts)
                .chain(spec.symbols.iter().copied())
        })
        .collect();
    segment(0xC4, &[&dht]);
    if let Some(interval) = restart_interval {
        segment(0xDD, &[&interval.to_be_bytes()]);
    }
    // One interleaved scan of all three: Y with tables 0, Cb and Cr with tables 1; the whole
    // spectrum, no successive approximation.
    segment(0xDA, &[&[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]]);
    out
}

/// A strip's Y, Cb and Cr at full resolution, padded to whole MCUs (16×16) by repeating the
/// last column and the last row, and the coder's scratch. Kept from strip to strip so the
/// memory is reused.
#[derive(Default)]
pub struct Planes {
    samples: [Vec<u8>; 3],
    /// Samples a row, and rows: multiples of 16.
    stride: usize,
    rows: usize,
    /// An MCU row as samples less 128: luma whole, chroma averaged 2×2, and a row of vertical
    /// chroma sums.
    luma: Vec<f32>,
    chroma: [Vec<f32>; 2],
    pairs: Vec<f32>,
}

impl Planes {
    /// Sizes the planes for `band` and fills them: `convert` writes a row's Y, Cb and Cr
    /// from its samples (rows in parallel), then the padding repeats the edges.
    pub fn fill<T: Sample>(
        &mut self,
        band: &Raster<T>,
        convert: impl Fn(&[T], &mut [u8], &mut [u8], &mut [u8]) + Sync,
    ) {
        use rayon::prelude::*;
        let (w, h, c) = (band.width, band.height, band.channels);
        self.stride = w.next_multiple_of(16);
        self.rows = h.next_multiple_of(16);
        let stride = self.stride;
        for plane in &mut self.samples {
            plane.resize(stride * self.rows, 0);
        }
        let [ys, cbs, crs] = &mut self.samples;
        band.data
            .par_chunks_exact(w * c)
            .zip(ys.par_chunks_exact_mut(stride))
            .zip(cbs.par_chunks_exact_mut(stride))
            .zip(crs.par_chunks_exact_mut(stride))
            .for_each(|(((row, ys), cbs), crs)| {
                convert(row, &mut ys[..w], &mut cbs[..w], &mut crs[..w]);
                for plane in [ys, cbs, crs] {
                    let last = plane[w - 1];
                    plane[w..].fill(last);
                }
            });
        for plane in &mut self.samples {
            for r in h..self.rows {
                plane.copy_within((h - 1) * stride..h * stride, r * stride);
            }
        }
    }
}

/// Codes one strip (the last may have any height; the others a multiple of 16), appending
/// the entropy-coded data, padded to a whole byte, to `out`.
pub fn encode_strip(planes: &mut Planes, out: &mut Vec<u8>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { encode_strip_avx2(planes, out) };
    }
    encode_strip_with(planes, out)
}

/// [`encode_strip_with`] compiled for AVX2: the DCT's and the quantiser's loops over eight
/// lanes become single vector operations.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn encode_strip_avx2(planes: &mut Planes, out: &mut Vec<u8>) {
    encode_strip_with(planes, out)
}

#[inline(always)]
fn encode_strip_with(planes: &mut Planes, out: &mut Vec<u8>) {
    let tables = &*TABLES;
    let stride = planes.stride;
    // The MCU rows are converted row by row so the conversions run on whole vectors, then
    // read a block at a time.
    let Planes {
        samples,
        rows,
        luma,
        chroma,
        pairs,
        ..
    } = planes;
    luma.resize(16 * stride, 0.0);
    for half in chroma.iter_mut() {
        half.resize(8 * stride / 2, 0.0);
    }
    pairs.resize(stride, 0.0);
    let mut bits = BitWriter::new(out);
    let mut prev_dc = [0i32; 3];
    let mut block = [[0f32; 8]; 8];
    for top in (0..*rows).step_by(16) {
        let ys = &samples[0][top * stride..(top + 16) * stride];
        for (v, &y) in luma.iter_mut().zip(ys) {
            *v = y as f32 - 128.0;
        }
        for (full, half) in samples[1..].iter().zip(chroma.iter_mut()) {
            for (r, out) in half.chunks_exact_mut(stride / 2).enumerate() {
                let a = &full[(top + 2 * r) * stride..][..stride];
                let b = &full[(top + 2 * r + 1) * stride..][..stride];
                for ((sum, &a), &b) in pairs.iter_mut().zip(a).zip(b) {
                    *sum = a as f32 + b as f32;
                }
                for (x, v) in out.iter_mut().enumerate() {
                    *v = (pairs[2 * x] + pairs[2 * x + 1]) * 0.25 - 128.0;
                }
            }
        }
        for mcu in 0..stride / 16 {
            for b in 0..4 {
                let (x0, y0) = (mcu * 16 + (b & 1) * 8, (b >> 1) * 8);
                for (r, row) in block.iter_mut().enumerate() {
                    row.copy_from_slice(&luma[(y0 + r) * stride + x0..][..8]);
                }
                code_block(&mut bits, &mut block, &mut prev_dc[0], tables, 0);
            }
            for (c, half) in chroma.iter().enumerate() {
                for (r, row) in block.iter_mut().enumerate() {
                    row.copy_from_slice(&half[r * stride / 2 + mcu * 8..][..8]);
                }
                code_block(&mut bits, &mut block, &mut prev_dc[1 + c], tables, 1);
            }
        }
    }
    bits.finish();
}

/// Transforms, quantises and codes one block (of samples less 128) with table set `t`
/// (0 luminance, 1 chrominance).
#[inline(always)]
fn code_block(
    bits: &mut BitWriter,
    block: &mut [[f32; 8]; 8],
    prev_dc: &mut i32,
    tables: &Tables,
    t: usize,
) {
    dct(block);
    let scales = &tables.scales[t];
    let mut quantised = [0i32; 64];
    for (i, q) in quantised.iter_mut().enumerate() {
        // Rounded to nearest as libjpeg's float path rounds (the offset keeps it positive for
        // the truncating conversion); baseline coefficients stay within ±1023.
        // Clamped first as floats (max and min also turn a NaN into a bound), so the
        // conversion needs no saturation and stays one vector instruction.
        #[expect(clippy::manual_clamp, reason = "clamp would keep a NaN")]
        let v = (block[i / 8][i % 8] * scales[i]).max(-1023.0).min(1023.0);
        // SAFETY: `v + 16384.5` is finite and within 16384.5 ± 1023, an i32 whatever it is.
        *q = unsafe { (v + 16384.5).to_int_unchecked::<i32>() } - 16384;
    }
    let (dc, ac) = (&tables.codes[2 * t], &tables.codes[2 * t + 1]);
    let diff = quantised[0] - *prev_dc;
    *prev_dc = quantised[0];
    let (size, value) = magnitude(diff);
    bits.put(
        (dc.code[size] as u32) << size | value,
        dc.len[size] as u32 + size as u32,
    );
    // The non-zero AC coefficients, found in the layout `dct` leaves and then set at their
    // zigzag positions: most blocks have few, so only those are reordered.
    let mut in_layout = nonzero(&quantised) & !1;
    let mut in_zigzag = 0u64;
    while in_layout != 0 {
        in_zigzag |= 1 << ZIGZAG_OF_LAYOUT[in_layout.trailing_zeros() as usize];
        in_layout &= in_layout - 1;
    }
    let mut last = 0;
    while in_zigzag != 0 {
        let k = in_zigzag.trailing_zeros();
        let mut run = k - last - 1;
        while run > 15 {
            // ZRL: sixteen zeros.
            bits.put(ac.code[0xF0] as u32, ac.len[0xF0] as u32);
            run -= 16;
        }
        let (size, value) = magnitude(quantised[LAYOUT_OF_ZIGZAG[k as usize]]);
        let symbol = (run as usize) << 4 | size;
        bits.put(
            (ac.code[symbol] as u32) << size | value,
            ac.len[symbol] as u32 + size as u32,
        );
        last = k;
        in_zigzag &= in_zigzag - 1;
    }
    if last != 63 {
        // EOB: zeros to the end of the block.
        bits.put(ac.code[0] as u32, ac.len[0] as u32);
    }
}

/// Bit i set where coefficient i is not zero.
#[inline(always)]
fn nonzero(quantised: &[i32; 64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut zero = 0u64;
        for (i, four) in quantised.chunks_exact(4).enumerate() {
            // SAFETY: SSE2 is part of x86_64; `four` holds four i32s, loaded unaligned.
            let mask = unsafe {
                let v = _mm_loadu_si128(four.as_ptr().cast());
                _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(v, _mm_setzero_si128())))
            };
            zero |= (mask as u64) << (4 * i);
        }
        !zero
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut mask = 0u64;
        for (i, &q) in quantised.iter().enumerate() {
            mask |= ((q != 0) as u64) << i;
        }
        mask
    }
}

/// A coefficient's size category and the bits that follow its code: the value itself when
/// positive, its one's complement when negative.
#[inline(always)]
fn magnitude(v: i32) -> (usize, u32) {
    let size = 32 - v.unsigned_abs().leading_zeros();
    let value = (if v < 0 { v - 1 } else { v }) as u32 & ((1u32 << size) - 1);
    (size as usize, value)
}

/// libjpeg's floating-point AAN forward DCT (jfdctflt.c), scaled as its quantiser expects.
/// Each pass transforms the eight columns at once (a loop over lanes the compiler turns into
/// vector operations), then the block is transposed for the second: the output is left
/// transposed, coefficient (u, v) at `block[v][u]`.
#[inline(always)]
fn dct(block: &mut [[f32; 8]; 8]) {
    for pass in 0..2 {
        let d = *block;
        for i in 0..8 {
            let tmp0 = d[0][i] + d[7][i];
            let tmp7 = d[0][i] - d[7][i];
            let tmp1 = d[1][i] + d[6][i];
            let tmp6 = d[1][i] - d[6][i];
            let tmp2 = d[2][i] + d[5][i];
            let tmp5 = d[2][i] - d[5][i];
            let tmp3 = d[3][i] + d[4][i];
            let tmp4 = d[3][i] - d[4][i];
            // Even part.
            let tmp10 = tmp0 + tmp3;
            let tmp13 = tmp0 - tmp3;
            let tmp11 = tmp1 + tmp2;
            let tmp12 = tmp1 - tmp2;
            block[0][i] = tmp10 + tmp11;
            block[4][i] = tmp10 - tmp11;
            let z1 = (tmp12 + tmp13) * 0.707_106_77;
            block[2][i] = tmp13 + z1;
            block[6][i] = tmp13 - z1;
            // Odd part.
            let tmp10 = tmp4 + tmp5;
            let tmp11 = tmp5 + tmp6;
            let tmp12 = tmp6 + tmp7;
            let z5 = (tmp10 - tmp12) * 0.382_683_43;
            let z2 = 0.541_196_1 * tmp10 + z5;
            let z4 = 1.306_563 * tmp12 + z5;
            let z3 = tmp11 * 0.707_106_77;
            let z11 = tmp7 + z3;
            let z13 = tmp7 - z3;
            block[5][i] = z13 + z2;
            block[3][i] = z13 - z2;
            block[1][i] = z11 + z4;
            block[7][i] = z11 - z4;
        }
        if pass == 0 {
            let d = *block;
            for (r, row) in block.iter_mut().enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = d[c][r];
                }
            }
        }
    }
}

/// Bits packed most significant first into 64 bits and written out 32 at a time, a zero
/// byte stuffed after each 0xFF as the format requires.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    /// Bits in `acc` not yet written (its low ones).
    pending: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            pending: 0,
        }
    }

    /// Appends the low `len` bits of `bits`: at most 27 (a code of 16 and a value of 11),
    /// so that with fewer than 32 pending they fit the 64.
    #[inline(always)]
    fn put(&mut self, bits: u32, len: u32) {
        self.acc = (self.acc << len) | bits as u64;
        self.pending += len;
        if self.pending >= 32 {
            self.pending -= 32;
            let word = (self.acc >> self.pending) as u32;
            // Whether any byte is 0xFF: a zero byte in its complement.
            let inverse = !word;
            if inverse.wrapping_sub(0x0101_0101) & !inverse & 0x8080_8080 == 0 {
                self.out.extend_from_slice(&word.to_be_bytes());
            } else {
                for byte in word.to_be_bytes() {
                    self.byte(byte);
                }
            }
        }
    }

    #[inline(always)]
    fn byte(&mut self, byte: u8) {
        self.out.push(byte);
        if byte == 0xFF {
            self.out.push(0);
        }
    }

    /// Pads the last byte with one bits (as the format asks) and writes what is left.
    fn finish(mut self) {
        let pad = (8 - self.pending % 8) % 8;
        self.put((1 << pad) - 1, pad);
        while self.pending >= 8 {
            self.pending -= 8;
            self.byte((self.acc >> self.pending) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    /// The DCT and the quantiser's scales together give the transform's definition divided by
    /// the step, for every coefficient: the AAN factors and the transposed layout line up.
    #[test]
    fn dct_and_scales_give_the_coefficients_over_their_steps() {
        let samples: [[f32; 8]; 8] = std::array::from_fn(|y| {
            std::array::from_fn(|x| ((x * 37 + y * 91 + x * y * 13) % 255) as f32 - 128.0)
        });
        let mut block = samples;
        dct(&mut block);
        let tables = Tables::new(JPEG_QUALITY);
        let c = |k: usize| if k == 0 { 0.5f64.sqrt() } else { 1.0 };
        for t in 0..2 {
            for u in 0..8 {
                for v in 0..8 {
                    let mut sum = 0.0;
                    for (y, row) in samples.iter().enumerate() {
                        for (x, &s) in row.iter().enumerate() {
                            sum += s as f64
                                * ((2 * y + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0)
                                    .cos()
                                * ((2 * x + 1) as f64 * v as f64 * std::f64::consts::PI / 16.0)
                                    .cos();
                        }
                    }
                    let expected = 0.25 * c(u) * c(v) * sum / tables.steps[t][u * 8 + v] as f64;
                    let got = (block[v][u] * tables.scales[t][v * 8 + u]) as f64;
                    assert!(
                        (got - expected).abs() < 1e-3 * expected.abs().max(1.0),
                        "table {t}, coefficient ({u}, {v}): {got} for {expected}"
                    );
                }
            }
        }
    }

    /// The quality-92 steps are libjpeg's: Annex K scaled by 16 % and rounded.
    #[test]
    fn steps_are_libjpegs_at_quality_92() {
        let tables = Tables::new(92);
        assert_eq!(tables.steps[0][..8], [3, 2, 2, 3, 4, 6, 8, 10]);
        assert_eq!(tables.steps[1][..8], [3, 3, 4, 8, 16, 16, 16, 16]);
    }

    /// A photograph coded and decoded (by zune-jpeg, through `image`) at every size that pads
    /// differently — one pixel, part MCUs across and down, several strips with a short last
    /// one — keeps its size and comes back within quality 92's error; the data never holds a
    /// 0xFF that is neither stuffed nor a restart marker.
    #[test]
    fn photographs_decode_at_every_padding() {
        let photo = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/images/coffee.png"
        ))
        .unwrap()
        .to_rgb8();
        for (w, h) in [(1, 1), (7, 5), (17, 9), (33, 40), (400, 300)] {
            let mut raster = Raster::<u8>::new(w, h, 3);
            for (y, row) in raster.data.chunks_exact_mut(w * 3).enumerate() {
                for (x, p) in row.chunks_exact_mut(3).enumerate() {
                    p.copy_from_slice(&photo.get_pixel(x as u32 + 100, y as u32 + 50).0);
                }
            }
            let rows = 16 * ((h / 3).div_ceil(16)).max(1);
            let mut strips = Strips::new(Vec::new(), w, h, rows, &Metadata::default()).unwrap();
            let mut band = Raster::<u8>::new(w, 0, 3);
            for y0 in (0..h).step_by(rows) {
                let n = rows.min(h - y0);
                band.set_height(n);
                band.data
                    .copy_from_slice(&raster.data[y0 * w * 3..(y0 + n) * w * 3]);
                let mut planes = Planes::default();
                <u8 as codec::Encodable>::to_ycbcr(&band, &mut planes);
                let mut data = Vec::new();
                encode_strip(&mut planes, &mut data);
                let loose_ff = data.windows(2).any(|p| p[0] == 0xFF && p[1] != 0);
                assert!(
                    !loose_ff && data.last() != Some(&0xFF),
                    "{w}x{h}: unstuffed 0xFF"
                );
                strips.push(&data).unwrap();
            }
            let bytes = strips.finish().unwrap();
            let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
            assert_eq!(back.dimensions(), (w as u32, h as u32));
            let psnr = crate::quality::psnr(back.as_raw(), &raster.data);
            // Measured 35.9 dB at 33×40 and over 36 at 400×300; a wrong transform, step or
            // padding gives under 25.
            let bar = if w * h > 1000 { 34.0 } else { 30.0 };
            assert!(psnr > bar, "{w}x{h}: PSNR {psnr:.1} dB");
        }
    }
}
