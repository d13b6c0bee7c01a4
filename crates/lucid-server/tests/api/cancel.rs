//! The Cancel endpoint, exactly as seed-cancel.md says: a table of job state × caller, a running
//! job that stops promptly, and cancel racing completion with one winner.

use std::time::Duration;

use lucid_core::ProcessId;
use lucid_store::Outcome;
use serde_json::Value;

use crate::helpers::*;

const NOT_CANCELLABLE: &str =
    "The process cannot be cancelled as it is not in a cancellable state.";
const NOT_FOUND: &str = "An image with the given process ID was not found.";

/// Puts a fresh job of `owner` into `state` and answers its id.
async fn job_in_state(app: &TestApp, owner: &str, state: &str) -> String {
    let resp = app
        .submit_as(owner, "/image/v1/enhance/async", Some(png(16, 16)), &[])
        .await;
    let id = resp.json::<Value>().await.unwrap()["process_id"]
        .as_str()
        .unwrap()
        .to_string();
    let pid = ProcessId::parse(&id).unwrap();
    let jobs = &app.state.jobs;
    match state {
        "Pending" => {}
        "Processing" => {
            assert_eq!(
                jobs.claim("table", Duration::from_secs(60))
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                pid
            );
        }
        "Completed" => assert_eq!(app.run_worker().await, 1),
        "Failed" => {
            jobs.claim("table", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            jobs.finalize(pid, "table", Outcome::Failed("test".into()))
                .await
                .unwrap();
        }
        "Cancelled" => assert_eq!(app.cancel_as(owner, &id).await.status(), 204),
        _ => unreachable!(),
    }
    assert_eq!(app.status_as(owner, &id).await["status"], state, "setup");
    id
}

#[tokio::test]
async fn cancel_table_state_by_caller() {
    let app = spawn_app().await;
    let owner = app
        .key_with("owner", "submit,read,cancel,delete", Some(100))
        .await;
    let other = app
        .key_with("other", "submit,read,cancel,delete", Some(100))
        .await;
    let no_scope = app.key_with("no-cancel", "submit,read,delete", None).await;
    // (state, caller, status, message, final state, credits charged)
    type Row = (
        &'static str,
        &'static str,
        u16,
        Option<&'static str>,
        &'static str,
        i64,
    );
    let table: Vec<Row> = vec![
        ("Pending", "owner", 204, None, "Cancelled", 0),
        ("Processing", "owner", 204, None, "Cancelled", 0),
        (
            "Completed",
            "owner",
            409,
            Some(NOT_CANCELLABLE),
            "Completed",
            1,
        ),
        ("Failed", "owner", 409, Some(NOT_CANCELLABLE), "Failed", 0),
        (
            "Cancelled",
            "owner",
            409,
            Some(NOT_CANCELLABLE),
            "Cancelled",
            0,
        ),
        ("Pending", "other", 404, Some(NOT_FOUND), "Pending", 0),
        ("Processing", "other", 404, Some(NOT_FOUND), "Processing", 0),
        ("Completed", "other", 404, Some(NOT_FOUND), "Completed", 1),
        ("Pending", "no-scope", 403, Some("Forbidden"), "Pending", 0),
        (
            "Completed",
            "no-scope",
            403,
            Some("Forbidden"),
            "Completed",
            1,
        ),
        ("Pending", "no-key", 401, Some("Unauthorized"), "Pending", 0),
        (
            "Processing",
            "no-key",
            401,
            Some("Unauthorized"),
            "Processing",
            0,
        ),
    ];
    for (state, caller, status, message, final_state, charged) in table {
        // Leave no Pending job behind, so each row's worker step claims only its own job.
        for job in app
            .get_as(&owner, "/image/v1/status")
            .await
            .json::<Vec<Value>>()
            .await
            .unwrap()
        {
            if job["status"] == "Pending" || job["status"] == "Processing" {
                app.cancel_as(&owner, job["process_id"].as_str().unwrap())
                    .await;
            }
        }
        let before: Value = app.balance_as(&owner).await;
        let id = job_in_state(&app, &owner, state).await;
        let key = match caller {
            "owner" => owner.clone(),
            "other" => other.clone(),
            "no-scope" => no_scope.clone(),
            _ => String::new(),
        };
        let resp = if caller == "no-key" {
            app.client
                .delete(app.url(&format!("/image/v1/cancel/{id}")))
                .send()
                .await
                .unwrap()
        } else {
            app.cancel_as(&key, &id).await
        };
        let row = format!("{state} × {caller}");
        match message {
            None => {
                assert_eq!(resp.status().as_u16(), status, "{row}");
                assert!(
                    resp.bytes().await.unwrap().is_empty(),
                    "{row}: 204 has no body"
                );
            }
            Some(m) => assert_error(resp, status, m).await,
        }
        let s = app.status_as(&owner, &id).await;
        assert_eq!(s["status"], final_state, "{row}");
        let after: Value = app.balance_as(&owner).await;
        let spent =
            before["total_credits"].as_i64().unwrap() - after["total_credits"].as_i64().unwrap();
        assert_eq!(spent, charged, "{row}: credits charged");
        if final_state != "Pending" && final_state != "Processing" {
            assert_eq!(
                after["reserved_credits"], 0,
                "{row}: nothing stays reserved"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_stops_promptly_and_leaves_no_output() {
    let app = spawn_with(Options {
        workers: 1,
        ..Options::default()
    })
    .await;
    // A large denoise takes seconds; the cancel must not wait for it.
    let id = app
        .submit_ok("denoise", png(3000, 2000), &[("model", "Extreme")])
        .await;
    let pid = ProcessId::parse(&id).unwrap();
    // Progress moves while the job runs: wait until it is part-way.
    let mut progress = 0;
    for _ in 0..500 {
        let s = app.status(&id).await;
        progress = s["progress"].as_u64().unwrap();
        if s["status"] == "Processing" && progress > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = app.status(&id).await;
    assert_eq!(s["status"], "Processing");
    assert!(progress > 0 && progress < 100, "progress {progress}");
    let started = std::time::Instant::now();
    assert_eq!(app.cancel_as(&app.key, &id).await.status(), 204);
    assert_eq!(app.status(&id).await["status"], "Cancelled");
    // The worker lets go of the job within a fraction of a second.
    while app.state.running.cancel(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the pipeline did not stop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = app.state.jobs.job_any(pid).await.unwrap().unwrap();
    assert_eq!(
        app.state.blobs.size(&job.output_blob()).await.unwrap(),
        None,
        "no output left behind"
    );
    assert_error(
        app.get_as(&app.key, &format!("/image/v1/download/{id}"))
            .await,
        409,
        "The output image is not ready. Wait until the process has completed.",
    )
    .await;
    let balance = app.balance_as(&app.key).await;
    assert_eq!(balance["reserved_credits"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_completion_has_one_winner() {
    let app = spawn_with(Options {
        workers: 1,
        ..Options::default()
    })
    .await;
    let key = app
        .key_with("racer", "submit,read,cancel", Some(10_000))
        .await;
    let mut outcomes = (0, 0);
    for i in 0..60u64 {
        let resp = app
            .submit_as(&key, "/image/v1/sharpen/async", Some(png(64, 64)), &[])
            .await;
        let id = resp.json::<Value>().await.unwrap()["process_id"]
            .as_str()
            .unwrap()
            .to_string();
        // Spread the cancels over the job's life: before, during and after processing.
        tokio::time::sleep(Duration::from_micros((i * 7919) % 30_000)).await;
        let status = app.cancel_as(&key, &id).await.status().as_u16();
        let final_state = loop {
            let s = app
                .get_as(&key, &format!("/image/v1/status/{id}"))
                .await
                .json::<Value>()
                .await
                .unwrap();
            let st = s["status"].as_str().unwrap().to_string();
            if st != "Pending" && st != "Processing" {
                break st;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let job = app
            .state
            .jobs
            .job_any(ProcessId::parse(&id).unwrap())
            .await
            .unwrap()
            .unwrap();
        // Let a worker that lost the race finish deleting its output.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let output = app.state.blobs.size(&job.output_blob()).await.unwrap();
        match status {
            204 => {
                assert_eq!(final_state, "Cancelled");
                assert_eq!(output, None, "a cancelled job keeps no output");
                outcomes.0 += 1;
            }
            409 => {
                assert_eq!(final_state, "Completed");
                assert!(output.is_some());
                outcomes.1 += 1;
            }
            other => panic!("unexpected cancel answer {other}"),
        }
    }
    let balance = app.balance_as(&key).await;
    assert_eq!(balance["reserved_credits"], 0);
    assert_eq!(
        balance["total_credits"],
        10_000 - outcomes.1,
        "exactly the completed jobs were charged"
    );
    assert!(
        outcomes.0 > 0 && outcomes.1 > 0,
        "both outcomes occurred: {outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cancels_at_once_have_one_winner() {
    let app = spawn_app().await;
    let key = app.key_with("twice", "submit,read,cancel", Some(5)).await;
    for round in 0..100 {
        let resp = app
            .submit_as(&key, "/image/v1/enhance/async", Some(png(16, 16)), &[])
            .await;
        assert_eq!(resp.status(), 200, "round {round}");
        let id = resp.json::<Value>().await.unwrap()["process_id"]
            .as_str()
            .unwrap()
            .to_string();
        let (a, b) = tokio::join!(app.cancel_as(&key, &id), app.cancel_as(&key, &id));
        let mut codes = [a.status().as_u16(), b.status().as_u16()];
        codes.sort();
        assert_eq!(codes, [204, 409], "round {round}");
        let balance = app.balance_as(&key).await;
        assert_eq!(
            (&balance["reserved_credits"], &balance["total_credits"]),
            (&Value::from(0), &Value::from(5)),
            "round {round}: credits released once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_never_overdraw_a_key() {
    let app = spawn_app().await;
    let key = app.key_with("limited", "submit,read", Some(40)).await;
    let submits =
        (0..200).map(|_| app.submit_as(&key, "/image/v1/enhance/async", Some(png(16, 16)), &[]));
    let mut codes = std::collections::BTreeMap::new();
    for resp in futures::future::join_all(submits).await {
        *codes.entry(resp.status().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(codes, [(200, 40), (402, 160)].into_iter().collect());
    let balance = app.balance_as(&key).await;
    assert_eq!(balance["available_credits"], 0);
    assert_eq!(balance["reserved_credits"], 40);
}
