//! `POST /image/v1/estimate`, `/estimate-gen` (multipart or JSON) and `/estimate-bulk` (a JSON
//! array with per-item answers). Spec: topaz-image-api.md §3.9. Estimates are free.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::routing::post;
use lucid_core::ApiError;
use lucid_core::request::{EstimateRequest, Fields};
use serde_json::{Value, json};

use crate::http::HttpError;
use crate::http::extract::{Caller, SubmitScope};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/image/v1/estimate", post(|c, f| estimate(c, f, false)))
        .route("/image/v1/estimate-gen", post(|c, f| estimate(c, f, true)))
        .route("/image/v1/estimate-bulk", post(bulk))
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

async fn json_body(req: Request, state: &AppState) -> Result<Value, HttpError> {
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|_| ApiError::too_large())?;
    serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::bad_request("The body is not valid JSON.").into())
}

/// Estimate fields from a JSON object or a multipart form.
pub struct EstimateFields(Fields);

impl FromRequest<AppState> for EstimateFields {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, HttpError> {
        if is_json(&req) {
            return match json_body(req, state).await? {
                Value::Object(obj) => Ok(EstimateFields(Fields::from_json(&obj))),
                _ => Err(ApiError::bad_request("The body must be a JSON object.").into()),
            };
        }
        let mut multipart = Multipart::from_request(req, state)
            .await
            .map_err(|_| ApiError::bad_request("The body must be JSON or multipart/form-data."))?;
        let mut fields = Fields::new();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|_| ApiError::bad_request("Malformed multipart body."))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let text = field
                .text()
                .await
                .map_err(|_| ApiError::bad_request("Malformed multipart body."))?;
            fields.insert(&name, text);
        }
        Ok(EstimateFields(fields))
    }
}

fn answer(e: &EstimateRequest) -> Value {
    json!({ "duration": e.plan.work_secs.ceil() as i64, "credits": e.plan.credits })
}

/// Spec: postEstimate / postEstimateGen → `{duration, credits}`.
async fn estimate(
    _caller: Caller<SubmitScope>,
    EstimateFields(fields): EstimateFields,
    generative: bool,
) -> Result<Json<Value>, HttpError> {
    Ok(Json(answer(&EstimateRequest::parse(
        &fields,
        Some(generative),
    )?)))
}

/// Spec: postEstimateBulk. Every item answers `{status: success, duration, credits}` or
/// `{status: error, code, message}`; over-cap outputs use code 413 as in the spec's example.
async fn bulk(
    State(app): State<AppState>,
    _caller: Caller<SubmitScope>,
    req: Request,
) -> Result<Json<Value>, HttpError> {
    if !is_json(&req) {
        return Err(
            ApiError::bad_request("The body must be a JSON array (application/json).").into(),
        );
    }
    let Value::Array(items) = json_body(req, &app).await? else {
        return Err(ApiError::bad_request("The body must be a JSON array.").into());
    };
    if items.len() > 1000 {
        return Err(ApiError::bad_request("At most 1000 items per bulk estimate.").into());
    }
    let answers = items
        .iter()
        .map(|item| {
            let result = match item {
                Value::Object(obj) => EstimateRequest::parse(&Fields::from_json(obj), None),
                _ => Err(ApiError::bad_request("Each item must be a JSON object.")),
            };
            match result {
                Ok(e) => {
                    let mut a = answer(&e);
                    a["status"] = "success".into();
                    a
                }
                Err(e) => {
                    let code = if e.message.starts_with("Output image dimensions exceed") {
                        413
                    } else {
                        e.status
                    };
                    json!({ "status": "error", "code": code, "message": e.message })
                }
            }
        })
        .collect();
    Ok(Json(Value::Array(answers)))
}
