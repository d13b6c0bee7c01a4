//! What the binary's tests share: the command, a free port, a started server and its answers.
// Each test file uses its own subset.
#![allow(dead_code)]

pub mod cluster;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `lucid` binary under test, logging warnings only.
pub fn lucid() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lucid"));
    cmd.env("LUCID_LOG", "warn");
    cmd
}

/// A child process killed when dropped, so a failing test leaves no server behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Creates a key with `credits` ("unlimited" or a number) in the data folder.
pub fn create_key(dir: &Path, credits: &str) -> String {
    let out = lucid()
        .args([
            "keys",
            "create",
            "--name",
            "test",
            "--credits",
            credits,
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts `lucid serve` on the data folder with `workers` workers and a lease of `lease`
/// seconds (short, so a killed worker's jobs come back quickly), and waits until it answers.
pub async fn start(
    dir: &Path,
    key: &str,
    client: &reqwest::Client,
    workers: usize,
    lease: u64,
) -> (Child, String) {
    let mut cmd = lucid();
    cmd.stderr(Stdio::null());
    let (workers, lease) = (workers.to_string(), lease.to_string());
    let flags = ["--workers", &workers, "--lease-seconds", &lease];
    start_with(cmd, &flags, dir, key, client).await
}

/// A `lucid serve` on a fresh data folder with one unlimited key, killed when dropped.
pub struct Served {
    pub dir: tempfile::TempDir,
    pub key: String,
    pub http: reqwest::Client,
    pub base: String,
    _server: KillOnDrop,
}

/// Starts [`Served`] with `workers` workers (0: jobs stay Pending).
pub async fn serve_fresh(workers: usize) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "unlimited");
    let http = reqwest::Client::new();
    let (server, base) = start(dir.path(), &key, &http, workers, 30).await;
    Served {
        dir,
        key,
        http,
        base,
        _server: KillOnDrop(server),
    }
}

/// Starts `cmd` (the binary with its environment and stderr) as `lucid serve` with `flags`
/// on a free port over the data folder, and waits until it answers.
pub async fn start_with(
    mut cmd: Command,
    flags: &[&str],
    dir: &Path,
    key: &str,
    client: &reqwest::Client,
) -> (Child, String) {
    let port = free_port();
    let child = cmd
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(flags)
        .args(["--rate-limit", "100000/s,burst=100000", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while balance(client, &base, key).await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

/// Sends the request until the server answers (it may still be starting); panics after 20 s.
pub async fn when_up(request: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
    let started = Instant::now();
    loop {
        match request().send().await {
            Ok(resp) => return resp,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "no answer: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

pub async fn balance(client: &reqwest::Client, base: &str, key: &str) -> Option<Value> {
    let resp = client
        .get(format!("{base}/account/v1/credits/balance"))
        .header("X-API-Key", key)
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// `GET path` with the key, answering the JSON body.
pub async fn get_json(client: &reqwest::Client, base: &str, key: &str, path: &str) -> Value {
    client
        .get(format!("{base}{path}"))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn status(client: &reqwest::Client, base: &str, key: &str, id: &str) -> Value {
    get_json(client, base, key, &format!("/image/v1/status/{id}")).await
}

/// A photograph from the shared test images.
pub fn shared_png() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/images/camera.png")
}

/// Submits a form to an async endpoint, expecting 200; answers the process id.
pub async fn submit_form(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    endpoint: &str,
    form: reqwest::multipart::Form,
) -> String {
    let resp = client
        .post(format!("{base}/image/v1/{endpoint}/async"))
        .header("X-API-Key", key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.json::<Value>().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["process_id"].as_str().unwrap().to_string()
}

/// Submits `image` to an async endpoint and answers the response.
pub async fn submit(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    endpoint: &str,
    image: Vec<u8>,
) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(image).file_name("a.png"),
    );
    client
        .post(format!("{base}/image/v1/{endpoint}/async"))
        .header("X-API-Key", key)
        .multipart(form)
        .send()
        .await
        .unwrap()
}
