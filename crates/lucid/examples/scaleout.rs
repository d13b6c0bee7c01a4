//! Scale-out throughput: small jobs per second as worker processes are added, and the time
//! from a submit's commit to a worker's claim. Runs the real binary (`--lucid`) as one API
//! node (`serve --workers 0`) and N worker nodes (`worker --workers 1`) on a throwaway
//! PostgreSQL + SeaweedFS S3 (`lucid_store::services`).
//!
//! ```text
//! cargo build --release -p lucid --bins --examples
//! target/release/examples/scaleout --lucid target/release/lucid --jobs 200 --workers 1,2,4
//! ```
//!
//! Throughput: all jobs are queued first, then the workers start; the clock runs from their
//! start until the last job is Completed (read from the database's announcements).
//! Submit → claim: with the workers idle, jobs are submitted one at a time; the latency is
//! from the job's `Pending` announcement (PostgreSQL `NOTIFY` at the submit's commit, which
//! is what wakes the workers) to its `Processing` announcement (a worker's claim committed),
//! both timestamped as they arrive by one listener.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::postgres::PgListener;

struct Args {
    lucid: String,
    jobs: usize,
    workers: Vec<usize>,
}

fn args() -> Args {
    let mut out = Args {
        lucid: "target/release/lucid".into(),
        jobs: 200,
        workers: vec![1, 2, 4],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--lucid" => out.lucid = value,
            "--jobs" => out.jobs = value.parse().expect("--jobs N"),
            "--workers" => {
                out.workers = value
                    .split(',')
                    .map(|n| n.parse().expect("--workers 1,2,4"))
                    .collect()
            }
            other => panic!("unknown flag {other}"),
        }
    }
    out
}

#[path = "../tests/common/cluster.rs"]
mod cluster;
use cluster::Cluster;

/// Submits a small ×2 enhance through the API node; answers the process id.
async fn submit(cluster: &Cluster, image: &[u8]) -> String {
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(image.to_vec()).file_name("small.png"),
        )
        .text("output_width", "512");
    let resp: Value = cluster
        .client
        .post(format!("{}/image/v1/enhance/async", cluster.api[0]))
        .header("X-API-Key", &cluster.key)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["process_id"]
        .as_str()
        .unwrap_or_else(|| panic!("submit refused: {resp}"))
        .to_string()
}

/// Job announcements `(state, id, arrival)`, read as they arrive by a task of their own.
async fn listen(cluster: &Cluster) -> Announcements {
    let mut listener = PgListener::connect(&cluster.database_url).await.unwrap();
    listener.listen("lucid_jobs").await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(note) = listener.recv().await {
            if let Some((state, id)) = note.payload().split_once(':') {
                let _ = tx.send((state.to_string(), id.to_string(), Instant::now()));
            }
        }
    });
    rx
}

type Announcements = tokio::sync::mpsc::UnboundedReceiver<(String, String, Instant)>;

/// Reads announcements until `until` returns true for one; answers when that one arrived.
async fn wait_for(
    announcements: &mut Announcements,
    mut until: impl FnMut(&str, &str) -> bool,
) -> Instant {
    loop {
        let (state, id, at) = tokio::time::timeout(Duration::from_secs(120), announcements.recv())
            .await
            .expect("an announcement within 2 minutes")
            .expect("the listener is running");
        if until(&state, &id) {
            return at;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args = args();
    println!(
        "{} small jobs (256×256 PNG → 512×512 JPEG, enhance Standard V2) per run; {} cores",
        args.jobs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| worker processes | jobs/s | scaling vs 1 | submit→claim p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let image = lucid_imaging::codec::encode_test_png(256, 256);
    let mut base_rate = None;
    for &n in &args.workers {
        // Throughput: queue everything, then start the workers.
        let mut cluster = Cluster::start(args.lucid.as_ref(), "unlimited")
            .await
            .expect("PostgreSQL (initdb, postgres) and SeaweedFS (weed) must be installed");
        cluster.start_api().await;
        let mut listener = listen(&cluster).await;
        let mut pending = HashSet::new();
        for _ in 0..args.jobs {
            pending.insert(submit(&cluster, &image).await);
        }
        let started = Instant::now();
        for _ in 0..n {
            cluster.start_worker(&[]);
        }
        let done = wait_for(&mut listener, |state, id| {
            if state == "Completed" {
                pending.remove(id);
            }
            pending.is_empty()
        })
        .await;
        let rate = args.jobs as f64 / (done - started).as_secs_f64();
        let scaling = rate / *base_rate.get_or_insert(rate);

        // Submit → claim, one job at a time, workers idle.
        let mut latencies = Vec::new();
        for _ in 0..50 {
            let id = submit(&cluster, &image).await;
            let queued =
                wait_for(&mut listener, |state, got| state == "Pending" && got == id).await;
            let claimed = wait_for(&mut listener, |state, got| {
                state == "Processing" && got == id
            })
            .await;
            latencies.push((claimed - queued).as_secs_f64() * 1000.0);
            wait_for(&mut listener, |state, got| {
                state == "Completed" && got == id
            })
            .await;
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "| {n} | {rate:.1} | {scaling:.2} | {:.1} | {:.1} |",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }
}
