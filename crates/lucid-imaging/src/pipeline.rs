//! One job, start to finish: decode → the model's operation → encode, as named steps. Progress
//! is reported as a fraction of the whole; the cancel token is checked between steps and
//! between the row bands inside each step.

use lucid_core::geometry::Placement;
use lucid_core::request::Settings;
use lucid_core::{Endpoint, OutputFormat};

use std::io::{Cursor, Seek, Write};

use crate::codec::WholeRaster;
use crate::raster::Raster;
use crate::{Cancel, Ctx, ImagingError, Progress, codec, ops};

/// What to do to one image.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub endpoint: Endpoint,
    pub model: &'a str,
    pub settings: &'a Settings,
    pub placement: Placement,
    pub format: OutputFormat,
}

/// Shares of the job's progress: decode up to 10 %, the operation up to 90 %, encode the rest.
const DECODED: f32 = 0.1;
const OPERATED: f32 = 0.9;

/// Runs the job on encoded input bytes and answers the encoded output.
pub fn process(
    input: &[u8],
    job: &Job,
    cancel: &Cancel,
    progress: Progress,
) -> Result<Vec<u8>, ImagingError> {
    process_into(input, job, cancel, progress, Cursor::new(Vec::new())).map(Cursor::into_inner)
}

/// [`process`], writing the encoded output to `out`. Operations that stream their rows
/// (resizing enhance models) are encoded as they are computed, so the output is never held
/// whole as pixels. The job computes on threads of its own (see [`crate::on_job_pool`]).
pub fn process_into<W: Write + Seek + Send>(
    input: &[u8],
    job: &Job,
    cancel: &Cancel,
    progress: Progress,
    out: W,
) -> Result<W, ImagingError> {
    cancel.check()?;
    crate::on_job_pool(|pool| {
        let info = codec::probe(input)?;
        let plain = only_resamples(job, (info.width as usize, info.height as usize));
        // A plain downscale of a JPEG starts from a reduced decode (the placement maps the
        // whole source onto the scaled size, whatever the source's size).
        let target = resample_target(job, plain);
        let (decoded, mut metadata) = codec::decode_image_toward(input, &info, target)?;
        metadata.grey &= !ops::colours_grey(job.endpoint, job.model);
        progress(DECODED);
        cancel.check()?;
        let ctx = Ctx::new(cancel, progress, (DECODED, OPERATED));
        let operate = |img: Raster| {
            ops::run(
                &ctx,
                job.endpoint,
                job.model,
                job.settings,
                img,
                &job.placement,
            )
        };
        // 8-bit decodes are offered to the operations that run on bytes; the rest widen (the
        // decoded image is dropped as soon as the working raster is made of it).
        let result = match Raster::from_dynamic8(decoded) {
            Ok(bytes) if plain => ops::enhance::resample_bytes(&ctx, bytes, job.placement),
            Ok(bytes) => {
                match ops::run_on_bytes(&ctx, job.endpoint, job.model, job.settings, bytes) {
                    Ok(result) => result,
                    Err(bytes) => operate(bytes.widened())?,
                }
            }
            Err(decoded) => {
                let working = Raster::from_dynamic(&decoded);
                drop(decoded);
                operate(working)?
            }
        };
        let out = match result {
            ops::Output::Raster(raster) => {
                cancel.check()?;
                progress(OPERATED);
                codec::encode_rows(&mut WholeRaster(&raster), job.format, &metadata, out)?
            }
            ops::Output::Rows(mut rows) => {
                codec::encode_rows_ahead(pool, &mut *rows, job.format, &metadata, out)?
            }
            ops::Output::ByteRows(mut rows) => {
                codec::encode_rows_ahead(pool, &mut *rows, job.format, &metadata, out)?
            }
        };
        progress(1.0);
        Ok(out)
    })
}

/// Whether the job is a plain resample, run on the decoded bytes when they are 8-bit.
fn only_resamples(job: &Job, size: (usize, usize)) -> bool {
    matches!(job.endpoint, Endpoint::Enhance | Endpoint::Tool)
        && ops::enhance::only_resamples(job.endpoint, job.model, job.settings, size, &job.placement)
}

/// Where a plain resample takes the whole input: its scaled size (see
/// [`codec::decode_image_toward`]).
fn resample_target(job: &Job, plain: bool) -> Option<(u32, u32)> {
    plain.then_some((job.placement.scaled_width, job.placement.scaled_height))
}

/// The most heap the job's pipeline holds at once, in bytes, for an input with this header
/// (its encoded bytes not counted: the caller holds those). An estimate, kept above the
/// measured peak (`tests/memory.rs`) so a worker that reserves it before running the job
/// cannot run out of memory with the others.
pub fn peak_memory(job: &Job, input: &codec::ImageInfo) -> u64 {
    let pixels = input.width as u64 * input.height as u64;
    let channels = if input.alpha { 4 } else { 3 };
    let size = (input.width as usize, input.height as usize);
    let eight_bit = input.decoded_bytes_per_pixel as usize == channels;
    if eight_bit && only_resamples(job, size) {
        let decode = input.decode_memory(resample_target(job, true));
        return ops::enhance::resample_bytes_memory(decode, channels, &job.placement)
            + codec::encoder_memory(job.placement.width as usize, channels, 1, job.format);
    }
    let on_bytes = ops::bytes_memory(job.endpoint, job.model, job.settings, size.0, channels);
    if let Some(operation) = on_bytes.filter(|_| eight_bit) {
        return input.decode_memory(None)
            + operation
            + codec::encoder_memory(job.placement.width as usize, channels, 1, job.format);
    }
    // One working raster (f32 per channel) of the input's size.
    let raster = pixels * channels as u64 * 4;
    // The decode, and the raster made from the decoded image.
    let decode = input.decode_memory(None) + raster;
    // Whole-image operations: how many rasters of the input's size they hold at their peak.
    let rasters = |n: f64| (n * raster as f64) as u64;
    let operation = match job.endpoint {
        Endpoint::Enhance | Endpoint::EnhanceGen | Endpoint::Tool => {
            ops::enhance::peak_memory(job.endpoint, job.model, job.settings, input, &job.placement)
        }
        Endpoint::Denoise | Endpoint::DenoiseGen => ops::denoise::peak_memory(
            job.model,
            job.settings,
            input.width as usize,
            input.height as usize,
            channels,
        ),
        Endpoint::Lighting => rasters(ops::lighting::peak_rasters(job.model, job.settings)),
        Endpoint::Sharpen | Endpoint::SharpenGen | Endpoint::RestoreGen => rasters(3.0),
        Endpoint::Matting => {
            ops::matting::peak_memory(input.width as usize, input.height as usize, channels)
        }
    };
    // Matting answers RGBA whatever came in.
    let out_channels = if job.endpoint == Endpoint::Matting {
        4
    } else {
        channels
    };
    decode.max(operation)
        + codec::encoder_memory(job.placement.width as usize, out_channels, 4, job.format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A 104-megapixel upscale streams its rows into the encoder; a cancel stops it within the
    /// chunk being computed, long before the end.
    #[test]
    fn a_cancelled_streamed_upscale_stops_at_once() {
        let input = codec::encode_test_png(1000, 1000);
        let placement = Placement::compute(1000, 1000, Some(10_200), None, false).unwrap();
        let job = Job {
            endpoint: Endpoint::Enhance,
            model: "Standard V2",
            settings: &Settings::default(),
            placement,
            format: OutputFormat::Png,
        };
        let cancel = Cancel::new();
        let furthest = Mutex::new(0.0f32);
        let result = process(&input, &job, &cancel, &|f| {
            let mut furthest = furthest.lock().unwrap();
            *furthest = furthest.max(f);
            // Past the smoothing, a quarter of the way through the streamed rows.
            if f >= 0.6 {
                cancel.fire();
            }
        });
        assert!(matches!(result, Err(ImagingError::Cancelled)), "{result:?}");
        let furthest = furthest.into_inner().unwrap();
        assert!(
            furthest < 0.62,
            "kept going to {furthest} after the cancel at 0.6"
        );
    }

    /// Every thread of the global rayon pool is held while jobs run: a job whose parallel
    /// passes (or streamed rows) went to that pool would wait for them, as a cancelled job
    /// once waited behind another job's passes.
    #[test]
    fn jobs_compute_on_threads_of_their_own() {
        use std::sync::{Barrier, mpsc};
        use std::time::Duration;
        let threads = rayon::current_num_threads();
        let held = Barrier::new(threads + 1);
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                rayon::broadcast(|_| {
                    held.wait();
                    let _ = released.lock().unwrap().recv();
                })
            });
            held.wait();
            let (done, finished) = mpsc::channel();
            scope.spawn(move || {
                let input = codec::encode_test_png(300, 200);
                for (endpoint, model, width) in [
                    (Endpoint::Denoise, "Normal", 300),
                    (Endpoint::Enhance, "Standard V2", 900),
                ] {
                    let job = Job {
                        endpoint,
                        model,
                        settings: &Settings::default(),
                        placement: Placement::compute(300, 200, Some(width), None, false).unwrap(),
                        format: OutputFormat::Jpeg,
                    };
                    let _ = done.send(process(&input, &job, &Cancel::new(), &|_| {}).map(|_| ()));
                }
            });
            let outcomes: Vec<_> = (0..2)
                .map(|_| finished.recv_timeout(Duration::from_secs(120)))
                .collect();
            drop(release);
            for outcome in outcomes {
                assert!(
                    matches!(outcome, Ok(Ok(()))),
                    "a job waited for the global pool: {outcome:?}"
                );
            }
        });
    }

    #[test]
    fn every_model_produces_the_planned_geometry() {
        let input = codec::encode_test_png(48, 32);
        for endpoint in Endpoint::ALL {
            for model in endpoint.models() {
                let placement = if endpoint.resizes() {
                    Placement::compute(48, 32, Some(96), Some(60), false).unwrap()
                } else {
                    Placement::identity(48, 32)
                };
                let job = Job {
                    endpoint,
                    model,
                    settings: &Settings::default(),
                    placement,
                    format: OutputFormat::Png,
                };
                let seen = Mutex::new(Vec::new());
                let out = process(&input, &job, &Cancel::new(), &|f| {
                    seen.lock().unwrap().push(f)
                })
                .unwrap();
                let info = codec::probe(&out).unwrap();
                assert_eq!(
                    (info.width, info.height),
                    (placement.width, placement.height),
                    "{endpoint:?} {model}"
                );
                let seen = seen.into_inner().unwrap();
                assert_eq!(seen.last(), Some(&1.0));
                assert!(
                    seen.windows(2).all(|w| w[0] <= w[1] + 0.2),
                    "{endpoint:?} {model}: {seen:?}"
                );
            }
        }
    }

    #[test]
    fn operations_change_the_pixels() {
        let input = codec::encode_test_png(48, 32);
        let original = codec::decode(&input).unwrap();
        for endpoint in [Endpoint::Sharpen, Endpoint::Lighting, Endpoint::Matting] {
            for model in endpoint.models() {
                let job = Job {
                    endpoint,
                    model,
                    settings: &Settings::default(),
                    placement: Placement::identity(48, 32),
                    format: OutputFormat::Png,
                };
                let out = codec::decode(&process(&input, &job, &Cancel::new(), &|_| {}).unwrap())
                    .unwrap();
                assert!(out != original, "{endpoint:?} {model} returned its input");
            }
        }
    }

    /// A 16×8 JPEG tagged "rotate 90° clockwise" (EXIF orientation 6), with an ICC profile.
    fn rotated_jpeg_with_profile(icc: &[u8]) -> Vec<u8> {
        let exif = codec::exif_rotate_90();
        let mut raster = Raster::new(16, 8, 3);
        for (i, p) in raster.data.chunks_exact_mut(3).enumerate() {
            let colour = if i % 16 < 8 {
                [220, 30, 30]
            } else {
                [30, 30, 220]
            };
            p.copy_from_slice(&colour.map(|v| v as f32 / 255.0));
        }
        let meta = codec::Metadata {
            icc: Some(icc.to_vec()),
            exif: Some(exif),
            ..Default::default()
        };
        codec::encode_with_metadata(&raster, OutputFormat::Jpeg, &meta).unwrap()
    }

    #[test]
    fn outputs_keep_the_colour_profile_and_exif_with_orientation_applied() {
        use image::ImageDecoder;
        let icc: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
        let input = rotated_jpeg_with_profile(&icc);
        // Stored 16×8, shown 8×16: the size jobs are planned on is the one shown.
        let info = codec::probe(&input).unwrap();
        assert_eq!((info.width, info.height), (8, 16));
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Tiff] {
            let job = Job {
                endpoint: Endpoint::Lighting,
                model: "White Balance",
                settings: &Settings::default(),
                placement: Placement::identity(8, 16),
                format,
            };
            let out = process(&input, &job, &Cancel::new(), &|_| {}).unwrap();
            let mut decoder = image::ImageReader::new(std::io::Cursor::new(&out))
                .with_guessed_format()
                .unwrap()
                .into_decoder()
                .unwrap();
            assert_eq!(decoder.dimensions(), (8, 16), "{format:?}: rotated");
            if format == OutputFormat::Tiff {
                // `image` writes the IccProfile tag but does not read it back; look for it.
                assert!(out.windows(icc.len()).any(|w| w == icc), "Tiff: profile");
            } else {
                assert_eq!(
                    decoder.icc_profile().unwrap(),
                    Some(icc.clone()),
                    "{format:?}"
                );
                assert!(decoder.exif_metadata().unwrap().is_some(), "{format:?}");
                assert_eq!(
                    decoder.orientation().unwrap(),
                    image::metadata::Orientation::NoTransforms,
                    "{format:?}: orientation reset"
                );
            }
            // Rotated clockwise, the red left half is now on top.
            let img = codec::decode(&out).unwrap();
            let top = &img.data[..3];
            let bottom = &img.data[img.data.len() - 3..];
            assert!(top[0] > top[2] && bottom[2] > bottom[0], "{format:?}");
        }
    }

    /// A 16-bit gradient too fine for 8 bits (a step of 40 levels in 65535 a pixel): PNG and
    /// TIFF outputs keep 16-bit samples and the steps between them; JPEG, which has no
    /// 16-bit samples, and any 8-bit input give 8 bits.
    #[test]
    fn sixteen_bit_inputs_give_sixteen_bit_png_and_tiff() {
        use image::ImageEncoder;
        let (w, h) = (256u32, 4u32);
        let level = |x: u32| 20_000 + 40 * x as u16;
        let samples: Vec<u8> = (0..w * h)
            .flat_map(|i| [level(i % w); 3])
            .flat_map(u16::to_ne_bytes)
            .collect();
        let mut input = Vec::new();
        image::codecs::png::PngEncoder::new(&mut input)
            .write_image(&samples, w, h, image::ExtendedColorType::Rgb16)
            .unwrap();
        let eight_bit =
            codec::encode(&Raster::new(w as usize, h as usize, 3), OutputFormat::Png).unwrap();
        let run = |input: &[u8], format| {
            let job = Job {
                endpoint: Endpoint::Lighting,
                model: "White Balance",
                settings: &Settings::default(),
                placement: Placement::identity(w, h),
                format,
            };
            image::load_from_memory(&process(input, &job, &Cancel::new(), &|_| {}).unwrap())
                .unwrap()
        };
        for format in [OutputFormat::Png, OutputFormat::Tiff] {
            let out = run(&input, format);
            let image::DynamicImage::ImageRgb16(out) = out else {
                panic!("{format:?}: {:?}, not 16-bit RGB", out.color());
            };
            // A grey ramp stays the ramp: every level as it came in, within rounding.
            for (x, p) in out.pixels().take(w as usize).enumerate() {
                let want = level(x as u32);
                assert!(
                    p.0.iter().all(|v| v.abs_diff(want) <= 1),
                    "{format:?}: {p:?}"
                );
            }
            assert_eq!(run(&eight_bit, format).color(), image::ColorType::Rgb8);
        }
        assert_eq!(
            run(&input, OutputFormat::Jpeg).color(),
            image::ColorType::Rgb8
        );
    }

    /// Grey inputs give grey PNG and TIFF outputs (grey with alpha: PNG only; TIFF has none
    /// here), the levels kept; Colorize gives colour.
    #[test]
    fn grey_inputs_stay_grey_unless_colorized() {
        use image::{ColorType, DynamicImage};
        let (w, h) = (64u32, 16u32);
        let ramp = image::GrayImage::from_fn(w, h, |x, _| image::Luma([40 + 2 * x as u8]));
        let grey = DynamicImage::ImageLuma8(ramp);
        let encode = |img: DynamicImage| {
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Png).unwrap();
            out.into_inner()
        };
        let inputs = [
            (encode(grey.clone()), ColorType::L8, ColorType::La8),
            (
                encode(grey.to_luma16().into()),
                ColorType::L16,
                ColorType::La16,
            ),
        ];
        let run = |input: &[u8], model, format| {
            let job = Job {
                endpoint: Endpoint::Lighting,
                model,
                settings: &Settings::default(),
                placement: Placement::identity(w, h),
                format,
            };
            image::load_from_memory(&process(input, &job, &Cancel::new(), &|_| {}).unwrap())
                .unwrap()
        };
        for (input, want, _) in &inputs {
            for format in [OutputFormat::Png, OutputFormat::Tiff] {
                let out = run(input, "White Balance", format);
                assert_eq!(out.color(), *want, "{format:?}");
                assert_eq!(out.to_luma8(), grey.to_luma8(), "{format:?}: levels kept");
            }
            let coloured = run(input, "Colorize", OutputFormat::Png);
            assert!(
                coloured.color().has_color(),
                "Colorize: {:?}",
                coloured.color()
            );
        }
        // With alpha: grey and alpha in PNG, RGBA in TIFF.
        for (input, _, with_alpha) in &inputs {
            let la = image::load_from_memory(input).unwrap();
            let la = match *with_alpha {
                ColorType::La8 => DynamicImage::ImageLumaA8(la.to_luma_alpha8()),
                _ => DynamicImage::ImageLumaA16(la.to_luma_alpha16()),
            };
            let input = encode(la);
            assert_eq!(
                run(&input, "White Balance", OutputFormat::Png).color(),
                *with_alpha
            );
            let tiff = run(&input, "White Balance", OutputFormat::Tiff).color();
            assert!(tiff.has_color() && tiff.has_alpha(), "{tiff:?}");
        }
    }

    #[test]
    fn a_fired_token_stops_the_job() {
        let input = codec::encode_test_png(48, 32);
        let cancel = Cancel::new();
        cancel.fire();
        let job = Job {
            endpoint: Endpoint::Denoise,
            model: "Normal",
            settings: &Settings::default(),
            placement: Placement::identity(48, 32),
            format: OutputFormat::Jpeg,
        };
        assert!(matches!(
            process(&input, &job, &cancel, &|_| {}),
            Err(ImagingError::Cancelled)
        ));
    }

    /// A Standard V2 enhance to PNG with `settings` (the plain-resample ones, in these tests).
    fn plain_png_job(settings: &Settings, placement: Placement) -> Job<'_> {
        Job {
            endpoint: Endpoint::Enhance,
            model: "Standard V2",
            settings,
            placement,
            format: OutputFormat::Png,
        }
    }

    /// The share of samples more than one level apart.
    fn share_past_one(got: &[u8], want: &[u8]) -> f64 {
        let past_one = got.iter().zip(want).filter(|(a, b)| a.abs_diff(**b) > 1);
        past_one.count() as f64 / got.len() as f64
    }

    /// A plain resample runs on the decoded bytes; it matches the f32 resample of the same
    /// image (rounded to bytes) to within 8-bit rounding, for RGB and RGBA, upscaled, downscaled,
    /// letterboxed and cropped, and leaves the output's geometry as planned.
    #[test]
    fn a_plain_resample_on_bytes_matches_the_working_raster() {
        let plain = Settings::from_json(
            r#"{"upscaler":"lanczos","sharpen":0,"denoise":0,"fix_compression":0}"#,
        );
        let rgb = codec::encode_test_png(97, 61);
        let rgba = {
            let img = image::load_from_memory(&rgb).unwrap().to_rgba8();
            let img = image::RgbaImage::from_fn(97, 61, |x, y| {
                let mut p = *img.get_pixel(x, y);
                // Opaque enough everywhere that straight colour survives 8-bit premultiplying.
                p.0[3] = 160 + (x * 95 / 96) as u8;
                p
            });
            let mut out = Vec::new();
            image::DynamicImage::ImageRgba8(img)
                .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        };
        let placements = [
            Placement::compute(97, 61, Some(250), None, false).unwrap(),
            Placement::compute(97, 61, Some(40), None, false).unwrap(),
            Placement::compute(97, 61, Some(200), Some(200), false).unwrap(),
            Placement::compute(97, 61, Some(150), Some(150), true).unwrap(),
        ];
        for input in [&rgb, &rgba] {
            for placement in placements {
                let job = plain_png_job(&plain, placement);
                let info = codec::probe(input).unwrap();
                assert!(only_resamples(&job, (97, 61)));
                let out = process(input, &job, &Cancel::new(), &|_| {}).unwrap();
                let got = codec::decode(&out).unwrap();
                let cancel = Cancel::new();
                let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
                let want =
                    crate::raster::resample(&ctx, &codec::decode(input).unwrap(), &placement)
                        .unwrap();
                assert_eq!(
                    (got.width, got.height, got.channels),
                    (want.width, want.height, want.channels),
                    "{placement:?} alpha={}",
                    info.alpha
                );
                let got = got.to_u8();
                let want = want.to_u8();
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap();
                // 8-bit resizing rounds (and clamps the ringing) between its two passes, and
                // premultiplies alpha in 8 bits: measured at most 4 levels, a few samples in
                // a thousand past 1 (2 % with alpha).
                let share = share_past_one(&got, &want);
                assert!(
                    worst <= 4 && share < 0.03,
                    "{placement:?} alpha={}: off by up to {worst}, {share:.4} past 1",
                    info.alpha
                );
            }
        }
    }
    /// A plain downscale of a JPEG photograph starts from a reduced decode: the output has the
    /// planned geometry, is turned as its EXIF says, and is within a hair of the Lanczos-3
    /// resample of the whole decode (42.6-50.8 dB measured with the CLI on the same file and
    /// sizes, upright), though not that resample itself.
    #[test]
    fn a_plain_jpeg_downscale_starts_from_a_reduced_decode() {
        let photo = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/images/coffee.png"
        ))
        .unwrap();
        let photo = Raster::from_dynamic(&photo);
        let plain = Settings::from_json(
            r#"{"upscaler":"lanczos","sharpen":0,"denoise":0,"fix_compression":0}"#,
        );
        let upright = codec::encode(&photo, OutputFormat::Jpeg).unwrap();
        let meta = codec::Metadata {
            icc: None,
            exif: Some(codec::exif_rotate_90()),
            ..Default::default()
        };
        let turned = codec::encode_with_metadata(&photo, OutputFormat::Jpeg, &meta).unwrap();
        for (input, (w, h)) in [(&upright, (600, 400)), (&turned, (400, 600))] {
            let info = codec::probe(input).unwrap();
            assert_eq!((info.width, info.height), (w, h));
            let whole = codec::decode(input).unwrap();
            for placement in [
                Placement::compute(w, h, Some(w / 4), None, false).unwrap(),
                Placement::compute(w, h, Some(w / 10), None, false).unwrap(),
                Placement::compute(w, h, Some(100), Some(100), true).unwrap(),
                Placement::compute(w, h, Some(120), Some(60), false).unwrap(),
            ] {
                let job = plain_png_job(&plain, placement);
                let out = process(input, &job, &Cancel::new(), &|_| {}).unwrap();
                let got = codec::decode(&out).unwrap();
                let cancel = Cancel::new();
                let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
                let want = crate::raster::resample(&ctx, &whole, &placement).unwrap();
                assert_eq!(
                    (got.width, got.height),
                    (placement.width as usize, placement.height as usize)
                );
                let (got, want) = (got.to_u8(), want.to_u8());
                let psnr = crate::quality::psnr(&got, &want);
                assert!(psnr > 40.0, "{placement:?}: {psnr:.1} dB");
                // The resample of the whole decode is within 8-bit rounding (see above).
                let share = share_past_one(&got, &want);
                assert!(share > 0.03, "{placement:?}: the decode was not reduced");
            }
        }
    }
}
