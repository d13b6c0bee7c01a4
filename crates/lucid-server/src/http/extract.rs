//! Extractors that own the wire quirks: the API key in any header casing (401), its scope
//! (403) and rate limit (429), and process ids that must be UUIDs (400 with the spec's text).
//! No handler ever answers axum's own rejection text.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use lucid_core::key::{KeyIdentity, Scope};
use lucid_core::{ApiError, ProcessId};

use crate::http::HttpError;
use crate::state::AppState;

/// A scope a route requires, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    const SCOPE: Scope;
}

macro_rules! scope_marker {
    ($name:ident, $scope:expr) => {
        pub struct $name;
        impl RequiredScope for $name {
            const SCOPE: Scope = $scope;
        }
    };
}
scope_marker!(SubmitScope, Scope::Submit);
scope_marker!(ReadScope, Scope::Read);
scope_marker!(CancelScope, Scope::Cancel);
scope_marker!(DeleteScope, Scope::Delete);

/// The authenticated key behind a request, holding scope `S`.
pub struct Caller<S> {
    pub key: KeyIdentity,
    _scope: PhantomData<S>,
}

impl<S> Caller<S> {
    pub fn id(&self) -> i64 {
        self.key.id
    }
}

/// The key from `X-API-Key` (header names are case-insensitive) or, for legacy clients,
/// `Authorization: Bearer`.
fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

impl<S: RequiredScope> FromRequestParts<AppState> for Caller<S> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, HttpError> {
        let plain = presented_key(parts)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or_else(ApiError::unauthorized)?;
        let key = app
            .jobs
            .authenticate(plain)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        // Counted in the store where it is shared by every node, else by this node.
        let rate = app.config.rate_limit;
        let refused = match app
            .jobs
            .shared_rate_limit(key.id, rate.per_second, rate.burst)
            .await?
        {
            Some(verdict) => verdict.err(),
            None => app
                .limiter
                .check_key(&key.id)
                .err()
                .map(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        };
        if let Some(wait) = refused {
            return Err(HttpError::RateLimited(wait.as_secs_f64().ceil() as u64));
        }
        if !key.scopes.contains(S::SCOPE) {
            return Err(ApiError::forbidden().into());
        }
        Ok(Caller {
            key,
            _scope: PhantomData,
        })
    }
}

/// A `{process_id}` path segment that must be a UUID.
pub struct ProcessIdPath(pub ProcessId);

impl<St: Send + Sync> FromRequestParts<St> for ProcessIdPath {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, HttpError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid_process_id())?;
        Ok(ProcessIdPath(ProcessId::parse(&raw)?))
    }
}
