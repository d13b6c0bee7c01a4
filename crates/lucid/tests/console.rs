//! The web console end to end: `e2e.mjs` drives it in headless Chromium (Debian's `chromium`
//! through Playwright) against a real `lucid serve` — key, forms, upload, progress, cancel,
//! compare, download, past jobs — and this test checks what it saved: the downloaded output
//! and a screenshot of the rendered result. Needs node, `npm ci` in tests/console and
//! /usr/bin/chromium; in CI (`CI` set) their absence fails the test, elsewhere it skips.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn console_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is missing (apt-get install chromium)".into());
    }
    if !console_dir().join("node_modules/playwright-core").is_dir() {
        return Some("playwright-core is missing (npm ci in crates/lucid/tests/console)".into());
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("node is missing".into()),
    }
}

/// The standard deviation of a screenshot's luma: a blank or uniform render is near 0.
fn luma_spread(path: &Path) -> f64 {
    let img = image::open(path).unwrap().to_luma8();
    let n = img.len() as f64;
    let mean = img.iter().map(|&v| v as f64).sum::<f64>() / n;
    (img.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_submits_follows_cancels_compares_and_downloads() {
    if let Some(why) = missing_tools() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the console test: {why}"
        );
        eprintln!("skipping the console test: {why}");
        return;
    }
    let Served { dir, key, base, .. } = &serve_fresh(1).await;
    let out = std::env::var_os("LUCID_CONSOLE_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("e2e"));
    std::fs::create_dir_all(&out).unwrap();
    let run = tokio::process::Command::new("node")
        .arg(console_dir().join("e2e.mjs"))
        .env("BASE", base)
        .env("KEY", key)
        .env("SMALL", shared_png().with_file_name("chelsea.png"))
        .env("LARGE", shared_png().with_file_name("retina.jpg"))
        .env("OUT", &out)
        .output()
        .await
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{log}");
    assert_eq!(log.matches("ok: ").count(), 8, "{log}");

    let downloaded = image::open(out.join("download.png")).unwrap();
    assert_eq!((downloaded.width(), downloaded.height()), (1024, 681));
    // The rendered comparison shows the photograph, not an empty frame.
    let spread = luma_spread(&out.join("compare.png"));
    assert!(
        spread > 20.0,
        "the compare view looks blank (luma spread {spread:.1})"
    );
}
