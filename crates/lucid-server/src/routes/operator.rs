//! The operator's routes, outside the API and without a key: `GET /metrics` (Prometheus text),
//! `GET /healthz` (the process answers) and `GET /readyz` (it can reach its stores and is not
//! shutting down: what a load balancer should route by).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::http::HttpError;
use crate::state::AppState;

/// How long a readiness probe waits for each store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
}

async fn metrics(State(app): State<AppState>) -> Result<Response, HttpError> {
    let census = app.jobs.census().await?;
    let text = app.metrics.render(
        &census,
        lucid_store::now_ms(),
        app.running.len(),
        &app.memory,
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// 200 `{"status":"ready","store":"ok","blobs":"ok"}`, or 503 naming what failed.
async fn readyz(State(app): State<AppState>) -> Response {
    let store = match tokio::time::timeout(PROBE_TIMEOUT, app.jobs.key_count()).await {
        Ok(Ok(_)) => "ok".to_string(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".to_string(),
    };
    let blobs = match tokio::time::timeout(PROBE_TIMEOUT, app.blobs.size("readyz-probe")).await {
        Ok(Ok(_)) => "ok".to_string(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".to_string(),
    };
    let draining = app.draining.load(Ordering::Relaxed);
    let ready = store == "ok" && blobs == "ok" && !draining;
    if !ready {
        tracing::warn!(%store, %blobs, draining, "not ready");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else if draining { "draining" } else { "unavailable" },
        "store": store,
        "blobs": blobs,
    });
    (status, Json(body)).into_response()
}
