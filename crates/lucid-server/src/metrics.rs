//! The operator's counters: requests, latencies, bytes, processing time and webhook deliveries,
//! kept per process and written in the Prometheus text format by `GET /metrics` (together with
//! the job store's census, which every node shares). A registry per [`crate::AppState`] rather
//! than a process-wide recorder, so that several servers in one process (the tests) count apart.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use lucid_core::JobState;
use lucid_store::Census;

/// Upper bounds (seconds) of the request latency buckets.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Upper bounds (seconds) of the job processing-time buckets.
const PROCESSING_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

#[derive(Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound (not yet cumulative).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| value <= b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Registry {
    /// (method, route, status) → requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// route → latency.
    latency: BTreeMap<String, Histogram>,
    /// route → (request body bytes, response body bytes).
    bytes: BTreeMap<String, (u64, u64)>,
    /// (endpoint, model, outcome) → seconds from claim to the end of the run.
    processing: BTreeMap<(String, String, &'static str), Histogram>,
    /// outcome → webhook delivery attempts.
    webhooks: BTreeMap<&'static str, u64>,
}

/// How a worker's run of a job ended, as counted.
#[derive(Debug, Clone, Copy)]
pub enum RunOutcome {
    Completed,
    Failed,
    /// Cancelled, lease lost or handed back at shutdown.
    Stopped,
}

#[derive(Default)]
pub struct Metrics(Mutex<Registry>);

impl Metrics {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Counting never panics while holding the lock; recover the data if it ever did.
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// One answered request. `route` is the matched route template (or `unmatched`), never the
    /// raw path, so ids do not multiply the series.
    pub fn request(
        &self,
        method: &str,
        route: &str,
        status: u16,
        latency: Duration,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        let mut r = self.registry();
        *r.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        r.latency
            .entry(route.to_string())
            .or_insert_with(|| Histogram::new(LATENCY_BUCKETS))
            .observe(latency.as_secs_f64());
        let bytes = r.bytes.entry(route.to_string()).or_default();
        bytes.0 += bytes_in;
        bytes.1 += bytes_out;
    }

    pub fn job_run(&self, endpoint: &str, model: &str, outcome: RunOutcome, took: Duration) {
        let outcome = match outcome {
            RunOutcome::Completed => "completed",
            RunOutcome::Failed => "failed",
            RunOutcome::Stopped => "stopped",
        };
        self.registry()
            .processing
            .entry((endpoint.to_string(), model.to_string(), outcome))
            .or_insert_with(|| Histogram::new(PROCESSING_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// One webhook delivery attempt: `delivered`, `retry`, `exhausted` or `dropped`.
    pub fn webhook(&self, outcome: &'static str) {
        *self.registry().webhooks.entry(outcome).or_default() += 1;
    }

    /// The Prometheus text exposition of this process's counters and the store's census.
    pub fn render(
        &self,
        census: &Census,
        now_ms: i64,
        running_here: usize,
        memory: &crate::memory::MemoryBudget,
    ) -> String {
        let r = self.registry();
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "lucid_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route and status.",
        );
        for ((method, route, status), n) in &r.requests {
            let _ = writeln!(
                out,
                "lucid_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        header(
            &mut out,
            "lucid_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its response headers, by route.",
        );
        for (route, h) in &r.latency {
            let labels = format!("route=\"{}\"", escape(route));
            h.write(&mut out, "lucid_http_request_duration_seconds", &labels);
        }
        for (name, help, pick) in [
            (
                "lucid_http_request_bytes_total",
                "Request body bytes received (by Content-Length), by route.",
                0,
            ),
            (
                "lucid_http_response_bytes_total",
                "Response body bytes sent (by Content-Length or the body's exact size), by route.",
                1,
            ),
        ] {
            header(&mut out, name, "counter", help);
            for (route, bytes) in &r.bytes {
                let n = if pick == 0 { bytes.0 } else { bytes.1 };
                let _ = writeln!(out, "{name}{{route=\"{}\"}} {n}", escape(route));
            }
        }
        header(
            &mut out,
            "lucid_jobs",
            "gauge",
            "Jobs in the job store by state (every node's, every key's).",
        );
        for state in JobState::ALL {
            let _ = writeln!(
                out,
                "lucid_jobs{{state=\"{}\"}} {}",
                state.as_str(),
                census.count(state)
            );
        }
        header(
            &mut out,
            "lucid_queue_depth",
            "gauge",
            "Jobs waiting for a worker (Pending).",
        );
        let _ = writeln!(out, "lucid_queue_depth {}", census.count(JobState::Pending));
        header(
            &mut out,
            "lucid_queue_oldest_age_seconds",
            "gauge",
            "How long the oldest Pending job has waited; 0 when none waits.",
        );
        let age = census
            .oldest_pending_ms
            .map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0);
        let _ = writeln!(out, "lucid_queue_oldest_age_seconds {age}");
        header(
            &mut out,
            "lucid_jobs_running_here",
            "gauge",
            "Jobs this process's workers are running now.",
        );
        let _ = writeln!(out, "lucid_jobs_running_here {running_here}");
        header(
            &mut out,
            "lucid_memory_reserved_bytes",
            "gauge",
            "Memory the jobs running here have reserved (their estimated peaks).",
        );
        let _ = writeln!(out, "lucid_memory_reserved_bytes {}", memory.reserved());
        header(
            &mut out,
            "lucid_memory_budget_bytes",
            "gauge",
            "Memory this process's jobs may reserve at once (--memory-budget-mb).",
        );
        let _ = writeln!(out, "lucid_memory_budget_bytes {}", memory.total());
        header(
            &mut out,
            "lucid_job_processing_seconds",
            "histogram",
            "Seconds this process's workers spent on a job, by endpoint, model and outcome.",
        );
        for ((endpoint, model, outcome), h) in &r.processing {
            let labels = format!(
                "endpoint=\"{}\",model=\"{}\",outcome=\"{outcome}\"",
                escape(endpoint),
                escape(model)
            );
            h.write(&mut out, "lucid_job_processing_seconds", &labels);
        }
        header(
            &mut out,
            "lucid_webhook_deliveries_total",
            "counter",
            "Webhook delivery attempts by outcome (every outcome but delivered is a failure).",
        );
        for (outcome, n) in &r.webhooks {
            let _ = writeln!(
                out,
                "lucid_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        for ms in [3, 40, 40, 2000] {
            m.request("GET", "/a\"b", 200, Duration::from_millis(ms), 10, 20);
        }
        let text = m.render(
            &Census::default(),
            0,
            0,
            &crate::memory::MemoryBudget::new(1 << 30),
        );
        assert!(text.contains(
            "lucid_http_requests_total{method=\"GET\",route=\"/a\\\"b\",status=\"200\"} 4"
        ));
        let bucket = |le: &str| {
            let prefix = format!(
                "lucid_http_request_duration_seconds_bucket{{route=\"/a\\\"b\",le=\"{le}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("no bucket {le} in\n{text}"))
                .to_string()
        };
        assert_eq!(bucket("0.005"), "1");
        assert_eq!(bucket("0.05"), "3");
        assert_eq!(bucket("1"), "3");
        assert_eq!(bucket("2.5"), "4");
        assert_eq!(bucket("+Inf"), "4");
        assert!(text.contains("lucid_http_request_bytes_total{route=\"/a\\\"b\"} 40"));
        assert!(text.contains("lucid_http_response_bytes_total{route=\"/a\\\"b\"} 80"));
        assert!(text.contains("lucid_jobs{state=\"Pending\"} 0"));
    }
}
