//! `GET/DELETE /image/v1/status` and `GET/DELETE /image/v1/status/{process_id}`.
//! Spec: topaz-image-api.md §3.5–3.7.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use lucid_core::request::Settings;
use lucid_core::{ApiError, Job, JobState, ProcessId};
use lucid_store::{DeleteOutcome, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::extract::{Caller, DeleteScope, ReadScope};
use crate::http::{HttpError, ProcessIdPath};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/image/v1/status", get(list).delete(delete_all))
        .route(
            "/image/v1/status/{process_id}",
            get(status).delete(delete_one),
        )
}

/// The ETA of a job: its stored estimate while Pending, the remaining work while Processing,
/// and the time it finished once terminal.
fn live_eta(job: &Job) -> i64 {
    let now = now_ms() / 1000;
    match job.state {
        JobState::Pending => job.eta.max(now + job.work_secs.ceil() as i64),
        JobState::Processing => {
            now + (job.work_secs * (100 - job.progress) as f64 / 100.0).ceil() as i64
        }
        _ => job.modified_ms / 1000,
    }
}

/// `StatusResponse` with the 1.1.0 extras (`subject_detection`, `face_enhancement*`, `sync`).
pub fn status_body(job: &Job) -> Value {
    let settings = Settings::from_json(&job.options_json);
    json!({
        "process_id": job.id.to_string(),
        "source_id": job.source_id.to_string(),
        "filename": job.filename,
        "input_format": job.input_format,
        "input_height": job.input_height,
        "input_width": job.input_width,
        "output_format": job.output_format.as_str(),
        "output_height": job.output_height,
        "output_width": job.output_width,
        "category": job.endpoint.category(),
        "model_type": job.endpoint.model_type(),
        "model": job.model,
        "crop_to_fill": job.crop_to_fill,
        "options_json": job.options_json,
        "status": job.state.as_str(),
        "progress": job.progress,
        "eta": live_eta(job),
        "creation_time": job.created_ms / 1000,
        "modification_time": job.modified_ms / 1000,
        "credits": job.credits,
        "subject_detection": settings.text("subject_detection").unwrap_or("All"),
        "face_enhancement": settings.flag("face_enhancement", true),
        "face_enhancement_creativity": settings.number("face_enhancement_creativity", 0.0),
        "face_enhancement_strength": settings.number("face_enhancement_strength", 0.8),
        "sync": job.sync,
    })
}

/// Spec: getStatus.
async fn status(
    State(app): State<AppState>,
    caller: Caller<ReadScope>,
    ProcessIdPath(id): ProcessIdPath,
) -> Result<Json<Value>, HttpError> {
    let job = app
        .jobs
        .job(caller.id(), id)
        .await?
        .ok_or_else(ApiError::process_not_found)?;
    Ok(Json(status_body(&job)))
}

#[derive(Deserialize)]
struct ListQuery {
    paginated: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn cursor_for(id: ProcessId) -> String {
    STANDARD.encode(json!({ "process_id": id.to_string() }).to_string())
}

fn parse_cursor(raw: &str) -> Result<ProcessId, ApiError> {
    let invalid = || ApiError::bad_request("Invalid cursor.");
    let bytes = STANDARD
        .decode(raw)
        .or_else(|_| URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')))
        .map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let id = v
        .get("process_id")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    ProcessId::parse(id).map_err(|_| invalid())
}

/// Spec: getAllStatuses. A plain array, or `{data, pagination}` with `paginated=true`; newest
/// first.
async fn list(
    State(app): State<AppState>,
    caller: Caller<ReadScope>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, HttpError> {
    let Query(q) = query.map_err(|_| ApiError::bad_request("Invalid query parameters."))?;
    let paginated = match q
        .paginated
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => {
            return Err(ApiError::bad_request("Invalid paginated. Use true or false.").into());
        }
    };
    if !paginated {
        let jobs = app.jobs.list(caller.id(), None, None).await?;
        return Ok(Json(Value::Array(jobs.iter().map(status_body).collect())).into_response());
    }
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::bad_request("Invalid limit. It must be between 1 and 100."))?,
    };
    let before = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(parse_cursor)
        .transpose()?;
    let mut jobs = app.jobs.list(caller.id(), before, Some(limit + 1)).await?;
    let has_next_page = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let mut pagination = json!({ "has_next_page": has_next_page });
    if has_next_page && let Some(last) = jobs.last() {
        pagination["next_cursor"] = Value::from(cursor_for(last.id));
    }
    Ok(Json(json!({ "data": jobs.iter().map(status_body).collect::<Vec<_>>(), "pagination": pagination })).into_response())
}

/// Deletes the blobs of deleted jobs; their sources stay reusable.
async fn remove_outputs(app: &AppState, jobs: &[Job]) {
    for job in jobs {
        if let Err(e) = app.blobs.delete(&job.output_blob()).await {
            tracing::warn!(process_id = %job.id, error = %e, "could not delete output blob");
        }
    }
}

/// Spec: deleteStatus. 204; 409 while the job is unfinished.
async fn delete_one(
    State(app): State<AppState>,
    caller: Caller<DeleteScope>,
    ProcessIdPath(id): ProcessIdPath,
) -> Result<StatusCode, HttpError> {
    match app.jobs.delete(caller.id(), id).await? {
        DeleteOutcome::Deleted(job) => {
            remove_outputs(&app, std::slice::from_ref(&job)).await;
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteOutcome::Unfinished => Err(ApiError::status_not_deletable().into()),
        DeleteOutcome::NotFound => Err(ApiError::process_not_found().into()),
    }
}

/// Spec: deleteAllStatuses. Deletes the finished jobs only.
async fn delete_all(
    State(app): State<AppState>,
    caller: Caller<DeleteScope>,
) -> Result<Json<Value>, HttpError> {
    let deleted = app.jobs.delete_finished(caller.id()).await?;
    remove_outputs(&app, &deleted).await;
    Ok(Json(json!({ "deleted_count": deleted.len() })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = ProcessId::new();
        assert_eq!(parse_cursor(&cursor_for(id)).unwrap(), id);
        assert!(parse_cursor("!!!").is_err());
        assert!(parse_cursor(&STANDARD.encode("{\"process_id\":\"x\"}")).is_err());
    }
}
