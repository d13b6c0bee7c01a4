//! The operator's view: `/metrics` counts what happened, `/healthz` and `/readyz` answer without
//! a key, and every response carries a request id.

use serde_json::Value;

use crate::helpers::*;

/// The value of the sample line that starts with `series ` (labels included), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

async fn metrics(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    resp.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_requests_jobs_and_processing() {
    let app = spawn_app().await;
    let first = app
        .submit_ok("enhance", png(32, 24), &[("model", "Standard V2")])
        .await;
    app.submit_ok("enhance", png(32, 24), &[]).await;
    let missing = app
        .get_as(
            &app.key,
            "/image/v1/status/7d1e9b3c-0000-4000-8000-000000000000",
        )
        .await;
    assert_eq!(missing.status(), 404);

    let text = metrics(&app).await;
    assert_eq!(sample(&text, "lucid_jobs{state=\"Pending\"}"), Some(2.0));
    assert_eq!(sample(&text, "lucid_queue_depth"), Some(2.0));
    assert!(sample(&text, "lucid_queue_oldest_age_seconds").unwrap() >= 0.0);
    assert_eq!(
        sample(
            &text,
            "lucid_http_requests_total{method=\"POST\",route=\"/image/v1/enhance/async\",status=\"200\"}"
        ),
        Some(2.0)
    );
    // The route template, never the raw id, labels the series.
    assert_eq!(
        sample(
            &text,
            "lucid_http_requests_total{method=\"GET\",route=\"/image/v1/status/{process_id}\",status=\"404\"}"
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "lucid_http_request_bytes_total{route=\"/image/v1/enhance/async\"}"
        )
        .unwrap()
            > 2.0 * 1000.0
    );
    assert_eq!(
        sample(
            &text,
            "lucid_http_request_duration_seconds_count{route=\"/image/v1/enhance/async\"}"
        ),
        Some(2.0)
    );

    assert_eq!(app.run_worker().await, 2);
    let (_, output) = app.download(&first).await;
    let text = metrics(&app).await;
    assert_eq!(sample(&text, "lucid_jobs{state=\"Completed\"}"), Some(2.0));
    assert_eq!(sample(&text, "lucid_jobs{state=\"Pending\"}"), Some(0.0));
    assert_eq!(sample(&text, "lucid_queue_oldest_age_seconds"), Some(0.0));
    assert_eq!(
        sample(
            &text,
            "lucid_job_processing_seconds_count{endpoint=\"enhance\",model=\"Standard V2\",outcome=\"completed\"}"
        ),
        Some(2.0)
    );
    // The signed link's answer counts its body.
    let sent: f64 = text
        .lines()
        .filter(|l| l.starts_with("lucid_http_response_bytes_total{route=\"/files/"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(sent >= output.len() as f64, "{sent} < {}", output.len());
}

#[tokio::test]
async fn health_and_readiness_need_no_key() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "ok");
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(
        (body["store"].as_str(), body["blobs"].as_str()),
        (Some("ok"), Some("ok"))
    );
}

#[tokio::test]
async fn readiness_fails_when_the_blob_folder_is_gone() {
    let app = spawn_app().await;
    // A file where the blob folder was: the store can no longer be read.
    let blobs = app.dir.path().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"not a folder").unwrap();
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["store"], "ok");
    assert!(
        body["blobs"].as_str().unwrap().starts_with("error"),
        "{body}"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    // The client's own id is echoed, on errors too.
    let resp = app
        .client
        .get(app.url("/image/v1/status"))
        .header("x-request-id", "trace-42.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-request-id"], "trace-42.abc");
    // One with spaces (unsafe to log as is) is replaced.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "two words")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"], "two words");
}
