//! `GET/DELETE /image/v1/status` and `GET/DELETE /image/v1/status/{process_id}`.
//! Spec: topaz-image-api.md §3.5–3.7.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use lucid_core::request::Settings;
use lucid_core::{ApiError, Job, JobState, ProcessId};
use lucid_store::{DeleteOutcome, ListFilter, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;

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
        .route("/image/v1/status/{process_id}/events", get(events))
}

/// How often waiters re-read the store, for changes made by other processes.
const RECHECK: Duration = Duration::from_millis(250);
/// Longest `wait` a long poll may ask for.
const MAX_WAIT_SECS: u64 = 60;

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

#[derive(Deserialize)]
struct StatusQuery {
    wait: Option<String>,
}

/// Waits for a change announcement about any job, or the recheck interval.
async fn next_change(rx: &mut broadcast::Receiver<ProcessId>) {
    tokio::select! {
        _ = rx.recv() => {}
        _ = tokio::time::sleep(RECHECK) => {}
    }
}

/// Spec: getStatus. With `wait=N` (lucid's extension, N ≤ 60), a long poll: answers as soon as
/// the job's status changes, or after N seconds with the current status.
async fn status(
    State(app): State<AppState>,
    caller: Caller<ReadScope>,
    ProcessIdPath(id): ProcessIdPath,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, HttpError> {
    let Query(q) = query.map_err(|_| ApiError::bad_request("Invalid query parameters."))?;
    let wait = match q.wait.as_deref() {
        None => 0,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_WAIT_SECS)
            .ok_or_else(|| ApiError::bad_request("Invalid wait. Use 0 to 60 seconds."))?,
    };
    let mut changes = app.changes.subscribe();
    let first = app
        .jobs
        .job(caller.id(), id)
        .await?
        .ok_or_else(ApiError::process_not_found)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut job = first.clone();
    while !job.state.is_terminal()
        && job.state == first.state
        && tokio::time::Instant::now() < deadline
    {
        tokio::select! {
            _ = next_change(&mut changes) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
        job = app
            .jobs
            .job(caller.id(), id)
            .await?
            .ok_or_else(ApiError::process_not_found)?;
    }
    Ok(Json(status_body(&job)))
}

/// Where an event stream is: what it last sent, and whether it has ended.
struct EventCursor {
    app: AppState,
    key_id: i64,
    id: ProcessId,
    changes: broadcast::Receiver<ProcessId>,
    last: Option<(JobState, u8)>,
    done: bool,
}

/// `GET /image/v1/status/{id}/events` (lucid's extension): Server-Sent Events, one `status`
/// event with the full StatusResponse per change of state or progress, ending after a terminal
/// state.
async fn events(
    State(app): State<AppState>,
    caller: Caller<ReadScope>,
    ProcessIdPath(id): ProcessIdPath,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, HttpError> {
    app.jobs
        .job(caller.id(), id)
        .await?
        .ok_or_else(ApiError::process_not_found)?;
    let start = EventCursor {
        changes: app.changes.subscribe(),
        app,
        key_id: caller.id(),
        id,
        last: None,
        done: false,
    };
    let stream = futures::stream::unfold(start, |mut c| async move {
        if c.done {
            return None;
        }
        loop {
            let job = match c.app.jobs.job(c.key_id, c.id).await {
                Ok(Some(job)) => job,
                // Deleted or unreadable: the stream ends.
                _ => return None,
            };
            if c.last != Some((job.state, job.progress)) {
                c.last = Some((job.state, job.progress));
                c.done = job.state.is_terminal();
                let event = Event::default()
                    .event("status")
                    .data(status_body(&job).to_string());
                return Some((Ok(event), c));
            }
            next_change(&mut c.changes).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
struct ListQuery {
    paginated: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    model: Option<String>,
}

fn unix_seconds(raw: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    raw.filter(|r| !r.is_empty())
        .map(|r| {
            r.parse::<i64>()
                .map(|s| s * 1000)
                .map_err(|_| ApiError::bad_request(format!("Invalid {name}. Use Unix seconds.")))
        })
        .transpose()
}

/// The filters of `GET /status` (lucid's extension): status, creation time bounds and model.
fn filter_of(q: &ListQuery) -> Result<ListFilter, ApiError> {
    let state = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            JobState::ALL
                .into_iter()
                .find(|st| st.as_str().eq_ignore_ascii_case(s))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid status. Use Pending, Processing, Completed, Failed or Cancelled.",
                    )
                })
        })
        .transpose()?;
    Ok(ListFilter {
        state,
        created_after_ms: unix_seconds(q.created_after.as_deref(), "created_after")?
            .map(|ms| ms + 999),
        created_before_ms: unix_seconds(q.created_before.as_deref(), "created_before")?,
        model: q.model.clone().filter(|m| !m.is_empty()),
        ..ListFilter::default()
    })
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
    let filter = filter_of(&q)?;
    if !paginated {
        let jobs = app.jobs.list(caller.id(), &filter).await?;
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
    let mut jobs = app
        .jobs
        .list(
            caller.id(),
            &ListFilter {
                before,
                limit: Some(limit + 1),
                ..filter
            },
        )
        .await?;
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
