//! `DELETE /image/v1/cancel/{process_id}`. Spec: seed-cancel.md, exactly: 204 for a Pending or
//! Processing job (credits released, a running job stops and leaves no output), 409 for a
//! finished one, 404 for unknown ids and other keys' jobs, 400 for a malformed id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::delete;
use lucid_core::ApiError;
use lucid_store::CancelOutcome;

use crate::http::extract::{Caller, CancelScope};
use crate::http::{HttpError, ProcessIdPath};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/image/v1/cancel/{process_id}", delete(cancel))
}

/// Spec: cancelTask. The store's conditional update decides the race with completion.
async fn cancel(
    State(app): State<AppState>,
    caller: Caller<CancelScope>,
    ProcessIdPath(id): ProcessIdPath,
) -> Result<StatusCode, HttpError> {
    match app.jobs.cancel(caller.id(), id).await? {
        CancelOutcome::Cancelled => {
            app.running.cancel(id);
            app.announce_change(id);
            Ok(StatusCode::NO_CONTENT)
        }
        CancelOutcome::NotCancellable => Err(ApiError::not_cancellable().into()),
        CancelOutcome::NotFound => Err(ApiError::process_not_found().into()),
    }
}
