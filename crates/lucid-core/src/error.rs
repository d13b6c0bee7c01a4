//! The API error: an HTTP status and a human-readable message, answered as
//! `{"code": N, "message": "..."}`. One constructor per row of the spec's error table
//! (topaz-image-api.md §1.4) so the wire text is written once.

use std::fmt;

/// An error the client caused or must act on. Internal failures never become an `ApiError`
/// with detail; they are answered with [`ApiError::internal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 with a message naming the bad parameter.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 400 BadRequestProcess.
    pub fn invalid_process_id() -> Self {
        Self::new(400, "Invalid process ID. Please ensure it is a valid UUID.")
    }

    /// 400 BadRequestEstimate.
    pub fn invalid_input_resolution() -> Self {
        Self::new(400, "Please provide a valid input resolution.")
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    /// 402 PaymentRequired.
    pub fn insufficient_funds() -> Self {
        Self::new(402, "Insufficient funds.")
    }

    /// 403 Forbidden.
    pub fn forbidden() -> Self {
        Self::new(403, "Forbidden")
    }

    /// 404 NotFound for a job id (also for another key's job: tenancy never leaks).
    pub fn process_not_found() -> Self {
        Self::new(404, "An image with the given process ID was not found.")
    }

    /// 404 for a `source_id` that does not exist or belongs to another key.
    pub fn source_not_found() -> Self {
        Self::new(
            404,
            "A source image with the given source ID was not found.",
        )
    }

    /// 404 for routes that do not exist.
    pub fn route_not_found() -> Self {
        Self::new(404, "Not Found")
    }

    /// 405 for a known path with the wrong method.
    pub fn method_not_allowed() -> Self {
        Self::new(405, "Method Not Allowed")
    }

    /// 409 Conflict from the cancel endpoint (seed-cancel.md).
    pub fn not_cancellable() -> Self {
        Self::new(
            409,
            "The process cannot be cancelled as it is not in a cancellable state.",
        )
    }

    /// 409 from `GET /download/{id}` while the output is not ready.
    pub fn output_not_ready() -> Self {
        Self::new(
            409,
            "The output image is not ready. Wait until the process has completed.",
        )
    }

    /// 409 from `DELETE /status/{id}` while the job is unfinished.
    pub fn status_not_deletable() -> Self {
        Self::new(409, "The process cannot be deleted as it has not finished.")
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large() -> Self {
        Self::new(413, "Request Entity Too Large")
    }

    /// 415 UnsupportedMediaType.
    pub fn undecodable_image() -> Self {
        Self::new(415, "Image could not be decoded to a supported image type.")
    }

    /// 422 UnprocessableEntity.
    pub fn zero_dimensions() -> Self {
        Self::new(
            422,
            "Image has invalid dimensions (width or height is zero).",
        )
    }

    /// 429 TooManyRequests.
    pub fn too_many_requests() -> Self {
        Self::new(429, "Too Many Requests")
    }

    /// 500 InternalServerError: the generic body; the cause is logged, never sent.
    pub fn internal() -> Self {
        Self::new(
            500,
            "An internal server error occurred. Please try again later. If the problem persists, please contact support.",
        )
    }

    /// 503 while the server shuts down.
    pub fn unavailable() -> Self {
        Self::new(503, "Service Unavailable")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
