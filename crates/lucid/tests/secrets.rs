//! Keys, webhook secrets and link signatures never reach the logs or an error body, even at the
//! most verbose log level, while the server does everything that handles them.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts webhook deliveries on loopback, answering 200, and counts them.
async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut len = 0;
                // One request per connection is enough: read until the body has arrived.
                while let Ok(n) = conn.read(&mut buf[len..]).await {
                    if n == 0 {
                        break;
                    }
                    len += n;
                    let text = String::from_utf8_lossy(&buf[..len]);
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let body_len = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if len >= head_end + 4 + body_len {
                            break;
                        }
                    }
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_and_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "unlimited");
    let secret_out = lucid()
        .args(["keys", "webhook-secret", "test", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let webhook_secret = String::from_utf8(secret_out.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(webhook_secret.starts_with("whsec_"), "{webhook_secret}");

    let log_path = dir.path().join("server.log");
    let mut cmd = lucid();
    cmd.env("LUCID_LOG", "trace")
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()));
    let client = reqwest::Client::new();
    let (mut child, base) = start_with(
        cmd,
        &["--workers", "1", "--allow-private-urls"],
        dir.path(),
        &key,
        &client,
    )
    .await;
    let (hook, delivered) = webhook_receiver().await;

    // A job with a webhook, submitted with the key in X-API-Key, polled with it as a Bearer token.
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(std::fs::read(shared_png()).unwrap())
                .file_name("a.png"),
        )
        .text("webhook_url", hook);
    let id = submit_form(&client, &base, &key, "enhance", form).await;
    let started = Instant::now();
    loop {
        let s: serde_json::Value = client
            .get(format!("{base}/image/v1/status/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["status"] == "Completed" && delivered.load(std::sync::atomic::Ordering::SeqCst) >= 3 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A signed link, used and then altered.
    let links = get_json(&client, &base, &key, &format!("/image/v1/download/{id}")).await;
    let link = links["download_url"].as_str().unwrap();
    let signature = link.rsplit_once("signature=").unwrap().1.to_string();
    assert_eq!(client.get(link).send().await.unwrap().status(), 200);
    let forged = link.replace(&signature, &"0".repeat(signature.len()));
    let refused = client.get(&forged).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let refused_body = refused.text().await.unwrap();

    // Wrong keys, in both headers: refused without echoing what was sent.
    let wrong = format!("{key}x");
    let mut error_bodies = vec![refused_body];
    for request in [
        client
            .get(format!("{base}/image/v1/status/{id}"))
            .header("X-API-Key", &wrong),
        client
            .get(format!("{base}/image/v1/status/{id}"))
            .bearer_auth(&wrong),
    ] {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        error_bodies.push(resp.text().await.unwrap());
    }

    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains(&id),
        "the log is verbose enough to mean something: it names the job"
    );
    let secret_body = webhook_secret.trim_start_matches("whsec_");
    for (what, secret) in [
        ("API key", key.as_str()),
        ("wrong API key", wrong.as_str()),
        ("webhook secret", secret_body),
        ("link signature", signature.as_str()),
    ] {
        assert!(!log.contains(secret), "the log shows the {what}");
        for body in &error_bodies {
            assert!(
                !body.contains(secret),
                "an error body shows the {what}: {body}"
            );
        }
    }
}
