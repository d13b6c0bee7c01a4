//! `POST /image/v1/{endpoint}/async` for every endpoint, and the legacy synchronous
//! `POST /image/v1/{enhance,sharpen,denoise,lighting}`. Spec: topaz-image-api.md §3.1–3.4.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use lucid_core::job::source_blob;
use lucid_core::request::{Fields, ImageSource, Plan, SubmitRequest};
use lucid_core::{ApiError, Endpoint, Job, JobState, ProcessId};
use lucid_imaging::ImagingError;
use lucid_imaging::codec::ImageInfo;
use lucid_store::{Idempotency, Source, SubmitOutcome, now_ms};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::HttpError;
use crate::http::extract::{Caller, SubmitScope};
use crate::memory::gigabytes;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    let mut router = axum::Router::new();
    for endpoint in Endpoint::ALL {
        router = router.route(
            &format!("/image/v1/{}/async", endpoint.slug()),
            post(move |state, caller, headers, form| {
                submit_async(state, caller, headers, form, endpoint)
            }),
        );
        if endpoint.has_sync() {
            router = router.route(
                &format!("/image/v1/{}", endpoint.slug()),
                post(move |state, caller, headers, form| {
                    submit_sync(state, caller, headers, form, endpoint)
                }),
            );
        }
    }
    router
}

/// Longest text field accepted in a form (a prompt is at most 1024 characters).
const MAX_TEXT_FIELD: usize = 64 * 1024;
/// Longest form field name accepted (names are echoed in error messages).
const MAX_FIELD_NAME: usize = 64;
/// Most parts accepted in one form.
const MAX_PARTS: usize = 200;

/// A submit's multipart form: string fields and the optional `image` part.
pub struct SubmitForm {
    pub fields: Fields,
    pub image: Option<(Bytes, Option<String>)>,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> HttpError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large().into()
    } else {
        ApiError::bad_request(format!("Malformed multipart body: {}", e.body_text())).into()
    }
}

// Generic over the state, which parsing does not use, so the form can be parsed (and fuzzed)
// without a server.
impl<S: Send + Sync> FromRequest<S> for SubmitForm {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, HttpError> {
        let mut multipart = Multipart::from_request(req, state).await.map_err(|_| {
            ApiError::bad_request("The request must be multipart/form-data with an image, source_id or source_url field.")
        })?;
        let mut form = SubmitForm {
            fields: Fields::new(),
            image: None,
        };
        let mut parts = 0;
        while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
            parts += 1;
            if parts > MAX_PARTS {
                return Err(ApiError::bad_request("Too many form fields.").into());
            }
            let name = field.name().unwrap_or_default().to_string();
            if name.len() > MAX_FIELD_NAME {
                return Err(ApiError::bad_request(format!(
                    "Form field names are at most {MAX_FIELD_NAME} characters."
                ))
                .into());
            }
            if name == "image" {
                if form.image.is_some() {
                    return Err(
                        ApiError::bad_request("Send one image per request, not several.").into(),
                    );
                }
                let filename = field.file_name().map(str::to_string);
                let bytes = field.bytes().await.map_err(multipart_error)?;
                form.image = Some((bytes, filename));
                continue;
            }
            // Read text in chunks so an oversized field is refused without being buffered.
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if bytes.len() + chunk.len() > MAX_TEXT_FIELD {
                    return Err(
                        ApiError::bad_request(format!("The field {name} is too long.")).into(),
                    );
                }
                bytes.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(bytes).map_err(|_| {
                ApiError::bad_request(format!("The field {name} is not UTF-8 text."))
            })?;
            form.fields.insert(&name, text);
        }
        Ok(form)
    }
}

/// Maps a probe failure to the spec's answer: 415 undecodable, 422 zero-sized, 400 oversized.
fn probe(bytes: &[u8]) -> Result<ImageInfo, ApiError> {
    lucid_imaging::codec::probe(bytes).map_err(|e| match e {
        ImagingError::ZeroDimensions => ApiError::zero_dimensions(),
        ImagingError::TooLarge { width, height } => ApiError::bad_request(format!(
            "Image dimensions {width}x{height} exceed the limits: at most 32000 pixels a side and 512 megapixels."
        )),
        _ => ApiError::undecodable_image(),
    })
}

/// Refuses a job whose pipeline would need more memory than this node's workers may hold
/// (`--memory-budget-mb`): it could never run.
fn check_memory(
    app: &AppState,
    req: &SubmitRequest,
    plan: &Plan,
    info: &ImageInfo,
) -> Result<(), ApiError> {
    let job = lucid_imaging::pipeline::Job {
        endpoint: req.endpoint,
        model: req.model,
        settings: &req.settings,
        placement: plan.placement,
        format: req.output_format,
    };
    let need = lucid_imaging::pipeline::peak_memory(&job, info);
    if app.memory.fits(need) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "This job needs about {} of memory, more than this server allows a job ({}). Use a smaller image or output size.",
        gigabytes(need),
        gigabytes(app.memory.total())
    )))
}

/// The last path segment of a URL, as a filename.
fn url_filename(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .and_then(|p| p.rsplit('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("image")
        .to_string()
}

/// The `Idempotency-Key` header with a digest of everything the request asked for: the
/// endpoint, every field and the uploaded bytes.
fn idempotency(
    headers: &HeaderMap,
    endpoint: Endpoint,
    form: &SubmitForm,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Invalid Idempotency-Key: use 1 to 255 visible characters.")
        })?;
    let mut hash = Sha256::new();
    hash.update(endpoint.slug());
    for (name, value) in form.fields.iter() {
        // Length-prefixed, so no two different field sets hash alike.
        hash.update(format!("\n{}:{name}={}:{value}", name.len(), value.len()));
    }
    if let Some((bytes, _)) = &form.image {
        hash.update(b"\nimage=");
        hash.update(Sha256::digest(bytes));
    }
    Ok(Some(Idempotency {
        key: key.to_string(),
        request_hash: hex::encode(hash.finalize()),
    }))
}

/// Validates, stores the source and inserts the Pending job with its credits reserved. With an
/// idempotency key seen before for the same request, answers the first job instead.
async fn accept(
    app: &AppState,
    key_id: i64,
    endpoint: Endpoint,
    form: SubmitForm,
    sync: bool,
    idempotency: Option<Idempotency>,
) -> Result<Job, HttpError> {
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::unavailable().into());
    }
    let req = SubmitRequest::parse(endpoint, &form.fields, form.image.is_some())?;
    let new_source = |bytes: &Bytes, filename: String| -> Result<(Source, ImageInfo), ApiError> {
        let info = probe(bytes)?;
        let source = Source {
            id: Uuid::new_v4(),
            key_id,
            filename,
            format: info.format.to_string(),
            width: info.width,
            height: info.height,
            size: bytes.len() as u64,
        };
        Ok((source, info))
    };
    let ((source, info), upload) = match &req.source {
        ImageSource::Upload => {
            let (bytes, filename) = form.image.expect("parse checked the upload");
            let filename = filename
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "image".into());
            (new_source(&bytes, filename)?, Some(bytes))
        }
        ImageSource::SourceId(id) => {
            let source = app
                .jobs
                .source(key_id, *id)
                .await?
                .ok_or_else(ApiError::source_not_found)?;
            // Only the header's format and size were kept: assume the costliest pixels.
            let info = ImageInfo::assumed(&source.format, source.width, source.height);
            ((source, info), None)
        }
        ImageSource::SourceUrl(url) => {
            let bytes = crate::fetch::download(
                &app.http,
                url,
                app.config.max_upload_bytes(),
                crate::fetch::rule(app.config.allow_private_urls),
            )
            .await?;
            (new_source(&bytes, url_filename(url))?, Some(bytes))
        }
    };
    let plan = req.plan(source.width, source.height, sync)?;
    check_memory(app, &req, &plan, &info)?;
    if let Some(url) = &req.webhook_url {
        crate::fetch::check_url(url, crate::fetch::rule(app.config.allow_private_urls)).await?;
    }
    let uploaded = upload.is_some();
    if let Some(bytes) = upload {
        app.blobs.put(&source_blob(source.id), bytes).await?;
        app.jobs.insert_source(&source).await?;
    }
    let now = now_ms();
    let queued = app.jobs.queued_work_secs().await?;
    let workers = app.config.workers.max(1) as f64;
    let job = Job {
        id: ProcessId::new(),
        key_id,
        source_id: source.id,
        endpoint,
        model: req.model.to_string(),
        state: JobState::Pending,
        progress: 0,
        filename: source.filename.clone(),
        input_format: source.format.clone(),
        input_width: source.width,
        input_height: source.height,
        output_format: req.output_format,
        output_width: plan.placement.width,
        output_height: plan.placement.height,
        crop_to_fill: req.crop_to_fill,
        options_json: req.settings.to_json(),
        credits: plan.credits,
        sync,
        work_secs: plan.work_secs,
        eta: now / 1000 + (queued / workers + plan.work_secs).ceil() as i64,
        created_ms: now,
        modified_ms: now,
        attempts: 0,
        error: None,
        webhook_url: req.webhook_url.clone(),
    };
    let outcome = app.jobs.submit(&job, idempotency.as_ref()).await?;
    if !matches!(outcome, SubmitOutcome::Accepted) && uploaded {
        // No job uses this upload; its id was never answered.
        app.blobs.delete(&source_blob(source.id)).await?;
    }
    match outcome {
        SubmitOutcome::Accepted => {
            app.new_work.notify_one();
            app.announce_change(job.id);
            Ok(job)
        }
        SubmitOutcome::Replay(first) => Ok(*first),
        SubmitOutcome::InsufficientCredits => Err(ApiError::insufficient_funds().into()),
        SubmitOutcome::IdempotencyConflict => Err(ApiError::new(
            409,
            "The Idempotency-Key was already used with a different request.",
        )
        .into()),
    }
}

fn job_headers(job: &Job) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-process-id",
        HeaderValue::from_str(&job.id.to_string()).expect("uuid is a header value"),
    );
    h.insert(
        "x-source-id",
        HeaderValue::from_str(&job.source_id.to_string()).expect("uuid is a header value"),
    );
    h.insert("x-eta", HeaderValue::from(job.eta));
    h
}

/// Spec: AsyncResponse `{process_id, source_id, eta}` with the X-Process-ID, X-Source-ID and
/// X-ETA headers.
async fn submit_async(
    State(app): State<AppState>,
    caller: Caller<SubmitScope>,
    headers: HeaderMap,
    form: SubmitForm,
    endpoint: Endpoint,
) -> Result<Response, HttpError> {
    let idem = idempotency(&headers, endpoint, &form)?;
    let job = accept(&app, caller.id(), endpoint, form, false, idem).await?;
    let body = json!({ "process_id": job.id.to_string(), "source_id": job.source_id.to_string(), "eta": job.eta });
    Ok((job_headers(&job), Json(body)).into_response())
}

/// Cancels a sync job whose client hung up before it finished (the handler future is dropped).
struct CancelOnHangUp {
    app: AppState,
    key_id: i64,
    id: ProcessId,
    armed: bool,
}

impl Drop for CancelOnHangUp {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (app, key_id, id) = (self.app.clone(), self.key_id, self.id);
        tokio::spawn(async move {
            if let Ok(lucid_store::CancelOutcome::Cancelled) = app.jobs.cancel(key_id, id).await {
                tracing::info!(process_id = %id, "sync client hung up; job cancelled");
                app.running.cancel(id);
                app.announce_change(id);
            }
        });
    }
}

/// Spec 1.1.0: the same request as the async twin; answers the image bytes when the job is done.
async fn submit_sync(
    State(app): State<AppState>,
    caller: Caller<SubmitScope>,
    headers: HeaderMap,
    form: SubmitForm,
    endpoint: Endpoint,
) -> Result<Response, HttpError> {
    let mut finished = app.changes.subscribe();
    let idem = idempotency(&headers, endpoint, &form)?;
    let job = accept(&app, caller.id(), endpoint, form, true, idem).await?;
    let mut guard = CancelOnHangUp {
        app: app.clone(),
        key_id: caller.id(),
        id: job.id,
        armed: true,
    };
    let done = loop {
        let current = app
            .jobs
            .job(caller.id(), job.id)
            .await?
            .ok_or_else(ApiError::process_not_found)?;
        if current.state.is_terminal() {
            break current;
        }
        // The broadcast wakes us at once; the timer covers a lagged receiver.
        tokio::select! {
            _ = finished.recv() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    };
    guard.armed = false;
    match done.state {
        JobState::Completed => {
            let bytes = app
                .blobs
                .get(&done.output_blob())
                .await?
                .ok_or_else(|| anyhow::anyhow!("output blob missing"))?;
            let mut headers = job_headers(&done);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(done.output_format.content_type()),
            );
            Ok((headers, bytes).into_response())
        }
        JobState::Cancelled => {
            Err(ApiError::new(409, "The process was cancelled before it completed.").into())
        }
        _ => Err(ApiError::internal().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_come_from_the_url_path() {
        assert_eq!(url_filename("http://h/a/b/cat.png?x=1"), "cat.png");
        assert_eq!(url_filename("http://h/"), "image");
    }
}
