//! Quality that must not regress, measured on the shared photographs through the whole
//! pipeline (PNG in, PNG out):
//! - denoising of seeded Gaussian noise (σ = 15 and 25) beats the best Gaussian blur by at
//!   least 1 dB (on pure textures: beats it) and is not below OpenCV's non-local means at its
//!   best `h` on the same noisy files;
//! - a ×2 enhance of a half-size copy is not further from the original than plain Lanczos-3;
//! - the learned ×2 upscale, on the images its training held out, is at least 2.5 dB above
//!   bicubic and 2.0 dB above Lanczos-3 (luma PSNR, the measure of `bench/sr_eval.py`), and
//!   `upscaler=lanczos` gives plain Lanczos-3 (computed in 8 bits: within 8-bit rounding of
//!   the f32 resampler).
//!
//! - dust removal takes seeded specks and scratches off the colour photographs (at least 1.5 dB
//!   closer to the clean image) and leaves the clean photographs alone (under 1 % of the pixels
//!   changed: eyes, teeth and fur are not dust);
//! - matting finds a subject composited onto a background of known extent (at least 0.95 of
//!   the true matte by intersection over union, mean alpha error under 0.02) on textured
//!   backgrounds and on a studio backdrop with the subject running off the frame, and keeps
//!   the subjects of the shared portrait and coffee photographs without their backgrounds.
//!
//! The OpenCV figures come from `bench/denoise_reference.py`, run on the noisy files this
//! test writes to `target/tmp/quality/` (see the README's Quality section).

use std::ops::RangeInclusive;

use image::{DynamicImage, ImageEncoder};
use lucid_core::geometry::Placement;
use lucid_core::request::Settings;
use lucid_core::{Endpoint, OutputFormat};
use lucid_imaging::pipeline::{Job, process};
use lucid_imaging::quality::{add_noise, psnr};
use lucid_imaging::raster::{Raster, gaussian_blur, resample};
use lucid_imaging::{Cancel, Ctx, codec, sr};

const IMAGES: &[&str] = &[
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "text.png",
];

/// PSNR (dB) of OpenCV 4.x `fastNlMeansDenoisingColored` (grey images: `fastNlMeansDenoising`)
/// 5.0 on the noisy files, with the best `h` of a sweep, by `bench/denoise_reference.py`.
const OPENCV_NLM: &[(&str, u32, f64)] = &[
    ("astronaut.png", 15, 29.13),
    ("astronaut.png", 25, 26.47),
    ("brick.png", 15, 35.55),
    ("brick.png", 25, 31.36),
    ("camera.png", 15, 30.68),
    ("camera.png", 25, 28.63),
    ("chelsea.png", 15, 30.77),
    ("chelsea.png", 25, 28.57),
    ("coffee.png", 15, 28.56),
    ("coffee.png", 25, 26.46),
    ("grass.png", 15, 26.03),
    ("grass.png", 25, 23.03),
    ("gravel.png", 15, 27.32),
    ("gravel.png", 25, 24.46),
    ("rocket.jpg", 15, 30.37),
    ("rocket.jpg", 25, 27.82),
    ("text.png", 15, 31.52),
    ("text.png", 25, 28.84),
];

/// Pure stochastic textures, where no local denoiser gains a full 1 dB over the best blur
/// (OpenCV's NLM does not even match it on grass): there lucid must still beat the blur.
const TEXTURES: &[&str] = &["grass.png", "gravel.png"];

fn shared(name: &str) -> DynamicImage {
    let path = format!(
        "{}/../../../shared/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    image::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The image as 8-bit samples, grey kept as one channel so noise is added once per pixel.
fn samples(img: &DynamicImage) -> (Vec<u8>, image::ExtendedColorType) {
    if img.color().channel_count() == 1 {
        (img.to_luma8().into_raw(), image::ExtendedColorType::L8)
    } else {
        (img.to_rgb8().into_raw(), image::ExtendedColorType::Rgb8)
    }
}

fn png(samples: &[u8], w: u32, h: u32, color: image::ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(samples, w, h, color)
        .unwrap();
    out
}

/// RGB bytes, the form the pipeline's output and the references are compared in.
fn rgb(raster: &Raster) -> Vec<u8> {
    raster.to_u8()
}

fn run(input: &[u8], endpoint: Endpoint, model: &str, placement: Placement) -> Vec<u8> {
    let job = Job {
        endpoint,
        model,
        settings: &Settings::default(),
        placement,
        format: OutputFormat::Png,
    };
    let out = process(input, &job, &Cancel::new(), &|_| {}).unwrap();
    rgb(&codec::decode(&out).unwrap())
}

fn with_ctx<T>(f: impl FnOnce(&Ctx) -> T) -> T {
    let cancel = Cancel::new();
    f(&Ctx::new(&cancel, &|_| {}, (0.0, 1.0)))
}

#[test]
fn denoising_beats_gaussian_blur_and_opencv_nlm() {
    let dir = format!("{}/quality", env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    println!("image            sigma  noisy  gauss  opencv  lucid");
    for (i, name) in IMAGES.iter().enumerate() {
        let img = shared(name);
        let (w, h) = (img.width(), img.height());
        let (clean, color) = samples(&img);
        let clean_rgb = rgb(&codec::decode(&png(&clean, w, h, color)).unwrap());
        for sigma in [15u32, 25] {
            let noisy = add_noise(&clean, sigma as f64, (i as u64) << 8 | sigma as u64);
            let noisy_png = png(&noisy, w, h, color);
            let stem = name.split('.').next().unwrap();
            std::fs::write(format!("{dir}/{stem}-s{sigma}.png"), &noisy_png).unwrap();
            let noisy_raster = codec::decode(&noisy_png).unwrap();
            let gauss = [0.5f32, 0.75, 1.0, 1.5, 2.0]
                .iter()
                .map(|&s| {
                    let blurred = with_ctx(|ctx| {
                        gaussian_blur(ctx, &noisy_raster.data, w as usize, h as usize, 3, s)
                    })
                    .unwrap();
                    let r = Raster {
                        data: blurred,
                        ..noisy_raster.clone()
                    };
                    psnr(&clean_rgb, &rgb(&r))
                })
                .fold(f64::MIN, f64::max);
            let denoised = run(
                &noisy_png,
                Endpoint::Denoise,
                "Normal",
                Placement::identity(w, h),
            );
            let lucid = psnr(&clean_rgb, &denoised);
            let opencv = OPENCV_NLM
                .iter()
                .find(|(n, s, _)| n == name && *s == sigma)
                .map(|r| r.2);
            println!(
                "{name:<16} {sigma:>5}  {:>5.2}  {gauss:>5.2}  {:>6}  {lucid:>5.2}",
                psnr(&clean_rgb, &rgb(&noisy_raster)),
                opencv.map_or("-".into(), |v| format!("{v:.2}")),
            );
            let margin = if TEXTURES.contains(name) { 0.0 } else { 1.0 };
            if lucid < gauss + margin {
                failures.push(format!(
                    "{name} σ={sigma}: {lucid:.2} dB < Gaussian {gauss:.2} + {margin}"
                ));
            }
            match opencv {
                Some(v) if lucid < v => {
                    failures.push(format!("{name} σ={sigma}: {lucid:.2} dB < OpenCV {v:.2}"))
                }
                None => failures.push(format!("{name} σ={sigma}: no OpenCV reference")),
                _ => {}
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn enhance_upscaling_is_not_worse_than_lanczos() {
    let mut failures = Vec::new();
    println!("image            lanczos  lucid");
    for name in IMAGES {
        let img = shared(name);
        // Even sides, so half size and back lands on the same grid.
        let (w, h) = (img.width() & !1, img.height() & !1);
        let img = img.crop_imm(0, 0, w, h);
        let (clean, color) = samples(&img);
        let clean_png = png(&clean, w, h, color);
        let clean_rgb = rgb(&codec::decode(&clean_png).unwrap());
        let half = Placement::compute(w, h, Some(w / 2), Some(h / 2), false).unwrap();
        let small = codec::decode(&clean_png).unwrap();
        let small = with_ctx(|ctx| resample(ctx, &small, &half)).unwrap();
        let small_png = codec::encode(&small, OutputFormat::Png).unwrap();
        let double = Placement::compute(w / 2, h / 2, Some(w), Some(h), false).unwrap();
        let lanczos =
            with_ctx(|ctx| resample(ctx, &codec::decode(&small_png).unwrap(), &double)).unwrap();
        let lanczos = psnr(&clean_rgb, &rgb(&lanczos));
        let lucid = psnr(
            &clean_rgb,
            &run(&small_png, Endpoint::Enhance, "Standard V2", double),
        );
        println!("{name:<16} {lanczos:>7.2}  {lucid:>5.2}");
        if lucid < lanczos {
            failures.push(format!("{name}: {lucid:.2} dB < Lanczos {lanczos:.2}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The images `crates/lucid-train` holds out (its default `--hold-out`).
const HELD_OUT: &[&str] = &["astronaut.png", "coffee.png"];

/// Each channel of `img` shrunk ×½ by antialiased bicubic and rounded to 8 bits: the
/// degradation the network is trained and measured on.
fn bicubic_half(img: &Raster) -> Raster {
    let (w, h) = (img.width, img.height);
    let mut out = Raster::new(w / 2, h / 2, 3);
    for c in 0..3 {
        let plane: Vec<f32> = img.data.iter().skip(c).step_by(3).copied().collect();
        for (o, v) in out
            .data
            .iter_mut()
            .skip(c)
            .step_by(3)
            .zip(sr::bicubic_down2(&plane, w, h))
        {
            *o = (v * 255.0).round().clamp(0.0, 255.0) / 255.0;
        }
    }
    out
}

fn bicubic_double(img: &Raster) -> Raster {
    let mut out = Raster::new(img.width * 2, img.height * 2, 3);
    for c in 0..3 {
        let plane: Vec<f32> = img.data.iter().skip(c).step_by(3).copied().collect();
        let up = sr::bicubic_plane(&plane, img.width, img.height);
        for (o, v) in out.data.iter_mut().skip(c).step_by(3).zip(up) {
            *o = v;
        }
    }
    out
}

/// Luma PSNR after rounding both to 8 bits, as saved images would be.
fn luma_psnr(reference: &Raster, candidate: &Raster) -> f64 {
    let round = |r: &Raster| {
        let mut r = r.clone();
        r.data
            .iter_mut()
            .for_each(|v| *v = (*v * 255.0).round().clamp(0.0, 255.0) / 255.0);
        sr::luma(&r)
    };
    let (w, h) = (reference.width, reference.height);
    sr::luma_psnr(&round(reference), &round(candidate), w, h, 2)
}

#[test]
fn learned_upscaling_beats_bicubic_and_lanczos_on_held_out_images() {
    let (mut bicubic, mut lanczos, mut learned) = (0.0, 0.0, 0.0);
    println!("image            bicubic  lanczos  learned");
    for name in HELD_OUT {
        let img = shared(name);
        let (w, h) = (img.width() & !1, img.height() & !1);
        let hr = Raster::from_dynamic(&DynamicImage::ImageRgb8(img.crop_imm(0, 0, w, h).to_rgb8()));
        let lr = bicubic_half(&hr);
        let lr_png = codec::encode(&lr, OutputFormat::Png).unwrap();
        let lr = codec::decode(&lr_png).unwrap();
        let double = Placement::compute(w / 2, h / 2, Some(w), Some(h), false).unwrap();
        let job = Job {
            endpoint: Endpoint::Enhance,
            model: "Standard V2",
            settings: &Settings::default(),
            placement: double,
            format: OutputFormat::Png,
        };
        let out = process(&lr_png, &job, &Cancel::new(), &|_| {}).unwrap();
        let scores = [
            luma_psnr(&hr, &bicubic_double(&lr)),
            luma_psnr(&hr, &with_ctx(|ctx| resample(ctx, &lr, &double)).unwrap()),
            luma_psnr(&hr, &codec::decode(&out).unwrap()),
        ];
        println!(
            "{name:<16} {:>7.2}  {:>7.2}  {:>7.2}",
            scores[0], scores[1], scores[2]
        );
        bicubic += scores[0] / HELD_OUT.len() as f64;
        lanczos += scores[1] / HELD_OUT.len() as f64;
        learned += scores[2] / HELD_OUT.len() as f64;
    }
    println!("mean             {bicubic:>7.2}  {lanczos:>7.2}  {learned:>7.2}");
    assert!(
        learned >= bicubic + 2.5,
        "{learned:.2} dB < bicubic {bicubic:.2} + 2.5"
    );
    assert!(
        learned >= lanczos + 2.0,
        "{learned:.2} dB < Lanczos {lanczos:.2} + 2.0"
    );
}

#[test]
fn the_lanczos_upscaler_setting_gives_plain_resampling() {
    let img = shared("chelsea.png");
    let source = Raster::from_dynamic(&DynamicImage::ImageRgb8(img.to_rgb8()));
    let input = codec::encode(&source, OutputFormat::Png).unwrap();
    let placement = Placement::compute(451, 300, Some(700), None, false).unwrap();
    let settings = Settings::from_json(
        r#"{"upscaler": "lanczos", "sharpen": 0, "denoise": 0, "fix_compression": 0}"#,
    );
    let job = |settings| Job {
        endpoint: Endpoint::Enhance,
        model: "Standard V2",
        settings,
        placement,
        format: OutputFormat::Png,
    };
    let plain = process(&input, &job(&settings), &Cancel::new(), &|_| {}).unwrap();
    let expected = rgb(&with_ctx(|ctx| resample(ctx, &source, &placement)).unwrap());
    let got = rgb(&codec::decode(&plain).unwrap());
    assert_eq!(got.len(), expected.len());
    // The plain resample runs on the decoded bytes; the resizer rounds between its passes.
    let worst = got.iter().zip(&expected).map(|(a, b)| a.abs_diff(*b)).max();
    let past_one = got
        .iter()
        .zip(&expected)
        .filter(|(a, b)| a.abs_diff(**b) > 1);
    let share = past_one.count() as f64 / got.len() as f64;
    assert!(
        worst <= Some(4) && share < 0.03,
        "off by up to {worst:?}, {share:.4} of samples past 1"
    );
    // The default (learned) upscale is a different image.
    let learned = process(&input, &job(&Settings::default()), &Cancel::new(), &|_| {}).unwrap();
    assert_ne!(
        codec::decode(&learned).unwrap().data,
        codec::decode(&plain).unwrap().data
    );
}

/// Seeded dust on RGB samples: discs of a radius in `radii` and straight one-pixel scratches
/// 30–80 pixels long, white or black, one per 4,000 pixels.
fn add_dust(samples: &mut [u8], w: usize, h: usize, radii: RangeInclusive<i64>, seed: u64) {
    let mut state = seed;
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n as u64) as usize
    };
    let paint = |samples: &mut [u8], x: usize, y: usize, v: u8| {
        if x < w && y < h {
            samples[(y * w + x) * 3..][..3].fill(v);
        }
    };
    for i in 0..w * h / 4000 {
        let v = if i % 3 == 0 { 0 } else { 255 };
        let (cx, cy) = (next(w), next(h));
        if i % 5 == 4 {
            let (len, angle) = (
                30 + next(50),
                next(360) as f64 * std::f64::consts::PI / 180.0,
            );
            for t in 0..len {
                let x = cx as f64 + t as f64 * angle.cos();
                let y = cy as f64 + t as f64 * angle.sin();
                if x >= 0.0 && y >= 0.0 {
                    paint(samples, x.round() as usize, y.round() as usize, v);
                }
            }
        } else {
            let r = radii.start() + next((radii.end() - radii.start() + 1) as usize) as i64;
            for dy in -r..=r {
                for dx in -r..=r {
                    if dx * dx + dy * dy <= r * r {
                        let (x, y) = (cx as i64 + dx, cy as i64 + dy);
                        if x >= 0 && y >= 0 {
                            paint(samples, x as usize, y as usize, v);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn dust_removal_takes_dust_off_and_leaves_clean_photographs_alone() {
    // Each model on the dust it is for: V2's larger specks too.
    let models: [(&str, &[RangeInclusive<i64>]); 2] = [
        ("Dust-Scratch", &[1..=2]),
        ("Dust-Scratch V2", &[1..=2, 3..=4]),
    ];
    let rgb8 = image::ExtendedColorType::Rgb8;
    println!("image            model            specks  damaged  restored");
    for name in ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"] {
        let img = shared(name).to_rgb8();
        let (w, h) = (img.width(), img.height());
        let clean = img.into_raw();
        let identity = Placement::identity(w, h);
        for (model, sizes) in models {
            for radii in sizes {
                let mut dusty = clean.clone();
                add_dust(&mut dusty, w as usize, h as usize, radii.clone(), 11);
                let input = png(&dusty, w, h, rgb8);
                let restored = run(&input, Endpoint::RestoreGen, model, identity);
                let (before, after) = (psnr(&dusty, &clean), psnr(&restored, &clean));
                println!("{name:16} {model:16} r {radii:?}  {before:7.2}  {after:8.2}");
                assert!(
                    after >= before + 1.5,
                    "{name} {model} r {radii:?}: {before:.2} -> {after:.2} dB"
                );
            }
            let untouched = run(
                &png(&clean, w, h, rgb8),
                Endpoint::RestoreGen,
                model,
                identity,
            );
            let pixels = untouched.chunks_exact(3).zip(clean.chunks_exact(3));
            let changed = pixels
                .filter(|(a, b)| a.iter().zip(*b).any(|(a, b)| a.abs_diff(*b) > 3))
                .count() as f64
                / (w * h) as f64;
            println!(
                "{name:16} {model:16} clean: {:.3} % changed",
                changed * 100.0
            );
            assert!(
                changed < 0.01,
                "{name} {model}: {:.2} % of a clean image changed",
                changed * 100.0
            );
        }
    }
}

/// The alpha channel the matting `model` answers for the PNG `input` (`w`×`h`).
fn matte_of(input: &[u8], model: &str, w: u32, h: u32) -> Vec<f32> {
    let job = Job {
        endpoint: Endpoint::Matting,
        model,
        settings: &Settings::default(),
        placement: Placement::identity(w, h),
        format: OutputFormat::Png,
    };
    let out = codec::decode(&process(input, &job, &Cancel::new(), &|_| {}).unwrap()).unwrap();
    assert_eq!(out.channels, 4);
    out.data.chunks_exact(4).map(|p| p[3]).collect()
}

/// The known matte of a composite 400×300: a wobbly blob in the middle (`touching` false), or
/// a head and shoulders running off the bottom edge; anti-aliased by 4×4 supersampling.
fn subject_matte(touching: bool) -> Vec<f32> {
    let (w, h, ss) = (400usize, 300usize, 4usize);
    let inside = |x: f32, y: f32| {
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        if touching {
            let head = (x - cx).hypot(y - 110.0) < 55.0;
            let shoulders = y > 170.0 && (x - cx).abs() < 120.0 - 0.4 * (250.0 - y).max(0.0);
            head || shoulders
        } else {
            let t = (y - cy).atan2(x - cx);
            let r = 95.0 * (1.0 + 0.15 * (3.0 * t + 0.7).sin() + 0.08 * (5.0 * t + 2.0).sin());
            (x - cx).hypot(y - cy) < r
        }
    };
    let mut matte = vec![0.0; w * h];
    for (i, m) in matte.iter_mut().enumerate() {
        let (x, y) = ((i % w) as f32, (i / w) as f32);
        let hits = (0..ss * ss)
            .filter(|k| {
                let (sx, sy) = ((k % ss) as f32, (k / ss) as f32);
                inside(x + (sx + 0.5) / ss as f32, y + (sy + 0.5) / ss as f32)
            })
            .count();
        *m = hits as f32 / (ss * ss) as f32;
    }
    matte
}

/// The middle 400×300 of a shared image, as RGB floats 0–1.
fn middle(name: &str) -> Vec<f32> {
    let img = shared(name).to_rgb8();
    let (x0, y0) = ((img.width() - 400) / 2, (img.height() - 300) / 2);
    let mut out = Vec::with_capacity(400 * 300 * 3);
    for y in y0..y0 + 300 {
        for x in x0..x0 + 400 {
            out.extend(img.get_pixel(x, y).0.iter().map(|v| *v as f32 / 255.0));
        }
    }
    out
}

/// A studio backdrop: a vertical grey gradient with a soft shadow near the bottom.
fn studio_backdrop() -> Vec<f32> {
    let mut out = Vec::with_capacity(400 * 300 * 3);
    for y in 0..300 {
        for x in 0..400 {
            let grey = 0.80 + 0.17 * y as f32 / 299.0;
            let shadow = 0.35
                * (-(((x as f32 - 200.0) / 120.0).powi(2) + ((y as f32 - 255.0) / 18.0).powi(2)))
                    .exp();
            out.extend([grey * (1.0 - shadow); 3]);
        }
    }
    out
}

#[test]
fn matting_finds_a_subject_on_textured_and_studio_backgrounds() {
    // (subject, background, whether the subject runs off the bottom edge)
    let cases: [(&str, Option<&str>, bool); 4] = [
        ("astronaut.png", Some("brick.png"), false),
        ("rocket.jpg", Some("grass.png"), false),
        ("chelsea.png", Some("gravel.png"), false),
        ("astronaut.png", None, true),
    ];
    println!("subject          background  model     IoU    alpha error");
    for (subject, background, touching) in cases {
        let fg = middle(subject);
        let bg = background.map_or_else(studio_backdrop, middle);
        let truth = subject_matte(touching);
        let composite: Vec<u8> = (0..400 * 300 * 3)
            .map(|i| {
                let a = truth[i / 3];
                ((fg[i] * a + bg[i] * (1.0 - a)) * 255.0).round() as u8
            })
            .collect();
        let input = png(&composite, 400, 300, image::ExtendedColorType::Rgb8);
        for model in ["Object", "RemoveBG"] {
            let alpha = matte_of(&input, model, 400, 300);
            let (mut both, mut either, mut error) = (0, 0, 0.0);
            for (a, t) in alpha.iter().zip(&truth) {
                let (a_in, t_in) = (*a > 0.5, *t > 0.5);
                both += (a_in && t_in) as usize;
                either += (a_in || t_in) as usize;
                error += (a - t).abs() as f64;
            }
            let iou = both as f64 / either as f64;
            let error = error / truth.len() as f64;
            let place = background.unwrap_or("studio");
            println!("{subject:16} {place:11} {model:9} {iou:.3}  {error:.4}");
            assert!(iou >= 0.95, "{subject} on {place}, {model}: IoU {iou:.3}");
            assert!(
                error < 0.02,
                "{subject} on {place}, {model}: alpha error {error:.4}"
            );
        }
    }
}

/// On the shared photographs with a clear subject, points of the subject are kept and points
/// of the background removed (`RemoveBG`): the portrait's face, hair and suit but not the
/// backdrop, flag or shuttle; the coffee cup's crema, rim and whole saucer but not the table.
#[test]
fn matting_keeps_the_subject_of_the_shared_photographs() {
    // (x, y, what, whether it is the subject)
    type Point = (u32, u32, &'static str, bool);
    let cases: [(&str, [Point; 6]); 2] = [
        (
            "astronaut.png",
            [
                (224, 120, "face", true),
                (220, 40, "hair", true),
                (150, 400, "suit", true),
                (320, 60, "backdrop", false),
                (60, 150, "flag", false),
                (400, 250, "shuttle's stand", false),
            ],
        ),
        (
            "coffee.png",
            [
                (290, 135, "crema", true),
                (290, 40, "rim", true),
                (120, 300, "saucer's left", true),
                (300, 370, "saucer's front", true),
                (40, 60, "table, top left", false),
                (560, 380, "table, right", false),
            ],
        ),
    ];
    for (name, points) in cases {
        let img = shared(name).to_rgb8();
        let (w, h) = (img.width(), img.height());
        let input = png(img.as_raw(), w, h, image::ExtendedColorType::Rgb8);
        let matte = matte_of(&input, "RemoveBG", w, h);
        for (x, y, what, kept) in points {
            let alpha = matte[(y * w + x) as usize];
            println!("{name:16} {what:16} alpha {alpha:.2}");
            if kept {
                assert!(
                    alpha > 0.9,
                    "{name}: the {what} was removed (alpha {alpha:.2})"
                );
            } else {
                assert!(
                    alpha < 0.1,
                    "{name}: the {what} was kept (alpha {alpha:.2})"
                );
            }
        }
    }
}
