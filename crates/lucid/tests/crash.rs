//! Crash safety: the server is killed with SIGKILL again and again while it works through
//! hundreds of jobs, and started again on the same data folder. Afterwards every accepted job
//! has reached a terminal state, every job whose cancel was answered 200 is still Cancelled,
//! nothing stays reserved, and the credits spent are exactly those of the Completed jobs: no
//! job was lost, none was charged twice, none was charged for failing.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

const ROUNDS: usize = 8;
const JOBS_PER_ROUND: usize = 30;
const CREDITS: u64 = 1_000_000;

mod common;
use common::{balance, create_key, get_json, start, status, submit};

#[tokio::test]
async fn sigkill_loses_no_job_and_charges_each_completed_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), &CREDITS.to_string());
    let client = reqwest::Client::new();
    // Big enough that a kill often lands while jobs run.
    let image = lucid_imaging::codec::encode_test_png(480, 320);
    let mut accepted = Vec::new();
    let mut cancelled = HashSet::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let (mut kills, mut interrupted) = (0, 0);
    for round in 0..ROUNDS {
        let (mut child, base) = start(dir.path(), &key, &client, 2, 1).await;
        for i in 0..JOBS_PER_ROUND {
            let resp = submit(&client, &base, &key, "denoise", image.clone()).await;
            assert_eq!(resp.status(), 200, "round {round} job {i}");
            let id = resp.json::<Value>().await.unwrap()["process_id"]
                .as_str()
                .unwrap()
                .to_string();
            if i % 7 == 3 {
                let resp = client
                    .delete(format!("{base}/image/v1/cancel/{id}"))
                    .header("X-API-Key", &key)
                    .send()
                    .await
                    .unwrap();
                if resp.status() == 204 {
                    cancelled.insert(id.clone());
                }
            }
            accepted.push(id);
        }
        // Kill at a random moment while the round's jobs are being worked.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(50 + rng % 400)).await;
        let running = get_json(&client, &base, &key, "/image/v1/status?status=Processing").await;
        interrupted += running.as_array().unwrap().len();
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    // A last start works off everything that is left.
    let (mut child, base) = start(dir.path(), &key, &client, 2, 1).await;
    let started = Instant::now();
    let mut states: HashMap<String, Value> = HashMap::new();
    loop {
        states.clear();
        for id in &accepted {
            states.insert(id.clone(), status(&client, &base, &key, id).await);
        }
        let open = states
            .values()
            .filter(|s| {
                !matches!(
                    s["status"].as_str(),
                    Some("Completed" | "Failed" | "Cancelled")
                )
            })
            .count();
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{open} jobs still open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let count = |state: &str| states.values().filter(|s| s["status"] == state).count();
    for id in &cancelled {
        assert_eq!(states[id]["status"], "Cancelled", "{id} came back");
    }
    let spent: u64 = states
        .values()
        .filter(|s| s["status"] == "Completed")
        .map(|s| s["credits"].as_u64().unwrap())
        .sum();
    let b = balance(&client, &base, &key).await.unwrap();
    assert_eq!(b["reserved_credits"], 0, "{b}");
    assert_eq!(
        b["available_credits"].as_u64().unwrap(),
        CREDITS - spent,
        "{b}"
    );
    assert!(
        count("Completed") > accepted.len() / 2,
        "most jobs complete"
    );
    assert!(interrupted > 0, "no kill caught a job while it ran");
    assert!(!cancelled.is_empty());
    println!(
        "{kills} kills ({interrupted} jobs Processing when killed), {} jobs: {} completed, \
         {} failed, {} cancelled ({} by request)",
        accepted.len(),
        count("Completed"),
        count("Failed"),
        count("Cancelled"),
        cancelled.len()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
