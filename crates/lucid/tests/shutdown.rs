//! Graceful shutdown: on SIGTERM `lucid serve` answers new submits 503 while its workers finish
//! the jobs they hold, starts no other job, keeps answering status, and exits 0; the jobs it did
//! not start are still there, Pending, for the next start.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{create_key, start, status, submit};

#[tokio::test]
async fn sigterm_finishes_running_work_refuses_new_work_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "unlimited");
    let client = reqwest::Client::new();
    let (mut child, base) = start(dir.path(), &key, &client, 1, 10).await;
    // Each takes on the order of a second, so the drain is long enough to observe.
    let image = lucid_imaging::codec::encode_test_png(2000, 1500);
    let mut ids = Vec::new();
    for _ in 0..4 {
        let resp = submit(&client, &base, &key, "denoise", image.clone()).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        ids.push(body["process_id"].as_str().unwrap().to_string());
    }
    let started = Instant::now();
    let running = loop {
        let mut running = None;
        for id in &ids {
            if status(&client, &base, &key, id).await["status"] == "Processing" {
                running = Some(id.clone());
            }
        }
        if let Some(id) = running {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = submit(&client, &base, &key, "denoise", image.clone()).await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 503, "{body}");
    assert_eq!(
        status(&client, &base, &key, &running).await["status"],
        "Processing",
        "status still answers while draining"
    );
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");

    let (mut child, base) = start(dir.path(), &key, &client, 1, 10).await;
    let states: Vec<Value> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(status(&client, &base, &key, id).await);
        }
        v
    };
    for (id, s) in ids.iter().zip(&states) {
        if *id == running {
            assert_eq!(
                s["status"], "Completed",
                "the running job finished in the grace period"
            );
        } else {
            assert_ne!(s["status"], "Completed", "a job started after SIGTERM: {s}");
        }
    }
    // The rest complete on the new start.
    let started = Instant::now();
    for id in &ids {
        while status(&client, &base, &key, id).await["status"] != "Completed" {
            let s = status(&client, &base, &key, id).await;
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{id} never completed: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
