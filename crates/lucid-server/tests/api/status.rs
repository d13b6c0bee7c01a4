//! Listing, pagination, deletion, credits across the job's life.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn list_is_newest_first_and_pages_cover_everything_once() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(app.submit_ok("lighting", png(8, 8), &[]).await);
    }
    ids.reverse();
    let plain: Vec<Value> = app
        .get_as(&app.key, "/image/v1/status")
        .await
        .json()
        .await
        .unwrap();
    let plain_ids: Vec<&str> = plain
        .iter()
        .map(|s| s["process_id"].as_str().unwrap())
        .collect();
    assert_eq!(plain_ids, ids);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/image/v1/status?paginated=true&limit=3".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", url_encode(c)));
        }
        let page: Value = app.get_as(&app.key, &path).await.json().await.unwrap();
        for s in page["data"].as_array().unwrap() {
            seen.push(s["process_id"].as_str().unwrap().to_string());
        }
        if page["pagination"]["has_next_page"] == false {
            assert!(page["pagination"].get("next_cursor").is_none());
            break;
        }
        cursor = Some(
            page["pagination"]["next_cursor"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen, ids);
    for bad in ["limit=0", "limit=101", "limit=x", "cursor=%21%21"] {
        let resp = app
            .get_as(&app.key, &format!("/image/v1/status?paginated=true&{bad}"))
            .await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn delete_status_only_removes_finished_jobs() {
    let app = spawn_app().await;
    let done = app.submit_ok("lighting", png(8, 8), &[]).await;
    app.run_worker().await;
    let pending = app.submit_ok("lighting", png(8, 8), &[]).await;
    assert_error(
        app.delete_as(&app.key, &format!("/image/v1/status/{pending}"))
            .await,
        409,
        "The process cannot be deleted as it has not finished.",
    )
    .await;
    let resp = app
        .delete_as(&app.key, &format!("/image/v1/status/{done}"))
        .await;
    assert_eq!(resp.status(), 204);
    assert_error(
        app.get_as(&app.key, &format!("/image/v1/status/{done}"))
            .await,
        404,
        "An image with the given process ID was not found.",
    )
    .await;
    assert_eq!(
        app.delete_as(&app.key, &format!("/image/v1/status/{done}"))
            .await
            .status(),
        404
    );
    let another = app.submit_ok("lighting", png(8, 8), &[]).await;
    app.cancel_as(&app.key, &another).await;
    let body: Value = app
        .delete_as(&app.key, "/image/v1/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["deleted_count"], 1);
    let list: Vec<Value> = app
        .get_as(&app.key, "/image/v1/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["process_id"], pending.as_str());
}

#[tokio::test]
async fn credits_are_reserved_charged_and_released() {
    let app = spawn_app().await;
    let key = app.key_with("metered", "submit,read,cancel", Some(3)).await;
    let balance = |v: Value| {
        (
            v["available_credits"].as_i64().unwrap(),
            v["reserved_credits"].as_i64().unwrap(),
            v["total_credits"].as_i64().unwrap(),
        )
    };
    assert_eq!(balance(app.balance_as(&key).await), (3, 0, 3));
    // 6000 × 4000 = 24 MP = 1 credit; 8000 × 4000 = 32 MP = 2 credits. Plain Lanczos: the
    // learned ×2 steps to 24 MP would take a minute of a test build for nothing this checks.
    let one = app
        .submit_as(
            &key,
            "/image/v1/enhance/async",
            Some(png(60, 40)),
            &[("output_width", "6000"), ("upscaler", "lanczos")],
        )
        .await;
    assert_eq!(one.status(), 200);
    let two = app
        .submit_as(
            &key,
            "/image/v1/enhance/async",
            Some(png(60, 30)),
            &[("output_width", "8000")],
        )
        .await;
    let two_id = two.json::<Value>().await.unwrap()["process_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(balance(app.balance_as(&key).await), (0, 3, 3));
    let three = app
        .submit_as(&key, "/image/v1/enhance/async", Some(png(60, 40)), &[])
        .await;
    assert_error(three, 402, "Insufficient funds.").await;
    app.cancel_as(&key, &two_id).await;
    assert_eq!(balance(app.balance_as(&key).await), (2, 1, 3));
    app.run_worker().await;
    assert_eq!(balance(app.balance_as(&key).await), (2, 0, 2));
}

#[tokio::test]
async fn a_job_longer_than_its_lease_keeps_it_by_renewing() {
    // A one-second lease and a job of several seconds whose progress moves at every tick:
    // the lease must be renewed all the same, or the reaper takes the job back mid-run.
    let app = spawn_with(Options {
        lease: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    // 24 MP: several seconds on two cores, past the 1.5 s the check below needs.
    let id = app
        .submit_ok("denoise", png(6000, 4000), &[("model", "Normal")])
        .await;
    let started = std::time::Instant::now();
    app.run_worker().await;
    let took = started.elapsed();
    assert!(
        took > Duration::from_millis(1500),
        "the job must outlast its lease for this test to mean anything (it took {took:?})"
    );
    assert_eq!(app.status(&id).await["status"], "Completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_a_running_job_back_without_using_an_attempt() {
    let app = spawn_with(Options {
        workers: 1,
        lease: Duration::from_secs(120),
        shutdown_grace: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    // 12 MP: still running when the restart comes.
    let id = app.submit_ok("denoise", png(4000, 3000), &[]).await;
    let started = std::time::Instant::now();
    while app.status(&id).await["status"] != "Processing" {
        assert!(started.elapsed() < Duration::from_secs(20), "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopping = std::time::Instant::now();
    let options = Options {
        workers: 0,
        ..app.options.clone()
    };
    let app = app.restart_with(options).await;
    // Back at once, not after the 120 s lease, and the interrupted attempt is not counted.
    assert!(stopping.elapsed() < Duration::from_secs(10));
    let job = app
        .state
        .jobs
        .job_any(lucid_core::ProcessId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (job.state, job.attempts, job.progress),
        (lucid_core::JobState::Pending, 0, 0)
    );
    assert_eq!(
        app.balance_as(&app.key).await["reserved_credits"],
        job.credits
    );
    // And it completes on the next worker.
    assert_eq!(app.run_worker().await, 1);
    assert_eq!(app.status(&id).await["status"], "Completed");
}
