//! The memory budget: jobs that could never fit are refused at submit, and a job waits (its
//! lease kept, cancellable) while others hold the memory it needs.

use std::time::{Duration, Instant};

use lucid_server::worker::Worker;

use crate::helpers::*;

#[tokio::test]
async fn a_job_that_could_never_fit_is_refused_at_submit_and_nothing_is_kept() {
    let app = spawn_with(Options {
        memory_budget_mb: Some(256),
        ..Options::default()
    })
    .await;
    let key = app.key_with("metered", "submit,read", Some(1000)).await;
    // 64 MP back-projected: two whole f32 outputs, about 1.5 GB.
    let resp = app
        .submit_as(
            &key,
            "/image/v1/enhance/async",
            Some(png(100, 100)),
            &[
                ("output_width", "8000"),
                ("output_height", "8000"),
                ("upscaler", "lanczos"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("This job needs about 1.6 GB of memory")
            && message.contains("(0.3 GB)"),
        "{message}"
    );
    assert_eq!(app.balance_as(&key).await["reserved_credits"], 0);
    let list: serde_json::Value = app
        .get_as(&key, "/image/v1/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, serde_json::json!([]));
    // A job that fits is accepted and runs.
    let resp = app
        .submit_as(
            &key,
            "/image/v1/enhance/async",
            Some(png(100, 100)),
            &[("output_width", "400"), ("output_height", "400")],
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(app.run_worker().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waits_for_memory_others_hold_and_can_be_cancelled_meanwhile() {
    let app = spawn_with(Options {
        lease: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let memory = app.state.memory.clone();
    let start_worker = || {
        let worker = Worker::new(app.state.clone(), "waiting");
        tokio::spawn(async move { worker.run_until_idle().await.unwrap() })
    };
    let wait_for = |id: String, status: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            while app.status(&id).await["status"] != status {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "never {status}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    let held = memory.reserve(memory.total()).await;
    let id = app.submit_ok("denoise", png(300, 200), &[]).await;
    let worker = start_worker();
    wait_for(id.clone(), "Processing").await;
    // Several leases long: the lease is renewed while it waits, and nothing runs.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let status = app.status(&id).await;
    assert_eq!(
        (status["status"].as_str(), status["progress"].as_i64()),
        (Some("Processing"), Some(0))
    );
    assert!(!worker.is_finished());
    drop(held);
    assert_eq!(worker.await.unwrap(), 1);
    assert_eq!(app.status(&id).await["status"], "Completed");

    let held = memory.reserve(memory.total()).await;
    let id = app.submit_ok("denoise", png(300, 200), &[]).await;
    let worker = start_worker();
    wait_for(id.clone(), "Processing").await;
    let cancelled = Instant::now();
    let resp = app.cancel_as(&app.key, &id).await;
    assert!(resp.status().is_success());
    assert_eq!(worker.await.unwrap(), 1);
    assert!(cancelled.elapsed() < Duration::from_secs(5));
    assert_eq!(app.status(&id).await["status"], "Cancelled");
    drop(held);
    assert_eq!(memory.reserved(), 0, "a job kept its reservation");
}
