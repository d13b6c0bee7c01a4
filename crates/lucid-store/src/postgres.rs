//! The shared [`JobStore`]: PostgreSQL, for any number of API and worker nodes. Every state
//! change names the states it may leave in its `WHERE`; under READ COMMITTED an `UPDATE` that
//! waited for another transaction's row lock re-checks that `WHERE` against the committed row,
//! so a cancel racing a completion still has exactly one winner. Workers claim with
//! `FOR UPDATE SKIP LOCKED`, and every job state change is announced with `NOTIFY` (see
//! [`JobStore::events`]) so other nodes learn of it at once.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use lucid_core::key::{Balance, KeyIdentity};
use lucid_core::{Job, JobState, ProcessId};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    CancelOutcome, DeleteOutcome, Delivery, Finalized, IDEMPOTENCY_WINDOW_MS, Idempotency,
    JobEvent, JobStore, KeyInfo, ListFilter, NewKey, Notification, Outcome, Source, StoreError,
    SubmitOutcome, generate_key, generate_webhook_secret, key_digest, next_ulid, now_ms, rows,
};

/// Schema migrations, applied in order once each.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_rate_limits.sql"),
    ),
];

/// The `NOTIFY` channel of job state changes; the payload is `<state>:<process id>`.
const CHANNEL: &str = "lucid_jobs";

/// Advisory lock ids: one node migrates at a time, one node reaps expired leases at a time.
const MIGRATION_LOCK: i64 = 0x6c75_6369_6401;
const REAPER_LOCK: i64 = 0x6c75_6369_6402;

/// Writes the job's current state to the webhook outbox, if it has a webhook, and announces
/// the change to every node, inside the transaction that changed it (a `NOTIFY` is delivered
/// at commit, and not at all on rollback).
async fn record_change(
    tx: &mut Transaction<'static, Postgres>,
    process_id: &str,
) -> Result<(), StoreError> {
    // One round trip: every state change of every job passes here.
    sqlx::query(
        "WITH job AS (SELECT * FROM jobs WHERE id = $3), \
         outbox AS (INSERT INTO webhook_outbox (id, process_id, key_id, url, status, progress, creation_ms, modification_ms, next_attempt_ms) \
           SELECT $1, id, key_id, webhook_url, state, progress, created_ms, modified_ms, $2 FROM job WHERE webhook_url IS NOT NULL) \
         SELECT pg_notify($4, state || ':' || id) FROM job",
    )
    .bind(next_ulid())
    .bind(now_ms())
    .bind(process_id)
    .bind(CHANNEL)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    events: broadcast::Sender<JobEvent>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`), migrates, and starts
    /// listening for other nodes' job changes.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        let (events, _) = broadcast::channel(1024);
        let store = PgStore { pool, events };
        store.migrate().await?;
        let mut listener = PgListener::connect_with(&store.pool).await?;
        listener.listen(CHANNEL).await?;
        tokio::spawn(forward_events(listener, store.events.clone()));
        Ok(store)
    }

    /// Applies the migrations this build knows and the database lacks. Safe to run from many
    /// nodes at once: an advisory lock makes them take turns.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('lucid_migrations') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            sqlx::raw_sql(
                "CREATE TABLE lucid_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
        }
        for (version, sql) in MIGRATIONS {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM lucid_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_none() {
                sqlx::raw_sql(*sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO lucid_migrations (version, applied_ms) VALUES ($1, $2)")
                    .bind(version)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// Turns notifications into [`JobEvent`]s. A dropped connection is re-established by the
/// listener on the next `recv`; what was announced meanwhile is lost, which is why every
/// listener also re-reads the store on a timer.
async fn forward_events(mut listener: PgListener, events: broadcast::Sender<JobEvent>) {
    loop {
        match listener.recv().await {
            Ok(note) => {
                if let Some(event) = parse_event(note.payload()) {
                    let _ = events.send(event);
                }
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "job change notifications interrupted; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn parse_event(payload: &str) -> Option<JobEvent> {
    let (state, id) = payload.split_once(':')?;
    Some(JobEvent {
        id: ProcessId(Uuid::try_parse(id).ok()?),
        state: JobState::parse(state)?,
    })
}

#[async_trait]
impl JobStore for PgStore {
    async fn create_key(&self, key: NewKey) -> Result<String, StoreError> {
        let plain = generate_key();
        let result = sqlx::query(
            "INSERT INTO api_keys (name, digest, scopes, unlimited, balance, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.name)
        .bind(key_digest(&plain))
        .bind(key.scopes.to_string())
        .bind(key.credits.is_none())
        .bind(key.credits.unwrap_or(0))
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Invalid(
                format!("a key named '{}' already exists", key.name),
            )),
            other => other.map(|_| plain).map_err(Into::into),
        }
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, scopes, unlimited, balance, reserved, revoked FROM api_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::key_info).collect()
    }

    async fn revoke_key(&self, name: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE api_keys SET revoked = TRUE WHERE name = $1 AND NOT revoked")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn key_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn authenticate(&self, plain: &str) -> Result<Option<KeyIdentity>, StoreError> {
        let digest = key_digest(plain);
        let row = sqlx::query(
            "SELECT id, name, digest, scopes FROM api_keys WHERE digest = $1 AND NOT revoked",
        )
        .bind(&digest)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("digest")?;
        if !bool::from(stored.as_bytes().ct_eq(digest.as_bytes())) {
            return Ok(None);
        }
        rows::identity(&row).map(Some)
    }

    async fn balance(&self, key_id: i64) -> Result<Balance, StoreError> {
        let row = sqlx::query("SELECT unlimited, balance, reserved FROM api_keys WHERE id = $1")
            .bind(key_id)
            .fetch_one(&self.pool)
            .await?;
        rows::balance(&row)
    }

    async fn insert_source(&self, s: &Source) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sources (id, key_id, filename, format, width, height, size, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(s.id.to_string())
            .bind(s.key_id)
            .bind(&s.filename)
            .bind(&s.format)
            .bind(s.width as i64)
            .bind(s.height as i64)
            .bind(s.size as i64)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn source(&self, key_id: i64, id: Uuid) -> Result<Option<Source>, StoreError> {
        let row = sqlx::query("SELECT * FROM sources WHERE id = $1 AND key_id = $2")
            .bind(id.to_string())
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::source).transpose()
    }

    async fn submit(
        &self,
        job: &Job,
        idempotency: Option<&Idempotency>,
    ) -> Result<SubmitOutcome, StoreError> {
        let mut tx = self.begin().await?;
        if let Some(idem) = idempotency {
            // Two submits with one idempotency key take turns, so exactly one creates the job.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))")
                .bind(job.key_id.to_string())
                .bind(&idem.key)
                .execute(&mut *tx)
                .await?;
            let since = now_ms() - IDEMPOTENCY_WINDOW_MS;
            let earlier = sqlx::query(
                "SELECT request_hash, process_id FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2 AND created_ms > $3",
            )
            .bind(job.key_id)
            .bind(&idem.key)
            .bind(since)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = earlier {
                let hash: String = row.try_get("request_hash")?;
                if hash != idem.request_hash {
                    return Ok(SubmitOutcome::IdempotencyConflict);
                }
                let first: String = row.try_get("process_id")?;
                let first = sqlx::query("SELECT * FROM jobs WHERE id = $1")
                    .bind(first)
                    .fetch_optional(&mut *tx)
                    .await?;
                // The first job may have been deleted since; then the key starts afresh.
                if let Some(first) = first {
                    return Ok(SubmitOutcome::Replay(Box::new(rows::job(&first)?)));
                }
            }
            sqlx::query(
                "INSERT INTO idempotency_keys (key_id, idem_key, request_hash, process_id, created_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (key_id, idem_key) DO UPDATE SET request_hash = excluded.request_hash, \
                 process_id = excluded.process_id, created_ms = excluded.created_ms",
            )
            .bind(job.key_id)
            .bind(&idem.key)
            .bind(&idem.request_hash)
            .bind(job.id.to_string())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        let reserved = sqlx::query(
            "UPDATE api_keys SET reserved = reserved + $1 WHERE id = $2 AND NOT revoked AND (unlimited OR balance - reserved >= $1)",
        )
        .bind(job.credits)
        .bind(job.key_id)
        .execute(&mut *tx)
        .await?;
        if reserved.rows_affected() == 0 {
            return Ok(SubmitOutcome::InsufficientCredits);
        }
        sqlx::query(
            "INSERT INTO jobs (id, key_id, source_id, endpoint, model, state, progress, filename, input_format, input_width, \
             input_height, output_format, output_width, output_height, crop_to_fill, options_json, credits, sync, work_secs, eta, \
             created_ms, modified_ms, webhook_url) VALUES ($1, $2, $3, $4, $5, 'Pending', 0, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(job.id.to_string())
        .bind(job.key_id)
        .bind(job.source_id.to_string())
        .bind(job.endpoint.slug())
        .bind(&job.model)
        .bind(&job.filename)
        .bind(&job.input_format)
        .bind(job.input_width as i64)
        .bind(job.input_height as i64)
        .bind(job.output_format.as_str())
        .bind(job.output_width as i64)
        .bind(job.output_height as i64)
        .bind(job.crop_to_fill)
        .bind(&job.options_json)
        .bind(job.credits)
        .bind(job.sync)
        .bind(job.work_secs)
        .bind(job.eta)
        .bind(job.created_ms)
        .bind(job.modified_ms)
        .bind(&job.webhook_url)
        .execute(&mut *tx)
        .await?;
        record_change(&mut tx, &job.id.to_string()).await?;
        tx.commit().await?;
        Ok(SubmitOutcome::Accepted)
    }

    async fn job(&self, key_id: i64, id: ProcessId) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1 AND key_id = $2")
            .bind(id.to_string())
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::job).transpose()
    }

    async fn job_any(&self, id: ProcessId) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::job).transpose()
    }

    async fn list(&self, key_id: i64, f: &ListFilter) -> Result<Vec<Job>, StoreError> {
        // UUIDv7 text order is creation order; 'g' sorts after every hex digit.
        let before = f
            .before
            .map(|b| b.to_string())
            .unwrap_or_else(|| "g".into());
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE key_id = $1 AND id < $2 AND ($3::TEXT IS NULL OR state = $3) \
             AND ($4::BIGINT IS NULL OR created_ms > $4) AND ($5::BIGINT IS NULL OR created_ms < $5) \
             AND ($6::TEXT IS NULL OR model = $6) ORDER BY id DESC LIMIT $7",
        )
        .bind(key_id)
        .bind(before)
        .bind(f.state.map(JobState::as_str))
        .bind(f.created_after_ms)
        .bind(f.created_before_ms)
        .bind(f.model.as_deref())
        .bind(f.limit.map(i64::from))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::job).collect()
    }

    async fn cancel(&self, key_id: i64, id: ProcessId) -> Result<CancelOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let cancelled: Option<i64> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'Cancelled', lease_owner = NULL, lease_expires_ms = NULL, modified_ms = $1 \
             WHERE id = $2 AND key_id = $3 AND state IN ('Pending', 'Processing') RETURNING credits",
        )
        .bind(now_ms())
        .bind(id.to_string())
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match cancelled {
            Some(credits) => {
                sqlx::query("UPDATE api_keys SET reserved = reserved - $1 WHERE id = $2")
                    .bind(credits)
                    .bind(key_id)
                    .execute(&mut *tx)
                    .await?;
                record_change(&mut tx, &id.to_string()).await?;
                CancelOutcome::Cancelled
            }
            None => {
                let exists: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = $1 AND key_id = $2")
                        .bind(id.to_string())
                        .bind(key_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_some() {
                    CancelOutcome::NotCancellable
                } else {
                    CancelOutcome::NotFound
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn delete(&self, key_id: i64, id: ProcessId) -> Result<DeleteOutcome, StoreError> {
        let mut tx = self.begin().await?;
        // Locked, so a finalize cannot slip in between reading the state and deleting.
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1 AND key_id = $2 FOR UPDATE")
            .bind(id.to_string())
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(DeleteOutcome::NotFound);
        };
        let job = rows::job(&row)?;
        if !job.state.is_terminal() {
            return Ok(DeleteOutcome::Unfinished);
        }
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted(Box::new(job)))
    }

    async fn delete_finished(&self, key_id: i64) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query("DELETE FROM jobs WHERE key_id = $1 AND state IN ('Completed', 'Failed', 'Cancelled') RETURNING *")
            .bind(key_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::job).collect()
    }

    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Job>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        // SKIP LOCKED: workers on other nodes claiming at the same moment take the next job
        // instead of queueing behind this one.
        let row = sqlx::query(
            "UPDATE jobs SET state = 'Processing', lease_owner = $1, lease_expires_ms = $2, attempts = attempts + 1, modified_ms = $3 \
             WHERE id = (SELECT id FROM jobs WHERE state = 'Pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
        )
        .bind(worker)
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let job = row.as_ref().map(rows::job).transpose()?;
        if let Some(job) = &job {
            record_change(&mut tx, &job.id.to_string()).await?;
        }
        tx.commit().await?;
        Ok(job)
    }

    async fn renew(
        &self,
        id: ProcessId,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE jobs SET lease_expires_ms = $1 WHERE id = $2 AND state = 'Processing' AND lease_owner = $3")
            .bind(now_ms() + lease.as_millis() as i64)
            .bind(id.to_string())
            .bind(worker)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn release(&self, id: ProcessId, worker: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE jobs SET state = 'Pending', progress = 0, lease_owner = NULL, lease_expires_ms = NULL, \
             attempts = GREATEST(attempts - 1, 0), modified_ms = $1 WHERE id = $2 AND state = 'Processing' AND lease_owner = $3",
        )
        .bind(now_ms())
        .bind(id.to_string())
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        let released = r.rows_affected() == 1;
        if released {
            record_change(&mut tx, &id.to_string()).await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    async fn set_progress(
        &self,
        id: ProcessId,
        worker: &str,
        progress: u8,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE jobs SET progress = $1, modified_ms = $2 WHERE id = $3 AND state = 'Processing' AND lease_owner = $4",
        )
        .bind(progress.min(100) as i64)
        .bind(now_ms())
        .bind(id.to_string())
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn finalize(
        &self,
        id: ProcessId,
        worker: &str,
        outcome: Outcome,
    ) -> Result<Finalized, StoreError> {
        let mut tx = self.begin().await?;
        let (state, error) = match &outcome {
            Outcome::Completed => ("Completed", None),
            Outcome::Failed(msg) => ("Failed", Some(msg.as_str())),
        };
        let row = sqlx::query(
            "UPDATE jobs SET state = $1, progress = CASE WHEN $1 = 'Completed' THEN 100 ELSE progress END, \
             charged = ($1 = 'Completed'), error = $2, lease_owner = NULL, lease_expires_ms = NULL, modified_ms = $3 \
             WHERE id = $4 AND state = 'Processing' AND lease_owner = $5 RETURNING key_id, credits",
        )
        .bind(state)
        .bind(error)
        .bind(now_ms())
        .bind(id.to_string())
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Finalized::LostRace);
        };
        let (key_id, credits): (i64, i64) = (row.try_get("key_id")?, row.try_get("credits")?);
        let charge = if matches!(outcome, Outcome::Completed) {
            credits
        } else {
            0
        };
        sqlx::query(
            "UPDATE api_keys SET reserved = reserved - $1, balance = balance - $2 WHERE id = $3",
        )
        .bind(credits)
        .bind(charge)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        record_change(&mut tx, &id.to_string()).await?;
        tx.commit().await?;
        Ok(Finalized::Done)
    }

    async fn expire_leases(&self, max_attempts: u32) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        // Every node runs a reaper; one at a time is enough, and avoids two reapers locking
        // the same expired rows in different orders.
        let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(REAPER_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !ours {
            return Ok(0);
        }
        let now = now_ms();
        let failed = sqlx::query(
            "UPDATE jobs SET state = 'Failed', error = 'The job ran out of attempts.', lease_owner = NULL, lease_expires_ms = NULL, modified_ms = $1 \
             WHERE state = 'Processing' AND lease_expires_ms < $1 AND attempts >= $2 RETURNING id, key_id, credits",
        )
        .bind(now)
        .bind(max_attempts as i64)
        .fetch_all(&mut *tx)
        .await?;
        for row in &failed {
            sqlx::query("UPDATE api_keys SET reserved = reserved - $1 WHERE id = $2")
                .bind(row.try_get::<i64, _>("credits")?)
                .bind(row.try_get::<i64, _>("key_id")?)
                .execute(&mut *tx)
                .await?;
            record_change(&mut tx, &row.try_get::<String, _>("id")?).await?;
        }
        let retried: Vec<String> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'Pending', progress = 0, lease_owner = NULL, lease_expires_ms = NULL, modified_ms = $1 \
             WHERE state = 'Processing' AND lease_expires_ms < $1 RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for id in &retried {
            record_change(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok((failed.len() + retried.len()) as u64)
    }

    async fn queued_work_secs(&self) -> Result<f64, StoreError> {
        let secs: Option<f64> = sqlx::query_scalar(
            "SELECT SUM(work_secs * (100 - progress) / 100.0)::DOUBLE PRECISION FROM jobs WHERE state IN ('Pending', 'Processing')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(secs.unwrap_or(0.0))
    }

    async fn census(&self) -> Result<crate::Census, StoreError> {
        let rows = sqlx::query_as(crate::rows::CENSUS_SQL)
            .fetch_all(&self.pool)
            .await?;
        crate::rows::census(rows)
    }

    async fn claim_notifications(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Notification>, StoreError> {
        let now = now_ms();
        let rows = sqlx::query(
            "UPDATE webhook_outbox SET next_attempt_ms = $1 WHERE id IN ( \
               SELECT o.id FROM webhook_outbox o WHERE o.state = 'pending' AND o.next_attempt_ms <= $2 \
               AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.process_id = o.process_id AND p.state = 'pending' AND p.seq < o.seq) \
               ORDER BY o.seq LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(i64, Notification)> = rows
            .iter()
            .map(|r| Ok((r.try_get("seq")?, rows::notification(r)?)))
            .collect::<Result<_, StoreError>>()?;
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, n)| n).collect())
    }

    async fn record_delivery(&self, id: &str, delivery: Delivery) -> Result<(), StoreError> {
        let (state, next, error) = match &delivery {
            Delivery::Delivered => ("delivered", None, None),
            Delivery::Dropped(e) => ("dropped", None, Some(e.as_str())),
            Delivery::Retry { at_ms, error } => ("pending", Some(*at_ms), Some(error.as_str())),
            Delivery::Exhausted(e) => ("exhausted", None, Some(e.as_str())),
        };
        sqlx::query(
            "UPDATE webhook_outbox SET state = $1, attempts = attempts + 1, next_attempt_ms = COALESCE($2, next_attempt_ms), last_error = $3 WHERE id = $4",
        )
        .bind(state)
        .bind(next)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn webhook_secret(&self, key_id: i64, rotate: bool) -> Result<String, StoreError> {
        let sql = if rotate {
            "UPDATE api_keys SET webhook_secret = $1 WHERE id = $2 RETURNING webhook_secret"
        } else {
            "UPDATE api_keys SET webhook_secret = COALESCE(webhook_secret, $1) WHERE id = $2 RETURNING webhook_secret"
        };
        let secret: Option<String> = sqlx::query_scalar(sql)
            .bind(generate_webhook_secret())
            .bind(key_id)
            .fetch_one(&self.pool)
            .await?;
        secret.ok_or_else(|| StoreError::Corrupt("webhook secret missing".into()))
    }

    async fn key_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM api_keys WHERE name = $1 AND NOT revoked")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let fresh: [u8; 32] = rand::random();
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh.to_vec())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// GCRA on the database server's clock, so every node counts against one budget: a request
    /// is let through when the key's theoretical arrival time, pushed one interval on, stays
    /// within `burst` intervals of now.
    async fn shared_rate_limit(
        &self,
        key_id: i64,
        per_second: u32,
        burst: u32,
    ) -> Result<Option<Result<(), Duration>>, StoreError> {
        let interval = 1_000_000 / i64::from(per_second.max(1));
        let allowance = interval * i64::from(burst.max(1));
        let row: (bool, i64) = sqlx::query_as(
            "WITH now AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT AS us),              taken AS (INSERT INTO rate_limits (key_id, tat_us) SELECT $1, us + $2 FROM now                ON CONFLICT (key_id) DO UPDATE SET tat_us = GREATEST(rate_limits.tat_us, (SELECT us FROM now)) + $2                WHERE GREATEST(rate_limits.tat_us, (SELECT us FROM now)) + $2 - (SELECT us FROM now) <= $3                RETURNING tat_us)              SELECT EXISTS (SELECT 1 FROM taken),                COALESCE((SELECT GREATEST(tat_us, (SELECT us FROM now)) + $2 - (SELECT us FROM now) - $3                  FROM rate_limits WHERE key_id = $1), 0)",
        )
        .bind(key_id)
        .bind(interval)
        .bind(allowance)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(match row {
            (true, _) => Ok(()),
            (false, wait_us) => Err(Duration::from_micros(wait_us.max(1) as u64)),
        }))
    }

    fn events(&self) -> Option<broadcast::Receiver<JobEvent>> {
        Some(self.events.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_payloads_parse() {
        let id = ProcessId::new();
        assert_eq!(
            parse_event(&format!("Cancelled:{id}")),
            Some(JobEvent {
                id,
                state: JobState::Cancelled
            })
        );
        assert_eq!(parse_event("Cancelled"), None);
        assert_eq!(
            parse_event("Nope:0190b5a2-0000-7000-8000-000000000000"),
            None
        );
    }
}
