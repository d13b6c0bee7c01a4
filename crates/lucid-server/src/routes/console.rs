//! The web console at `/`: three static files built into the binary (no CDN, no build step)
//! and `GET /console/catalogue.json`, the endpoints, models and settings its forms are made
//! from — the same catalogue the API validates against. The console itself speaks only the
//! public API with the key the user enters (kept in the tab's session storage).

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use lucid_core::Endpoint;
use lucid_core::request::settings_catalogue;
use serde_json::{Value, json};

use crate::state::AppState;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/app.js");
const STYLE: &str = include_str!("../../console/app.css");

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/console/catalogue.json",
            get(|| async { Json(catalogue()) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            // Scripts, styles and API calls come from this server only; images also from the
            // download links, which may point at S3 or another public URL.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src * blob: data:",
            ),
        ],
        body,
    )
}

/// Endpoints with their models (and what each does in lucid), output formats and geometry
/// rules, and every model setting with its bounds.
pub fn catalogue() -> Value {
    let endpoints: Vec<Value> = Endpoint::ALL
        .iter()
        .map(|&e| {
            let models: Vec<Value> = e
                .models()
                .iter()
                .map(|&m| json!({"name": m, "does": lucid_imaging::ops::describe(e, m)}))
                .collect();
            json!({
                "slug": e.slug(),
                "category": e.category(),
                "generative": e.is_generative(),
                "models": models,
                "default_model": e.default_model(),
                "resizes": e.resizes(),
                "png_only": e.png_only(),
                "default_format": e.default_format().as_str(),
            })
        })
        .collect();
    json!({
        "endpoints": endpoints,
        "output_formats": ["jpeg", "png", "tiff"],
        "settings": settings_catalogue(),
    })
}
