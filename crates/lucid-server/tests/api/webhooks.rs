//! Webhooks against a real HTTP receiver, idempotent submits, long polls, event streams and
//! list filters.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::helpers::*;

/// A webhook receiver on a loopback port: records every request and answers the queued
/// statuses in turn (200 once the queue is empty).
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start_on(listener: tokio::net::TcpListener) -> (Receiver, String) {
        let r = Receiver::default();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state
                        .seen
                        .lock()
                        .unwrap()
                        .push((headers, serde_json::from_str(&body).unwrap()));
                    let code = state.answers.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    async fn start() -> (Receiver, String) {
        Self::start_on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    fn answer(&self, codes: &[u16]) {
        self.answers.lock().unwrap().extend(codes);
    }

    fn seen(&self) -> Vec<(HeaderMap, Value)> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived (or fails after 10 s).
    async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, Value)> {
        let started = Instant::now();
        while self.seen().len() < n {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "only {} of {n} webhooks arrived",
                self.seen().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.seen()
    }
}

fn verify(secret: &str, headers: &HeaderMap, body: &Value) -> bool {
    let id = headers["webhook-id"].to_str().unwrap();
    let ts: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = headers["webhook-signature"].to_str().unwrap();
    sig == lucid_server::webhook::sign(secret, id, ts, &body.to_string())
}

async fn secret_of(app: &TestApp, key: &str) -> String {
    let id = app.state.jobs.authenticate(key).await.unwrap().unwrap().id;
    app.state.jobs.webhook_secret(id, false).await.unwrap()
}

#[tokio::test]
async fn every_status_change_is_delivered_in_order_and_signed() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start().await;
    let id = app
        .submit_ok("enhance", png(16, 16), &[("webhook_url", &url)])
        .await;
    app.run_worker().await;
    let seen = receiver.wait_for(3).await;
    let statuses: Vec<&str> = seen
        .iter()
        .map(|(_, b)| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Pending", "Processing", "Completed"]);
    let secret = secret_of(&app, &app.key).await;
    let mut ids = Vec::new();
    for (headers, body) in &seen {
        assert_eq!(body["process_id"], id.as_str());
        assert_eq!(
            headers["webhook-id"].to_str().unwrap(),
            body["notification_id"].as_str().unwrap()
        );
        assert_eq!(
            body["notification_id"].as_str().unwrap().len(),
            26,
            "a ULID"
        );
        assert!(verify(&secret, headers, body), "signature of {body}");
        for field in [
            "creation_time",
            "modification_time",
            "progress",
            "input_download_url",
            "input_head_url",
        ] {
            assert!(body.get(field).is_some(), "{field} in {body}");
        }
        assert_eq!(
            body.get("download_url").is_some(),
            body["status"] == "Completed"
        );
        ids.push(body["notification_id"].as_str().unwrap().to_string());
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ULIDs sort in delivery order"
    );
    let completed = &seen[2].1;
    assert_eq!(completed["progress"], 100);
    let output = app
        .client
        .get(completed["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        output.status(),
        200,
        "the webhook's link downloads the output"
    );
    // A forged signature does not verify.
    assert!(!verify(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        &seen[0].0,
        &seen[0].1
    ));
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_id_and_client_errors_are_not() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start().await;
    receiver.answer(&[503, 500]);
    let id = app
        .submit_ok("enhance", png(16, 16), &[("webhook_url", &url)])
        .await;
    let seen = receiver.wait_for(3).await;
    let ids: Vec<&str> = seen
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "retries keep the notification id"
    );
    assert!(
        seen.iter()
            .all(|(_, b)| b["status"] == "Pending" && b["process_id"] == id.as_str())
    );

    let (dropping, url) = Receiver::start().await;
    dropping.answer(&[404, 404, 404]);
    app.submit_ok("enhance", png(16, 16), &[("webhook_url", &url)])
        .await;
    dropping.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(dropping.seen().len(), 1, "a 4xx is not retried");
}

#[tokio::test]
async fn notifications_survive_a_restart() {
    let app = spawn_with(Options {
        webhook_base_delay: Duration::from_millis(200),
        ..Options::default()
    })
    .await;
    // A port with nobody listening: the first attempts are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hook");
    let id = app
        .submit_ok("lighting", png(16, 16), &[("webhook_url", &url)])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = app.restart().await;
    let (receiver, _) =
        Receiver::start_on(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    let seen = receiver.wait_for(1).await;
    assert_eq!(seen[0].1["process_id"], id.as_str());
    assert_eq!(seen[0].1["status"], "Pending");
    app.run_worker().await;
    let seen = receiver.wait_for(3).await;
    let statuses: Vec<&str> = seen
        .iter()
        .map(|(_, b)| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["Pending", "Processing", "Completed"],
        "each sent once, in order"
    );
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_first_job() {
    let app = spawn_app().await;
    let key = app.key_with("idem", "submit,read", Some(10)).await;
    let send = |fields: Vec<(&'static str, &'static str)>, idem: &'static str| {
        let form = fields.into_iter().fold(
            reqwest::multipart::Form::new().part(
                "image",
                reqwest::multipart::Part::bytes(png(16, 16)).file_name("a.png"),
            ),
            |f, (k, v)| f.text(k, v),
        );
        app.client
            .post(app.url("/image/v1/enhance/async"))
            .header("X-API-Key", &key)
            .header("Idempotency-Key", idem)
            .multipart(form)
            .send()
    };
    let first: Value = send(vec![("output_width", "32")], "order-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = send(vec![("output_width", "32")], "order-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first, again);
    let conflict = send(vec![("output_width", "48")], "order-1").await.unwrap();
    assert_error(
        conflict,
        409,
        "The Idempotency-Key was already used with a different request.",
    )
    .await;
    let other: Value = send(vec![("output_width", "32")], "order-2")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["process_id"], first["process_id"]);
    let jobs: Vec<Value> = app
        .get_as(&key, "/image/v1/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        app.balance_as(&key).await["reserved_credits"],
        2,
        "one charge per job, not per request"
    );
}

#[tokio::test]
async fn a_long_poll_answers_when_the_status_changes() {
    let app = spawn_app().await;
    let id = app.submit_ok("enhance", png(16, 16), &[]).await;
    let started = Instant::now();
    let poll = {
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("/image/v1/status/{id}?wait=30")),
            app.key.clone(),
        );
        tokio::spawn(async move {
            client
                .get(url)
                .header("X-API-Key", key)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "nothing changed yet");
    assert_eq!(app.cancel_as(&app.key, &id).await.status(), 204);
    let answer = poll.await.unwrap();
    assert_eq!(answer["status"], "Cancelled");
    assert!(started.elapsed() < Duration::from_secs(5));
    let done = Instant::now();
    assert_eq!(
        app.get_as(&app.key, &format!("/image/v1/status/{id}?wait=30"))
            .await
            .status(),
        200
    );
    assert!(
        done.elapsed() < Duration::from_secs(1),
        "a finished job answers at once"
    );
    let bad = app
        .get_as(&app.key, &format!("/image/v1/status/{id}?wait=61"))
        .await;
    assert_error(bad, 400, "Invalid wait. Use 0 to 60 seconds.").await;
}

#[tokio::test]
async fn the_event_stream_sends_every_change_and_ends() {
    let app = spawn_app().await;
    let id = app.submit_ok("denoise", png(64, 64), &[]).await;
    let stream = {
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("/image/v1/status/{id}/events")),
            app.key.clone(),
        );
        tokio::spawn(async move {
            let resp = client
                .get(url)
                .header("X-API-Key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.headers()["content-type"], "text/event-stream");
            resp.text().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.run_worker().await;
    let text = tokio::time::timeout(Duration::from_secs(10), stream)
        .await
        .expect("the stream ends")
        .unwrap();
    let statuses: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses.first().map(String::as_str), Some("Pending"));
    assert_eq!(statuses.last().map(String::as_str), Some("Completed"));
    let mut deduped = statuses.clone();
    deduped.dedup();
    assert_eq!(deduped, ["Pending", "Processing", "Completed"]);
}

#[tokio::test]
async fn list_filters_combine_with_pagination() {
    let app = spawn_app().await;
    let cgi = app
        .submit_ok("enhance", png(8, 8), &[("model", "CGI")])
        .await;
    let standard = app.submit_ok("enhance", png(8, 8), &[]).await;
    app.cancel_as(&app.key, &standard).await;
    let ids = |path: String| {
        let app = &app;
        async move {
            let page: Value = app.get_as(&app.key, &path).await.json().await.unwrap();
            let items = if page.is_array() {
                page.clone()
            } else {
                page["data"].clone()
            };
            items
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["process_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids("/image/v1/status?status=Cancelled".into()).await,
        vec![standard.clone()]
    );
    assert_eq!(
        ids("/image/v1/status?model=CGI&paginated=true&limit=1".into()).await,
        vec![cgi.clone()]
    );
    assert_eq!(
        ids("/image/v1/status?status=Pending&model=Standard%20V2".into()).await,
        Vec::<String>::new()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        ids(format!("/image/v1/status?created_after={}", now - 60))
            .await
            .len(),
        2
    );
    assert_eq!(
        ids(format!("/image/v1/status?created_before={}", now - 60))
            .await
            .len(),
        0
    );
    assert_eq!(
        app.get_as(&app.key, "/image/v1/status?status=Done")
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get_as(&app.key, "/image/v1/status?created_after=yesterday")
            .await
            .status(),
        400
    );
}
