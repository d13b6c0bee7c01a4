//! The embedded [`JobStore`]: SQLite in WAL mode. Write transactions start with
//! `BEGIN IMMEDIATE`, so two writers never deadlock upgrading a read lock, and every state
//! change names the states it may leave in its `WHERE`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use lucid_core::key::{Balance, KeyIdentity};
use lucid_core::{Job, JobState, ProcessId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::{
    CancelOutcome, DeleteOutcome, Delivery, Finalized, IDEMPOTENCY_WINDOW_MS, Idempotency,
    JobStore, KeyInfo, ListFilter, NewKey, Notification, Outcome, Source, StoreError,
    SubmitOutcome, generate_key, generate_webhook_secret, key_digest, next_ulid, now_ms, rows,
};

/// Schema migrations, applied in order once each.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_webhooks_idempotency.sql"),
    ),
];

/// Writes the job's current state to the webhook outbox, if it has a webhook, inside the
/// transaction that changed it.
async fn enqueue_webhook(
    tx: &mut Transaction<'static, Sqlite>,
    process_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_outbox (id, process_id, key_id, url, status, progress, creation_ms, modification_ms, next_attempt_ms) \
         SELECT ?, id, key_id, webhook_url, state, progress, created_ms, modified_ms, ? FROM jobs WHERE id = ? AND webhook_url IS NOT NULL",
    )
    .bind(next_ulid())
    .bind(now_ms())
    .bind(process_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url` (`sqlite://path`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed submit survives a power cut, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS lucid_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")
            .execute(&self.pool)
            .await?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.begin().await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM lucid_migrations WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_none() {
                sqlx::raw_sql(*sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO lucid_migrations (version, applied_ms) VALUES (?, ?)")
                    .bind(version)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn create_key(&self, key: NewKey) -> Result<String, StoreError> {
        let plain = generate_key();
        let result = sqlx::query(
            "INSERT INTO api_keys (name, digest, scopes, unlimited, balance, created_ms) VALUES (?, ?, ?, ?, ?, ?)",
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
        let r = sqlx::query("UPDATE api_keys SET revoked = 1 WHERE name = ? AND revoked = 0")
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
            "SELECT id, name, digest, scopes FROM api_keys WHERE digest = ? AND revoked = 0",
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
        let row = sqlx::query("SELECT unlimited, balance, reserved FROM api_keys WHERE id = ?")
            .bind(key_id)
            .fetch_one(&self.pool)
            .await?;
        rows::balance(&row)
    }

    async fn insert_source(&self, s: &Source) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sources (id, key_id, filename, format, width, height, size, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
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
        let row = sqlx::query("SELECT * FROM sources WHERE id = ? AND key_id = ?")
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
            let since = now_ms() - IDEMPOTENCY_WINDOW_MS;
            let earlier = sqlx::query(
                "SELECT request_hash, process_id FROM idempotency_keys WHERE key_id = ? AND idem_key = ? AND created_ms > ?",
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
                let first = sqlx::query("SELECT * FROM jobs WHERE id = ?")
                    .bind(first)
                    .fetch_optional(&mut *tx)
                    .await?;
                // The first job may have been deleted since; then the key starts afresh.
                if let Some(first) = first {
                    return Ok(SubmitOutcome::Replay(Box::new(rows::job(&first)?)));
                }
            }
            sqlx::query(
                "INSERT INTO idempotency_keys (key_id, idem_key, request_hash, process_id, created_ms) VALUES (?, ?, ?, ?, ?) \
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
            "UPDATE api_keys SET reserved = reserved + ?1 WHERE id = ?2 AND revoked = 0 AND (unlimited = 1 OR balance - reserved >= ?1)",
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
             created_ms, modified_ms, webhook_url) VALUES (?, ?, ?, ?, ?, 'Pending', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        enqueue_webhook(&mut tx, &job.id.to_string()).await?;
        tx.commit().await?;
        Ok(SubmitOutcome::Accepted)
    }

    async fn job(&self, key_id: i64, id: ProcessId) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ? AND key_id = ?")
            .bind(id.to_string())
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::job).transpose()
    }

    async fn job_any(&self, id: ProcessId) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?")
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
        let limit = f.limit.map(i64::from).unwrap_or(-1);
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE key_id = ?1 AND id < ?2 AND (?3 IS NULL OR state = ?3) \
             AND (?4 IS NULL OR created_ms > ?4) AND (?5 IS NULL OR created_ms < ?5) \
             AND (?6 IS NULL OR model = ?6) ORDER BY id DESC LIMIT ?7",
        )
        .bind(key_id)
        .bind(before)
        .bind(f.state.map(JobState::as_str))
        .bind(f.created_after_ms)
        .bind(f.created_before_ms)
        .bind(f.model.as_deref())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::job).collect()
    }

    async fn cancel(&self, key_id: i64, id: ProcessId) -> Result<CancelOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let cancelled: Option<i64> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'Cancelled', lease_owner = NULL, lease_expires_ms = NULL, modified_ms = ? \
             WHERE id = ? AND key_id = ? AND state IN ('Pending', 'Processing') RETURNING credits",
        )
        .bind(now_ms())
        .bind(id.to_string())
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match cancelled {
            Some(credits) => {
                sqlx::query("UPDATE api_keys SET reserved = reserved - ? WHERE id = ?")
                    .bind(credits)
                    .bind(key_id)
                    .execute(&mut *tx)
                    .await?;
                enqueue_webhook(&mut tx, &id.to_string()).await?;
                CancelOutcome::Cancelled
            }
            None => {
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = ? AND key_id = ?")
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
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ? AND key_id = ?")
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
        sqlx::query(
            "DELETE FROM jobs WHERE id = ? AND state IN ('Completed', 'Failed', 'Cancelled')",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted(Box::new(job)))
    }

    async fn delete_finished(&self, key_id: i64) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query("DELETE FROM jobs WHERE key_id = ? AND state IN ('Completed', 'Failed', 'Cancelled') RETURNING *")
            .bind(key_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::job).collect()
    }

    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Job>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE jobs SET state = 'Processing', lease_owner = ?, lease_expires_ms = ?, attempts = attempts + 1, modified_ms = ? \
             WHERE id = (SELECT id FROM jobs WHERE state = 'Pending' ORDER BY id LIMIT 1) AND state = 'Pending' RETURNING *",
        )
        .bind(worker)
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let job = row.as_ref().map(rows::job).transpose()?;
        if let Some(job) = &job {
            enqueue_webhook(&mut tx, &job.id.to_string()).await?;
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
        let r = sqlx::query("UPDATE jobs SET lease_expires_ms = ? WHERE id = ? AND state = 'Processing' AND lease_owner = ?")
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
             attempts = MAX(attempts - 1, 0), modified_ms = ? WHERE id = ? AND state = 'Processing' AND lease_owner = ?",
        )
        .bind(now_ms())
        .bind(id.to_string())
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        let released = r.rows_affected() == 1;
        if released {
            enqueue_webhook(&mut tx, &id.to_string()).await?;
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
            "UPDATE jobs SET progress = ?, modified_ms = ? WHERE id = ? AND state = 'Processing' AND lease_owner = ?",
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
            "UPDATE jobs SET state = ?, progress = CASE WHEN ? = 'Completed' THEN 100 ELSE progress END, \
             charged = (? = 'Completed'), error = ?, lease_owner = NULL, lease_expires_ms = NULL, modified_ms = ? \
             WHERE id = ? AND state = 'Processing' AND lease_owner = ? RETURNING key_id, credits",
        )
        .bind(state)
        .bind(state)
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
            "UPDATE api_keys SET reserved = reserved - ?, balance = balance - ? WHERE id = ?",
        )
        .bind(credits)
        .bind(charge)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        enqueue_webhook(&mut tx, &id.to_string()).await?;
        tx.commit().await?;
        Ok(Finalized::Done)
    }

    async fn expire_leases(&self, max_attempts: u32) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let failed = sqlx::query(
            "UPDATE jobs SET state = 'Failed', error = 'The job ran out of attempts.', lease_owner = NULL, lease_expires_ms = NULL, modified_ms = ? \
             WHERE state = 'Processing' AND lease_expires_ms < ? AND attempts >= ? RETURNING id, key_id, credits",
        )
        .bind(now)
        .bind(now)
        .bind(max_attempts as i64)
        .fetch_all(&mut *tx)
        .await?;
        for row in &failed {
            sqlx::query("UPDATE api_keys SET reserved = reserved - ? WHERE id = ?")
                .bind(row.try_get::<i64, _>("credits")?)
                .bind(row.try_get::<i64, _>("key_id")?)
                .execute(&mut *tx)
                .await?;
            enqueue_webhook(&mut tx, &row.try_get::<String, _>("id")?).await?;
        }
        let retried: Vec<String> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'Pending', progress = 0, lease_owner = NULL, lease_expires_ms = NULL, modified_ms = ? \
             WHERE state = 'Processing' AND lease_expires_ms < ? RETURNING id",
        )
        .bind(now)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for id in &retried {
            enqueue_webhook(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok((failed.len() + retried.len()) as u64)
    }

    async fn queued_work_secs(&self) -> Result<f64, StoreError> {
        let secs: Option<f64> = sqlx::query_scalar(
            "SELECT SUM(work_secs * (100 - progress) / 100.0) FROM jobs WHERE state IN ('Pending', 'Processing')",
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
            "UPDATE webhook_outbox SET next_attempt_ms = ? WHERE id IN ( \
               SELECT o.id FROM webhook_outbox o WHERE o.state = 'pending' AND o.next_attempt_ms <= ? \
               AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.process_id = o.process_id AND p.state = 'pending' AND p.id < o.id) \
               ORDER BY o.id LIMIT ?) RETURNING *",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Notification> = rows
            .iter()
            .map(rows::notification)
            .collect::<Result<_, StoreError>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn record_delivery(&self, id: &str, delivery: Delivery) -> Result<(), StoreError> {
        let (state, next, error) = match &delivery {
            Delivery::Delivered => ("delivered", None, None),
            Delivery::Dropped(e) => ("dropped", None, Some(e.as_str())),
            Delivery::Retry { at_ms, error } => ("pending", Some(*at_ms), Some(error.as_str())),
            Delivery::Exhausted(e) => ("exhausted", None, Some(e.as_str())),
        };
        sqlx::query(
            "UPDATE webhook_outbox SET state = ?, attempts = attempts + 1, next_attempt_ms = COALESCE(?, next_attempt_ms), last_error = ? WHERE id = ?",
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
        let fresh = generate_webhook_secret();
        let sql = if rotate {
            "UPDATE api_keys SET webhook_secret = ? WHERE id = ?"
        } else {
            "UPDATE api_keys SET webhook_secret = ? WHERE id = ? AND webhook_secret IS NULL"
        };
        sqlx::query(sql)
            .bind(&fresh)
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        let secret: Option<String> =
            sqlx::query_scalar("SELECT webhook_secret FROM api_keys WHERE id = ?")
                .bind(key_id)
                .fetch_one(&self.pool)
                .await?;
        secret.ok_or_else(|| StoreError::Corrupt("webhook secret missing".into()))
    }

    async fn key_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM api_keys WHERE name = ? AND revoked = 0")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let fresh: [u8; 32] = rand::random();
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh.to_vec())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
