//! `GET /image/v1/download/{id}`, `GET /image/v1/download/input/{id}` (spec §3.8) and the
//! signed `/files/{kind}/{id}` links they mint, which serve GET and HEAD without an API key.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lucid_core::{ApiError, Job, JobState, OutputFormat, ProcessId};
use lucid_store::{SignedMethod, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::extract::{Caller, ReadScope};
use crate::http::{HttpError, ProcessIdPath};
use crate::signing::{FileKind, LINK_TTL_SECS};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/image/v1/download/{process_id}", get(output))
        .route("/image/v1/download/input/{process_id}", get(input))
        .route("/files/{kind}/{process_id}", get(file))
}

/// `{download_url, head_url, expiry}`, plus `url` (the vendor quickstart reads it). Links
/// the blob store presigns to itself (S3) where it can, so the bytes never pass through an
/// API node, unless the node is configured to proxy; otherwise this node's signed links.
pub async fn links(app: &AppState, kind: FileKind, job: &Job) -> Value {
    let expiry = now_ms() / 1000 + LINK_TTL_SECS;
    if !app.config.proxy_downloads {
        let blob = kind.blob(job);
        let ttl = Duration::from_secs(LINK_TTL_SECS as u64);
        let presigned = async {
            let get = app.blobs.signed_url(&blob, SignedMethod::Get, ttl).await?;
            let head = app.blobs.signed_url(&blob, SignedMethod::Head, ttl).await?;
            Ok::<_, lucid_store::StoreError>(get.zip(head))
        };
        match presigned.await {
            Ok(Some((get, head))) => {
                return json!({ "download_url": get, "url": get, "head_url": head, "expiry": expiry });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "presigning failed; minting node links"),
        }
    }
    let get = app
        .signer
        .link(&app.public_url, "GET", kind, job.id, expiry);
    let head = app
        .signer
        .link(&app.public_url, "HEAD", kind, job.id, expiry);
    json!({ "download_url": get, "url": get, "head_url": head, "expiry": expiry })
}

/// Spec: getDownloadOutput. 409 until the job is Completed.
async fn output(
    State(app): State<AppState>,
    caller: Caller<ReadScope>,
    ProcessIdPath(id): ProcessIdPath,
) -> Result<Json<Value>, HttpError> {
    let job = app
        .jobs
        .job(caller.id(), id)
        .await?
        .ok_or_else(ApiError::process_not_found)?;
    if job.state != JobState::Completed {
        return Err(ApiError::output_not_ready().into());
    }
    Ok(Json(links(&app, FileKind::Output, &job).await))
}

/// Spec: getDownloadInput.
async fn input(
    State(app): State<AppState>,
    caller: Caller<ReadScope>,
    ProcessIdPath(id): ProcessIdPath,
) -> Result<Json<Value>, HttpError> {
    let job = app
        .jobs
        .job(caller.id(), id)
        .await?
        .ok_or_else(ApiError::process_not_found)?;
    Ok(Json(links(&app, FileKind::Input, &job).await))
}

#[derive(Deserialize)]
struct LinkQuery {
    method: Option<String>,
    expires: Option<i64>,
    signature: Option<String>,
}

fn content_type_of(format: &str) -> &'static str {
    OutputFormat::parse(format)
        .map(OutputFormat::content_type)
        .unwrap_or("application/octet-stream")
}

/// A signed link. Refused with 403 when altered or expired; 404 once the job is gone.
async fn file(
    State(app): State<AppState>,
    method: Method,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, HttpError> {
    let refused = || HttpError::from(ApiError::new(403, "The link is invalid or has expired."));
    let kind = FileKind::parse(&kind).ok_or_else(refused)?;
    let id = ProcessId::parse(&id).map_err(|_| refused())?;
    let (Some(link_method), Some(expires), Some(sig)) = (q.method, q.expires, q.signature) else {
        return Err(refused());
    };
    if link_method != method.as_str()
        || !app
            .signer
            .verify(&link_method, kind, id, expires, &sig, now_ms() / 1000)
    {
        return Err(refused());
    }
    let job = app
        .jobs
        .job_any(id)
        .await?
        .ok_or_else(ApiError::process_not_found)?;
    let content_type = match kind {
        FileKind::Output if job.state == JobState::Completed => job.output_format.content_type(),
        FileKind::Output => return Err(ApiError::output_not_ready().into()),
        FileKind::Input => content_type_of(&job.input_format),
    };
    let blob = kind.blob(&job);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if method == Method::HEAD {
        let size = app
            .blobs
            .size(&blob)
            .await?
            .ok_or_else(ApiError::process_not_found)?;
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        return Ok(headers.into_response());
    }
    // Streamed: a large output is sent without being held in memory.
    let stream = app
        .blobs
        .get_stream(&blob)
        .await?
        .ok_or_else(ApiError::process_not_found)?;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(stream.size));
    Ok((headers, axum::body::Body::from_stream(stream.body)).into_response())
}
