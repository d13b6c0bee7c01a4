//! Jobs: their identity, their states and the legal moves between them, and the record the
//! status endpoint answers from.

use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::model::{Endpoint, OutputFormat};

/// A job's `process_id`. UUIDv7, so ids sort by creation time (the listing's order and cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId(pub Uuid);

impl ProcessId {
    pub fn new() -> Self {
        ProcessId(Uuid::now_v7())
    }

    /// Parses a path segment; anything but a UUID is the spec's 400.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Uuid::try_parse(s)
            .map(ProcessId)
            .map_err(|_| ApiError::invalid_process_id())
    }
}

impl Default for ProcessId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Job states, spelled exactly as on the wire (topaz-image-api.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JobState {
    /// Accepted at submit, or returned here when a worker's lease expired. Left by a claim
    /// (→ Processing) or a cancel (→ Cancelled).
    Pending,
    /// Claimed by a worker holding a lease. Left by finalize (→ Completed | Failed), cancel
    /// (→ Cancelled) or lease expiry (→ Pending, or Failed after the last attempt).
    Processing,
    /// Output stored and credits charged, in one transaction. Terminal.
    Completed,
    /// Processing failed or ran out of attempts; credits released. Terminal.
    Failed,
    /// Cancelled by its owner while Pending or Processing; credits released, no output. Terminal.
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Processing,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "Pending",
            JobState::Processing => "Processing",
            JobState::Completed => "Completed",
            JobState::Failed => "Failed",
            JobState::Cancelled => "Cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether `DELETE /cancel/{id}` may move the job to Cancelled.
    pub fn is_cancellable(self) -> bool {
        matches!(self, JobState::Pending | JobState::Processing)
    }
}

/// Everything the status endpoint reports about one job; the store's row, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: ProcessId,
    pub key_id: i64,
    pub source_id: Uuid,
    pub endpoint: Endpoint,
    pub model: String,
    pub state: JobState,
    pub progress: u8,
    pub filename: String,
    pub input_format: String,
    pub input_width: u32,
    pub input_height: u32,
    pub output_format: OutputFormat,
    pub output_width: u32,
    pub output_height: u32,
    pub crop_to_fill: bool,
    /// The recognised model settings, normalised to snake_case, as a JSON object string.
    pub options_json: String,
    pub credits: i64,
    pub sync: bool,
    /// Estimated processing seconds, used for ETA of this and later jobs.
    pub work_secs: f64,
    pub eta: i64,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub attempts: u32,
    pub error: Option<String>,
    pub webhook_url: Option<String>,
}

impl Job {
    /// The blob key of the job's output.
    pub fn output_blob(&self) -> String {
        format!("outputs/{}.{}", self.id, self.output_format.extension())
    }
}

/// The blob key of a stored source image.
pub fn source_blob(source_id: Uuid) -> String {
    format!("sources/{source_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_id_rejects_non_uuid_with_spec_message() {
        let err = ProcessId::parse("not-a-uuid").unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(
            err.message,
            "Invalid process ID. Please ensure it is a valid UUID."
        );
        assert!(ProcessId::parse("d7b3b3b3-7b3b-4b3b-8b3b-3b3b3b3b3b3b").is_ok());
    }

    #[test]
    fn states_round_trip_and_classify() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(s.is_terminal(), !s.is_cancellable());
        }
    }

    #[test]
    fn process_ids_sort_by_creation() {
        let a = ProcessId::new();
        let b = ProcessId::new();
        assert!(a < b);
    }
}
