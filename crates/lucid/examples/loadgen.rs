//! Load generator: starts a `lucid serve` (the binary given by `--lucid`) on a fresh data folder,
//! drives mixed traffic at it from many concurrent clients for a fixed time, and reports
//! throughput, latency per endpoint, answers by class, jobs completed and the server's peak
//! memory. Exits non-zero on any 5xx or transport error.
//!
//! ```text
//! cargo build --release -p lucid --bins --examples
//! target/release/examples/loadgen --lucid target/release/lucid --clients 32 --seconds 30
//! ```
//!
//! Each client loops over a weighted mix: submit a small image (enhance, denoise or lighting,
//! async), poll a status, list jobs, cancel a job it submitted, fetch a finished job's download
//! link and then the file, read the balance.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Args {
    lucid: String,
    clients: usize,
    seconds: u64,
    workers: Option<usize>,
}

fn args() -> Args {
    let mut out = Args {
        lucid: "target/release/lucid".into(),
        clients: 32,
        seconds: 30,
        workers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--lucid" => out.lucid = value,
            "--clients" => out.clients = value.parse().expect("--clients N"),
            "--seconds" => out.seconds = value.parse().expect("--seconds N"),
            "--workers" => out.workers = Some(value.parse().expect("--workers N")),
            other => panic!("unknown flag {other}"),
        }
    }
    out
}

/// Latencies (µs) and answers per endpoint.
#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<u64>>,
    classes: BTreeMap<&'static str, [u64; 4]>, // 2xx, 4xx, 5xx, transport error
}

impl Stats {
    fn record(&mut self, endpoint: &'static str, started: Instant, status: Option<u16>) {
        self.latencies
            .entry(endpoint)
            .or_default()
            .push(started.elapsed().as_micros() as u64);
        let class = match status {
            Some(200..=399) => 0,
            Some(400..=499) => 1,
            Some(_) => 2,
            None => 3,
        };
        self.classes.entry(endpoint).or_default()[class] += 1;
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    image: Vec<u8>,
    stats: Arc<Mutex<Stats>>,
    mine: Vec<String>,
}

impl Client {
    async fn send(&self, endpoint: &'static str, req: reqwest::RequestBuilder) -> Option<Value> {
        let started = Instant::now();
        let result = req.header("X-API-Key", &self.key).send().await;
        let (status, body) = match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.bytes().await.ok();
                (Some(status), body.filter(|_| status < 300))
            }
            Err(_) => (None, None),
        };
        self.stats.lock().unwrap().record(endpoint, started, status);
        body.and_then(|b| serde_json::from_slice(&b).ok())
    }

    async fn step(&mut self, n: u64) {
        let pick = n % 20;
        let any_job =
            (!self.mine.is_empty()).then(|| self.mine[n as usize % self.mine.len()].clone());
        match (pick, any_job) {
            (0..=5, _) | (_, None) => {
                let endpoint = ["enhance", "denoise", "lighting"][n as usize % 3];
                let form = reqwest::multipart::Form::new().part(
                    "image",
                    reqwest::multipart::Part::bytes(self.image.clone()).file_name("load.png"),
                );
                let req = self
                    .http
                    .post(format!("{}/image/v1/{endpoint}/async", self.base))
                    .multipart(form);
                if let Some(id) = self
                    .send("submit", req)
                    .await
                    .and_then(|v| v["process_id"].as_str().map(str::to_string))
                {
                    self.mine.push(id);
                    if self.mine.len() > 50 {
                        self.mine.remove(0);
                    }
                }
            }
            (6..=12, Some(id)) => {
                let req = self.http.get(format!("{}/image/v1/status/{id}", self.base));
                self.send("status", req).await;
            }
            (13, _) => {
                let req = self
                    .http
                    .get(format!("{}/image/v1/status?limit=20", self.base));
                self.send("list", req).await;
            }
            (14, Some(id)) => {
                let req = self
                    .http
                    .delete(format!("{}/image/v1/cancel/{id}", self.base));
                self.send("cancel", req).await;
            }
            (15..=18, Some(id)) => {
                let req = self
                    .http
                    .get(format!("{}/image/v1/download/{id}", self.base));
                if let Some(url) = self
                    .send("download link", req)
                    .await
                    .and_then(|v| v["download_url"].as_str().map(str::to_string))
                {
                    self.send("file", self.http.get(url)).await;
                }
            }
            _ => {
                let req = self
                    .http
                    .get(format!("{}/account/v1/credits/balance", self.base));
                self.send("balance", req).await;
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let key = Command::new(&args.lucid)
        .args([
            "keys",
            "create",
            "--name",
            "load",
            "--credits",
            "unlimited",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run lucid keys create");
    let key = String::from_utf8(key.stdout).unwrap().trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = Command::new(&args.lucid);
    serve
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--rate-limit", "1000000/s,burst=1000000", "--data-dir"])
        .arg(dir.path())
        .env("LUCID_LOG", "warn")
        .stdout(Stdio::null());
    if let Some(w) = args.workers {
        serve.args(["--workers", &w.to_string()]);
    }
    let mut server = serve.spawn().expect("start lucid serve");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = Instant::now();
    while http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .is_err()
    {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stats = Arc::new(Mutex::new(Stats::default()));
    let image = lucid_imaging::codec::encode_test_png(96, 64);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let clients: Vec<_> = (0..args.clients)
        .map(|c| {
            let mut client = Client {
                http: http.clone(),
                base: base.clone(),
                key: key.clone(),
                image: image.clone(),
                stats: stats.clone(),
                mine: Vec::new(),
            };
            tokio::spawn(async move {
                let mut n = c as u64 * 7;
                while Instant::now() < deadline {
                    client.step(n).await;
                    n += 1;
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let elapsed = args.seconds as f64;
    let list: Value = http
        .get(format!("{base}/image/v1/status?limit=100000"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    let mut states = BTreeMap::new();
    for job in list.as_array().into_iter().flatten() {
        *states
            .entry(job["status"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    let peak = peak_rss_mib(server.id());
    server.kill().ok();
    server.wait().ok();

    let stats = stats.lock().unwrap();
    let total: usize = stats.latencies.values().map(Vec::len).sum();
    println!(
        "{} clients, {:.0} s: {total} requests, {:.0} req/s; server peak RSS {peak:.0} MiB",
        args.clients,
        elapsed,
        total as f64 / elapsed
    );
    println!("jobs by state at the end: {states:?}");
    println!("| endpoint | requests | p50 ms | p99 ms | 2xx/3xx | 4xx | 5xx | errors |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut failures = 0;
    for (endpoint, lat) in &stats.latencies {
        let mut lat = lat.clone();
        lat.sort_unstable();
        let c = stats.classes[endpoint];
        failures += c[2] + c[3];
        println!(
            "| {endpoint} | {} | {:.1} | {:.1} | {} | {} | {} | {} |",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            c[0],
            c[1],
            c[2],
            c[3]
        );
    }
    if failures > 0 {
        eprintln!("{failures} server errors or failed requests");
        std::process::exit(1);
    }
}
