//! `GET /openapi.json`: an OpenAPI 3.1 document generated from the model catalogue and the
//! route list below, so the submit endpoints, their model enums and formats cannot drift from
//! what the server accepts.

use lucid_core::Endpoint;
use serde_json::{Map, Value, json};

/// A non-submit operation: method, path, operationId, summary, success status, errors.
type Operation = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [u16],
);

const OPERATIONS: &[Operation] = &[
    (
        "get",
        "/image/v1/status",
        "getAllStatuses",
        "List the key's jobs, newest first",
        "200",
        &[400, 401, 403, 429, 500],
    ),
    (
        "delete",
        "/image/v1/status",
        "deleteAllStatuses",
        "Delete the statuses of finished jobs",
        "200",
        &[401, 403, 429, 500],
    ),
    (
        "get",
        "/image/v1/status/{process_id}",
        "getStatus",
        "Status of one job; `wait=N` (N <= 60) long-polls for a change",
        "200",
        &[400, 401, 403, 404, 429, 500],
    ),
    (
        "get",
        "/image/v1/status/{process_id}/events",
        "getStatusEvents",
        "Server-Sent Events: one `status` event per change, ending on a terminal status",
        "200",
        &[400, 401, 403, 404, 429, 500],
    ),
    (
        "delete",
        "/image/v1/status/{process_id}",
        "deleteStatus",
        "Delete a finished job's status",
        "204",
        &[400, 401, 403, 404, 409, 429, 500],
    ),
    (
        "get",
        "/image/v1/download/{process_id}",
        "getDownloadOutput",
        "Signed links to the output",
        "200",
        &[400, 401, 403, 404, 409, 429, 500],
    ),
    (
        "get",
        "/image/v1/download/input/{process_id}",
        "getDownloadInput",
        "Signed links to the input",
        "200",
        &[400, 401, 403, 404, 429, 500],
    ),
    (
        "delete",
        "/image/v1/cancel/{process_id}",
        "cancelTask",
        "Cancel a pending or processing job",
        "204",
        &[400, 401, 403, 404, 409, 429, 500],
    ),
    (
        "post",
        "/image/v1/estimate",
        "postEstimate",
        "Estimate duration and credits (standard models)",
        "200",
        &[400, 401, 403, 429, 500],
    ),
    (
        "post",
        "/image/v1/estimate-gen",
        "postEstimateGen",
        "Estimate duration and credits (generative models)",
        "200",
        &[400, 401, 403, 429, 500],
    ),
    (
        "post",
        "/image/v1/estimate-bulk",
        "postEstimateBulk",
        "Estimate many jobs",
        "200",
        &[400, 401, 403, 429, 500],
    ),
    (
        "get",
        "/account/v1/credits/balance",
        "getCreditBalance",
        "Credit balance of the key",
        "200",
        &[401, 403, 429, 500],
    ),
];

const SUBMIT_ERRORS: &[u16] = &[400, 401, 402, 403, 413, 415, 422, 429, 500];

fn error_refs(codes: &[u16]) -> Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            (
                c.to_string(),
                json!({ "$ref": "#/components/responses/Error" }),
            )
        })
        .collect()
}

fn submit_schema(e: Endpoint) -> Value {
    let formats: Vec<&str> = if e.png_only() {
        vec!["png"]
    } else {
        vec!["jpeg", "jpg", "png", "tiff", "tif"]
    };
    let mut props = json!({
        "image": { "type": "string", "contentMediaType": "application/octet-stream" },
        "source_id": { "type": "string" },
        "source_url": { "type": "string" },
        "model": { "type": "string", "enum": e.models(), "default": e.default_model() },
        "output_format": { "type": "string", "enum": formats, "default": e.default_format().as_str() },
        "webhook_url": { "type": "string" },
    });
    if e.resizes() {
        props["output_width"] = json!({ "type": "integer", "minimum": 1, "maximum": 32000 });
        props["output_height"] = json!({ "type": "integer", "minimum": 1, "maximum": 32000 });
        props["crop_to_fill"] = json!({ "type": "boolean", "default": false });
    }
    json!({ "type": "object", "properties": props, "additionalProperties": { "type": "string" } })
}

fn submit_operation(e: Endpoint, sync: bool) -> Value {
    let mut responses = error_refs(SUBMIT_ERRORS);
    let ok = if sync {
        json!({ "description": "The processed image.", "content": {
            "image/jpeg": {}, "image/png": {}, "image/tiff": {} } })
    } else {
        json!({ "description": "Accepted.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AsyncResponse" } } } })
    };
    responses.insert("200".into(), ok);
    json!({
        "post": {
            "operationId": format!("post{}{}", e.slug().replace('-', "_"), if sync { "_sync" } else { "" }),
            "summary": format!("{} ({})", e.category(), if sync { "synchronous, legacy 1.1.0" } else { "asynchronous" }),
            "tags": [e.category()],
            "requestBody": { "content": { "multipart/form-data": { "schema": submit_schema(e) } } },
            "responses": responses,
        }
    })
}

fn uuid_param() -> Value {
    json!([{ "name": "process_id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }])
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for e in Endpoint::ALL {
        paths.insert(
            format!("/image/v1/{}/async", e.slug()),
            submit_operation(e, false),
        );
        if e.has_sync() {
            paths.insert(format!("/image/v1/{}", e.slug()), submit_operation(e, true));
        }
    }
    for (method, path, op_id, summary, ok, errors) in OPERATIONS {
        let mut responses = error_refs(errors);
        responses.insert((*ok).into(), json!({ "description": "Success." }));
        let mut op = json!({ "operationId": op_id, "summary": summary, "responses": responses });
        if path.contains("{process_id}") {
            op["parameters"] = uuid_param();
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "lucid — Image API", "version": "1.2.0" },
        "servers": [{ "url": "/" }],
        "security": [{ "apiKeyAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "apiKeyAuth": { "type": "apiKey", "in": "header", "name": "X-API-Key" } },
            "schemas": {
                "AsyncResponse": { "type": "object", "required": ["process_id", "source_id", "eta"], "properties": {
                    "process_id": { "type": "string" }, "source_id": { "type": "string" }, "eta": { "type": "integer" } } },
                "Error": { "type": "object", "required": ["message"], "properties": {
                    "code": { "type": "integer" }, "message": { "type": "string" } } },
            },
            "responses": { "Error": { "description": "An error.", "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/Error" } } } } },
        },
    })
}
