//! The one place errors become HTTP answers: `{"code": N, "message": "..."}` (spec §1.4).
//! Internal errors answer the generic 500; their cause is logged here, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lucid_core::ApiError;
use lucid_store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub enum HttpError {
    Api(ApiError),
    /// 429 with the seconds to wait.
    RateLimited(u64),
    Internal(anyhow::Error),
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError::Api(e)
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        HttpError::Internal(e.into())
    }
}

impl From<anyhow::Error> for HttpError {
    fn from(e: anyhow::Error) -> Self {
        HttpError::Internal(e)
    }
}

/// The error body, also used outside handlers (fallbacks, sync job failures).
pub fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({ "code": e.status, "message": e.message })),
    )
        .into_response()
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::Api(e) => error_response(&e),
            HttpError::RateLimited(secs) => {
                let mut resp = error_response(&ApiError::too_many_requests());
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
                resp
            }
            HttpError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                error_response(&ApiError::internal())
            }
        }
    }
}
