//! [`pipeline::peak_memory`] against the heap the pipeline really takes: every family of
//! operation, each path through enhance, RGB and RGBA input. The estimate must cover the
//! measured peak (workers reserve it before they run a job) without overstating it more than
//! 2.5 times (or jobs would wait for memory they never use). The slack is for what the estimate
//! counts at its most, which weighs most on these small images: every band the encoder may
//! hold, and each codec's largest buffers (a JPEG strip's coded bytes, the deflate state).
//! Inputs: baseline and progressive JPEG, a JPEG that EXIF turns, and RGBA PNG.
//!
//! The heap is counted by this binary's allocator, so its one test runs alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::ImageEncoder;
use lucid_core::geometry::Placement;
use lucid_core::request::Settings;
use lucid_core::{Endpoint, OutputFormat};
use lucid_imaging::pipeline::{Job, peak_memory, process_into};
use lucid_imaging::{Cancel, codec};

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = NOW.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Old and new blocks both exist while the contents move.
        grew(new_size);
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Takes the encoded output and keeps only its length: the worker writes it to a file.
struct Discard {
    at: u64,
    len: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.at += buf.len() as u64;
        self.len = self.len.max(self.at);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Discard {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.at = match pos {
            SeekFrom::Start(n) => n,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.at.saturating_add_signed(d),
        };
        Ok(self.at)
    }
}

/// A photograph-like test image: smooth gradients, texture and noise; the fourth channel,
/// where asked for, a ramp.
fn photo(width: u32, height: u32, channels: u32) -> Vec<u8> {
    let px = |x: u32, y: u32, c: u32| {
        if c == 3 {
            return (x * 255 / width) as u8;
        }
        let texture = ((x * 7 + y * 13 + c * 5).wrapping_mul(2_654_435_761) >> 27) as u8;
        ((x * 160 / width + y * 60 / height) as u8).wrapping_add(texture)
    };
    (0..height)
        .flat_map(|y| (0..width).flat_map(move |x| (0..channels).map(move |c| px(x, y, c))))
        .collect()
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(
            &photo(width, height, 3),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

fn progressive_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_progressive(true);
    let pixels = photo(width, height, 3);
    encoder
        .encode(
            &pixels,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
    out
}

/// A JPEG stored `height`×`width` that EXIF turns to `width`×`height`.
fn turned_jpeg(width: u32, height: u32) -> Vec<u8> {
    let stored = image::RgbImage::from_raw(height, width, photo(height, width, 3)).unwrap();
    let raster = lucid_imaging::raster::Raster::from_dynamic(&stored.into());
    let meta = codec::Metadata {
        icc: None,
        exif: Some(codec::exif_rotate_90()),
        ..Default::default()
    };
    codec::encode_with_metadata(&raster, OutputFormat::Jpeg, &meta).unwrap()
}

fn rgba_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            &photo(width, height, 4),
            width,
            height,
            image::ExtendedColorType::Rgba8,
        )
        .unwrap();
    out
}

/// A 16-bit RGB PNG (the float path: nothing runs on its bytes).
fn rgb16_png(width: u32, height: u32) -> Vec<u8> {
    let samples: Vec<u8> = photo(width, height, 3)
        .into_iter()
        .flat_map(|v| (u16::from(v) * 257).to_ne_bytes())
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&samples, width, height, image::ExtendedColorType::Rgb16)
        .unwrap();
    out
}

/// One job: its input, endpoint, model, settings, geometry and output format.
type Case<'a> = (
    &'a [u8],
    Endpoint,
    &'a str,
    &'a Settings,
    Placement,
    OutputFormat,
);

#[test]
fn the_estimate_covers_the_measured_peak_without_overstating_it() {
    let (w, h) = (640u32, 480u32);
    let rgb = &jpeg(w, h);
    let rgba = &rgba_png(w, h);
    let rgb16 = &rgb16_png(w, h);
    let progressive = &progressive_jpeg(w, h);
    let turned = &turned_jpeg(w, h);
    // Tall enough for the denoiser's strips to matter: the image, not its planes, is the peak.
    let tall = &jpeg(400, 4000);
    let detail = Settings::from_json(r#"{"original_detail":0.5}"#);
    let half = Settings::from_json(r#"{"strength":0.5}"#);
    let lanczos = Settings::from_json(r#"{"upscaler":"lanczos"}"#);
    // A plain resample, run on the decoded bytes.
    let plain = Settings::from_json(
        r#"{"upscaler":"lanczos","sharpen":0,"denoise":0,"fix_compression":0}"#,
    );
    let none = Settings::default();
    let resized =
        |width, height| Placement::compute(w, h, Some(width), Some(height), false).unwrap();
    let letterboxed = Placement::compute(w, h, Some(2000), Some(2000), false).unwrap();
    let same = Placement::identity(w, h);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (rgb, Endpoint::Denoise, "Normal", &none, same, OutputFormat::Jpeg),
        (tall, Endpoint::Denoise, "Strong", &none, Placement::identity(400, 4000), OutputFormat::Jpeg),
        (tall, Endpoint::DenoiseGen, "Denoise Max", &detail, Placement::identity(400, 4000), OutputFormat::Png),
        (rgb, Endpoint::Sharpen, "Standard", &none, same, OutputFormat::Jpeg),
        (rgb, Endpoint::Sharpen, "Lens Blur", &none, same, OutputFormat::Jpeg),
        (rgb, Endpoint::Sharpen, "Motion Blur", &none, same, OutputFormat::Png),
        (rgb, Endpoint::SharpenGen, "Super Focus V2", &none, same, OutputFormat::Jpeg),
        (rgb, Endpoint::Lighting, "Adjust V2", &none, same, OutputFormat::Jpeg),
        (rgb, Endpoint::Lighting, "Adjust", &half, same, OutputFormat::Png),
        (rgb16, Endpoint::Lighting, "Adjust", &none, same, OutputFormat::Png),
        (rgb16, Endpoint::Lighting, "Adjust", &half, same, OutputFormat::Tiff),
        (rgba, Endpoint::Lighting, "White Balance", &none, same, OutputFormat::Png),
        (rgb, Endpoint::Lighting, "White Balance", &half, same, OutputFormat::Jpeg),
        (rgb, Endpoint::Lighting, "Colorize", &none, same, OutputFormat::Tiff),
        (rgb, Endpoint::RestoreGen, "Dust-Scratch V2", &none, same, OutputFormat::Jpeg),
        (rgb, Endpoint::Matting, "RemoveBG", &none, same, OutputFormat::Png),
        (rgba, Endpoint::Matting, "Object", &none, same, OutputFormat::Png),
        (rgb, Endpoint::Enhance, "Standard V2", &none, resized(1280, 960), OutputFormat::Jpeg),
        (rgb, Endpoint::Enhance, "Standard V2", &none, resized(1920, 1440), OutputFormat::Png),
        (rgb, Endpoint::Enhance, "Low Resolution V2", &lanczos, resized(1920, 1440), OutputFormat::Jpeg),
        (rgb, Endpoint::Enhance, "CGI", &lanczos, letterboxed, OutputFormat::Tiff),
        (rgb, Endpoint::Enhance, "Standard V2", &none, resized(160, 120), OutputFormat::Jpeg),
        (rgb, Endpoint::EnhanceGen, "Redefine", &none, resized(1280, 960), OutputFormat::Jpeg),
        (rgba, Endpoint::Tool, "Transparency Upscale", &none, resized(1280, 960), OutputFormat::Png),
        (rgba, Endpoint::Tool, "Transparency Upscale", &lanczos, resized(1280, 960), OutputFormat::Png),
        (rgb, Endpoint::Enhance, "Standard V2", &plain, resized(1920, 1440), OutputFormat::Jpeg),
        (rgb, Endpoint::Enhance, "Standard V2", &plain, resized(160, 120), OutputFormat::Png),
        (rgba, Endpoint::Enhance, "Standard V2", &plain, letterboxed, OutputFormat::Jpeg),
        (rgba, Endpoint::Tool, "Transparency Upscale", &plain, resized(1280, 960), OutputFormat::Tiff),
        (progressive, Endpoint::Enhance, "Standard V2", &plain, resized(160, 120), OutputFormat::Png),
        (progressive, Endpoint::Lighting, "White Balance", &none, same, OutputFormat::Jpeg),
        (turned, Endpoint::Enhance, "Standard V2", &plain, resized(160, 120), OutputFormat::Png),
        (turned, Endpoint::Sharpen, "Standard", &none, same, OutputFormat::Jpeg),
    ];
    let mut report = Vec::new();
    for &(bytes, endpoint, model, settings, placement, format) in cases {
        let info = codec::probe(bytes).unwrap();
        let kind = match (info.format, info.progressive, info.turned, info.alpha) {
            (_, true, ..) => "progressive JPEG",
            (_, _, true, _) => "turned JPEG",
            ("jpeg", ..) => "JPEG",
            (.., true) => "RGBA PNG",
            _ => "16-bit RGB PNG",
        };
        let job = Job {
            endpoint,
            model,
            settings,
            placement,
            format,
        };
        let estimate = peak_memory(&job, &info);
        let before = NOW.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let out = process_into(
            bytes,
            &job,
            &Cancel::new(),
            &|_| {},
            Discard { at: 0, len: 0 },
        );
        assert!(out.is_ok(), "{endpoint:?} {model}: {:?}", out.err());
        let peak = (PEAK.load(Ordering::Relaxed) - before) as u64;
        let line = format!(
            "{endpoint:?} {model} {}x{} from {kind}: peak {:.1} MB, estimate {:.1} MB ({:.2}x)",
            placement.width,
            placement.height,
            peak as f64 / 1e6,
            estimate as f64 / 1e6,
            estimate as f64 / peak as f64
        );
        println!("{line}");
        report.push((peak, estimate, line));
    }
    for (peak, estimate, line) in &report {
        assert!(estimate >= peak && *estimate * 2 <= 5 * peak, "{line}");
    }
}
