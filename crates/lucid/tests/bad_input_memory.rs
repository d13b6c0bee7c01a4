//! The server's peak memory while it refuses a stream of bad input: the committed corpus
//! (decompression bombs, truncated and corrupt files) many times over, concurrently, and large
//! garbage uploads. Refusals happen before any decode, so the peak stays near the uploads'
//! own size. Prints the figure for RELIABILITY.md.

mod common;

use common::*;
use futures::future::join_all;

/// The process's peak resident memory (VmHWM) in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

fn corpus() -> Vec<(u16, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../lucid-server/tests/corpus");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "py"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name[..3].parse().unwrap(), std::fs::read(&p).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_bad_input_keeps_memory_bounded() {
    const ROUNDS: usize = 20;
    const GARBAGE_MB: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "unlimited");
    let client = reqwest::Client::new();
    let (mut child, base) = start(dir.path(), &key, &client, 1, 30).await;
    let pid = child.id();
    let at_start = peak_rss_mib(pid);

    let files = corpus();
    assert!(files.len() >= 15);
    let garbage: Vec<u8> = (0..GARBAGE_MB << 20)
        .map(|i| (i * 7919 % 251) as u8)
        .collect();
    let mut refused = 0;
    for _ in 0..ROUNDS {
        let mut batch = Vec::new();
        for (status, bytes) in &files {
            for endpoint in ["enhance", "denoise"] {
                batch.push((
                    *status,
                    submit(&client, &base, &key, endpoint, bytes.clone()),
                ));
            }
        }
        let (statuses, sends): (Vec<u16>, Vec<_>) = batch.into_iter().unzip();
        for (status, resp) in statuses.into_iter().zip(join_all(sends).await) {
            assert_eq!(resp.status().as_u16(), status);
            refused += 1;
        }
    }
    // Four large uploads of noise at once: 415 each, each buffered once.
    let big = (0..4).map(|_| submit(&client, &base, &key, "enhance", garbage.clone()));
    for resp in join_all(big).await {
        assert_eq!(resp.status(), 415);
        refused += 1;
    }
    let peak = peak_rss_mib(pid);
    eprintln!(
        "{refused} bad inputs refused; peak RSS {peak:.0} MiB (at start {at_start:.0} MiB, \
         uploads of {GARBAGE_MB} MiB)"
    );
    // Still serving.
    let ok = submit(
        &client,
        &base,
        &key,
        "enhance",
        std::fs::read(shared_png()).unwrap(),
    )
    .await;
    assert_eq!(ok.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    // The uploads themselves are 4 × 40 MiB; a decode of any bomb in the corpus would need
    // 10 GiB and more.
    assert!(
        peak < 4.0 * GARBAGE_MB as f64 * 2.5 + at_start,
        "peak RSS {peak:.0} MiB"
    );
}
