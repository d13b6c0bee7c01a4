//! Times the pipeline's stages (and the denoiser) on one file: `cargo run --release -p lucid-imaging --example
//! stage_times -- IN.jpg WIDTH`.

use std::time::Instant;

use lucid_imaging::{Cancel, Ctx, codec, raster};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).unwrap();
    let width: u32 = args[2].parse().unwrap();
    let t = Instant::now();
    let img = codec::decode(&bytes).unwrap();
    println!("decode  {:?}", t.elapsed());
    let h = (img.height as f64 * width as f64 / img.width as f64).round() as u32;
    let p = lucid_core::geometry::Placement::identity(width, h);
    let cancel = Cancel::new();
    let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
    let t = Instant::now();
    let mut out = raster::resample(&ctx, &img, &p).unwrap();
    println!("resample {:?}", t.elapsed());
    let t = Instant::now();
    out.clamp();
    println!("clamp   {:?}", t.elapsed());
    let t = Instant::now();
    let u8s = out.to_u8();
    println!("to_u8   {:?}", t.elapsed());
    drop(u8s);
    let t = Instant::now();
    let enc = codec::encode(&out, lucid_core::OutputFormat::Jpeg).unwrap();
    println!("encode  {:?} ({} bytes)", t.elapsed(), enc.len());
    let t = Instant::now();
    let sigma = lucid_imaging::dct::noise_level(&img);
    println!("noise   {:?} (sigma {:.1}/255)", t.elapsed(), sigma * 255.0);
    for wiener in [false, true] {
        let mut copy = img.clone();
        let t = Instant::now();
        lucid_imaging::dct::denoise(
            &ctx,
            &mut copy,
            sigma,
            lucid_imaging::dct::DEFAULT_THRESHOLD,
            wiener,
            1.0,
        )
        .unwrap();
        println!("denoise {:?} (wiener {wiener})", t.elapsed());
    }
}
