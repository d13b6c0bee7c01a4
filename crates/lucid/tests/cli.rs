//! The binary's command-line contract (DESIGN.md): `keys` prints only what it promises,
//! `serve` answers on the address it is given and exits 0 on SIGTERM, `process` runs offline.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{KillOnDrop, create_key, free_port, lucid, status, submit_form, when_up};

fn is_key(s: &str) -> bool {
    s.len() == 70 && s.starts_with("lucid_") && s[6..].chars().all(|c| c.is_ascii_hexdigit())
}

fn keys(dir: &Path, args: &[&str]) -> std::process::Output {
    lucid()
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn keys_create_prints_only_the_key_and_list_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = keys(
        dir.path(),
        &[
            "create",
            "--name",
            "ci",
            "--scopes",
            "read,submit",
            "--credits",
            "25",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let key = stdout.trim();
    assert!(is_key(key), "{stdout:?}");
    let list = String::from_utf8(keys(dir.path(), &["list"]).stdout).unwrap();
    assert!(
        list.contains("ci") && list.contains("submit,read") && list.contains("25"),
        "{list}"
    );
    assert!(!list.contains(key));
    assert!(
        !keys(dir.path(), &["create", "--name", "ci"])
            .status
            .success(),
        "duplicate names are refused"
    );
    let secret = String::from_utf8(keys(dir.path(), &["webhook-secret", "ci"]).stdout).unwrap();
    assert!(secret.trim().starts_with("whsec_"), "{secret:?}");
    assert_eq!(
        String::from_utf8(keys(dir.path(), &["webhook-secret", "ci"]).stdout).unwrap(),
        secret
    );
    let rotated =
        String::from_utf8(keys(dir.path(), &["webhook-secret", "ci", "--rotate"]).stdout).unwrap();
    assert!(rotated.trim().starts_with("whsec_") && rotated != secret);
    assert!(keys(dir.path(), &["revoke", "ci"]).status.success());
    assert!(
        String::from_utf8(keys(dir.path(), &["list"]).stdout)
            .unwrap()
            .contains("revoked")
    );
    assert!(!keys(dir.path(), &["revoke", "ci"]).status.success());
    assert!(
        !keys(dir.path(), &["create", "--name", "x", "--scopes", "admin"])
            .status
            .success()
    );
}

#[tokio::test]
async fn serve_creates_a_key_serves_jobs_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = lucid()
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let key = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(is_key(&key), "{line:?}");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(lucid_imaging::codec::encode_test_png(32, 16))
                .file_name("a.png"),
        )
        .text("output_width", "64");
    let id = submit_form(&client, &base, &key, "enhance", form).await;
    let started = Instant::now();
    loop {
        let s = status(&client, &base, &key, &id).await;
        if s["status"] == "Completed" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    // A second start finds the key and creates none.
    let out = lucid()
        .args(["keys", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        2,
        "header and the one key"
    );
}

#[test]
fn process_runs_a_job_offline() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    let output = dir.path().join("out.jpg");
    std::fs::write(&input, lucid_imaging::codec::encode_test_png(40, 20)).unwrap();
    let out = lucid()
        .args([
            "process",
            "--endpoint",
            "enhance",
            "--model",
            "CGI",
            "--set",
            "output_width=80",
        ])
        .args([&input, &output])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = lucid_imaging::codec::probe(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!((info.format, info.width, info.height), ("jpeg", 80, 40));
    let bad = lucid()
        .args(["process", "--endpoint", "enhance", "--model", "Nope"])
        .args([&input, &output])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test]
async fn a_worker_node_serves_only_the_operators_routes() {
    let dir = tempfile::tempdir().unwrap();
    create_key(dir.path(), "unlimited");
    let port = free_port();
    let _worker = KillOnDrop(
        lucid()
            .args(["worker", "--workers", "1", "--metrics-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let metrics = when_up(|| client.get(format!("{base}/metrics")))
        .await
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("lucid_queue_depth 0"), "{metrics}");
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // The API is not served here.
    let api = client
        .get(format!("{base}/image/v1/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "unlimited");
    let port = free_port();
    let mut server = lucid()
        .env("LUCID_LOG", "info")
        .args(["--log-format", "json", "serve", "--workers", "0", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let answer = when_up(|| {
        client
            .get(format!("{base}/image/v1/status"))
            .header("X-API-Key", &key)
            .header("X-Request-ID", "trace-7f3a")
    })
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-request-id"], "trace-7f3a");
    assert!(
        Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut logs).unwrap();
    server.wait().unwrap();
    let answered: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &serde_json::Value| v["fields"]["message"] == "answered")
        .collect();
    let ours = answered
        .iter()
        .find(|v| v["span"]["request_id"] == "trace-7f3a")
        .unwrap_or_else(|| panic!("no answered line for the request id in\n{logs}"));
    assert_eq!(ours["fields"]["status"], 200);
    assert_eq!(ours["span"]["route"], "/image/v1/status");
}
