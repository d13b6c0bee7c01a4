//! `GET /account/v1/credits/balance`. Spec: topaz-image-api.md §3.11.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::http::HttpError;
use crate::http::extract::{Caller, ReadScope};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/account/v1/credits/balance", get(balance))
}

/// `{available_credits, reserved_credits, total_credits}`; total = available + reserved.
async fn balance(
    State(app): State<AppState>,
    caller: Caller<ReadScope>,
) -> Result<Json<Value>, HttpError> {
    let b = app.jobs.balance(caller.id()).await?;
    Ok(Json(json!({
        "available_credits": b.available,
        "reserved_credits": b.reserved,
        "total_credits": b.total,
    })))
}
