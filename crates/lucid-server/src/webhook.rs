//! Webhook delivery from the outbox. Every job state change was written to the outbox in the
//! same transaction as the change; this sender claims due notifications, POSTs them signed per
//! Standard Webhooks, and records the outcome: 2xx delivered; 4xx dropped; 5xx, 3xx, timeouts
//! and connection errors retried with exponential backoff (5 s doubling, each delay capped at
//! 15 minutes) up to [`MAX_ATTEMPTS`]. Retries keep the `notification_id`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use lucid_core::{Job, JobState};
use lucid_store::{Delivery, Notification, now_ms};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;

use crate::routes::download::links;
use crate::signing::FileKind;
use crate::state::AppState;

/// Delivery attempts per notification before it is given up.
pub const MAX_ATTEMPTS: u32 = 10;
/// Largest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed notification is reserved for this sender.
const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// The delay before attempt `n + 1` after `n` failed attempts: base, 2·base, 4·base, … capped.
pub fn backoff(base: Duration, failed_attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(failed_attempts.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(MAX_DELAY)
}

/// The JSON body of a notification (topaz-image-api.md §6), with freshly minted links to the
/// files of `job`.
pub async fn payload(app: &AppState, n: &Notification, job: &Job) -> Value {
    let input = links(app, FileKind::Input, job).await;
    let mut body = json!({
        "notification_id": n.id,
        "process_id": n.process_id.to_string(),
        "status": n.status.as_str(),
        "creation_time": n.creation_ms / 1000,
        "modification_time": n.modification_ms / 1000,
        "progress": n.progress,
        "input_download_url": input["download_url"],
        "input_head_url": input["head_url"],
    });
    if n.status == JobState::Completed {
        let output = links(app, FileKind::Output, job).await;
        body["download_url"] = output["download_url"].clone();
        body["head_url"] = output["head_url"].clone();
    }
    body
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the secret's bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap_or_else(|_| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

async fn attempt(app: &AppState, n: &Notification) -> Delivery {
    let failed = |error: String| {
        let attempts = n.attempts + 1;
        if attempts >= MAX_ATTEMPTS {
            Delivery::Exhausted(error)
        } else {
            let delay = backoff(app.config.webhook_base_delay, attempts);
            Delivery::Retry {
                at_ms: now_ms() + delay.as_millis() as i64,
                error,
            }
        }
    };
    if let Err(e) =
        crate::fetch::check_url(&n.url, crate::fetch::rule(app.config.allow_private_urls)).await
    {
        return Delivery::Dropped(e.message);
    }
    let secret = match app.jobs.webhook_secret(n.key_id, false).await {
        Ok(s) => s,
        Err(e) => return failed(format!("no signing secret: {e}")),
    };
    let job = match app.jobs.job_any(n.process_id).await {
        Ok(Some(job)) => job,
        Ok(None) => return Delivery::Dropped("the job was deleted".into()),
        Err(e) => return failed(format!("reading the job: {e}")),
    };
    let body = payload(app, n, &job).await.to_string();
    let timestamp = now_ms() / 1000;
    let result = app
        .http
        .post(&n.url)
        .timeout(ATTEMPT_TIMEOUT)
        .header("content-type", "application/json")
        .header("webhook-id", &n.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sign(&secret, &n.id, timestamp, &body))
        .body(body)
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => Delivery::Delivered,
        Ok(resp) if resp.status().is_client_error() => {
            Delivery::Dropped(format!("receiver answered {}", resp.status()))
        }
        Ok(resp) => failed(format!("receiver answered {}", resp.status())),
        Err(e) => failed(format!("delivery failed: {e}")),
    }
}

/// Delivers due notifications until shutdown; wakes on new state changes or every 500 ms.
pub async fn run_sender(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut changes = app.changes.subscribe();
    loop {
        match app.jobs.claim_notifications(32, CLAIM_LEASE).await {
            Ok(due) => {
                let busy = !due.is_empty();
                let sends = due.into_iter().map(|n| {
                    let app = app.clone();
                    async move {
                        let delivery = attempt(&app, &n).await;
                        app.metrics.webhook(match delivery {
                            Delivery::Delivered => "delivered",
                            Delivery::Retry { .. } => "retry",
                            Delivery::Exhausted(_) => "exhausted",
                            Delivery::Dropped(_) => "dropped",
                        });
                        tracing::info!(notification_id = %n.id, process_id = %n.process_id, status = n.status.as_str(), ?delivery, "webhook");
                        if let Err(e) = app.jobs.record_delivery(&n.id, delivery).await {
                            tracing::error!(error = %e, "recording a webhook delivery");
                        }
                    }
                });
                futures::future::join_all(sends).await;
                if busy {
                    continue;
                }
            }
            Err(e) => tracing::error!(error = %e, "claiming webhook notifications"),
        }
        tokio::select! {
            _ = changes.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_caps_at_15_minutes() {
        let base = Duration::from_secs(5);
        let delays: Vec<u64> = (1..=10).map(|n| backoff(base, n).as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // From the Standard Webhooks specification's test vectors.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = sign(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
