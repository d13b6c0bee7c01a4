//! Every route, one module per endpoint group; [`router`] merges them and answers unknown
//! paths and methods with the JSON error body.

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;
use lucid_core::ApiError;

use crate::http::error::error_response;
use crate::state::AppState;

pub mod account;
pub mod cancel;
pub mod console;
pub mod download;
pub mod estimate;
pub mod operator;
pub mod status;
pub mod submit;

/// A worker-only node's HTTP: the operator's routes alone, observed like the API's.
pub fn operator_router(state: AppState) -> axum::Router {
    operator::router()
        .fallback(|| async { error_response(&ApiError::route_not_found()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::observe::observe,
        ))
        .with_state(state)
}

pub fn router(state: AppState) -> axum::Router {
    let max_body = state.config.max_upload_bytes();
    axum::Router::new()
        .merge(submit::router())
        .merge(status::router())
        .merge(download::router())
        .merge(cancel::router())
        .merge(estimate::router())
        .merge(account::router())
        .merge(operator::router())
        .merge(console::router())
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .fallback(|| async { error_response(&ApiError::route_not_found()) })
        .method_not_allowed_fallback(|| async {
            error_response(&ApiError::method_not_allowed()).into_response()
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::observe::observe,
        ))
        .with_state(state)
}
