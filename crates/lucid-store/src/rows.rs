//! Turning result rows into domain values, once for every backend: both schemas use the same
//! column names, so only the column types' decoding differs ([`Cols`]).

use lucid_core::key::{Balance, KeyIdentity, Scopes, UNLIMITED_CREDITS};
use lucid_core::{Endpoint, Job, JobState, OutputFormat, ProcessId};
use uuid::Uuid;

use crate::{KeyInfo, Notification, Source, StoreError};

/// Typed column access on a backend's row. SQLite keeps flags as integers and PostgreSQL as
/// booleans; both keep numbers as 64-bit integers or doubles and ids as text.
pub(crate) trait Cols {
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error>;
    fn real(&self, col: &str) -> Result<f64, sqlx::Error>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
            fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
            fn real(&self, col: &str) -> Result<f64, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
        }
    };
}

impl_cols!(sqlx::sqlite::SqliteRow);
impl_cols!(sqlx::postgres::PgRow);

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored row has a bad {what}"))
}

fn uuid(row: &impl Cols, col: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(&row.text(col)?).map_err(|_| corrupt(col))
}

fn scopes(row: &impl Cols) -> Result<Scopes, StoreError> {
    Scopes::parse(&row.text("scopes")?).map_err(|e| StoreError::Corrupt(e.message))
}

pub(crate) fn job(row: &impl Cols) -> Result<Job, StoreError> {
    let endpoint = row.text("endpoint")?;
    let state = row.text("state")?;
    let output_format = row.text("output_format")?;
    Ok(Job {
        id: ProcessId(uuid(row, "id")?),
        key_id: row.int("key_id")?,
        source_id: uuid(row, "source_id")?,
        endpoint: Endpoint::from_slug(&endpoint).ok_or_else(|| corrupt("endpoint"))?,
        model: row.text("model")?,
        state: JobState::parse(&state).ok_or_else(|| corrupt("state"))?,
        progress: row.int("progress")?.clamp(0, 100) as u8,
        filename: row.text("filename")?,
        input_format: row.text("input_format")?,
        input_width: row.int("input_width")? as u32,
        input_height: row.int("input_height")? as u32,
        output_format: OutputFormat::parse(&output_format)
            .ok_or_else(|| corrupt("output_format"))?,
        output_width: row.int("output_width")? as u32,
        output_height: row.int("output_height")? as u32,
        crop_to_fill: row.flag("crop_to_fill")?,
        options_json: row.text("options_json")?,
        credits: row.int("credits")?,
        sync: row.flag("sync")?,
        work_secs: row.real("work_secs")?,
        eta: row.int("eta")?,
        created_ms: row.int("created_ms")?,
        modified_ms: row.int("modified_ms")?,
        attempts: row.int("attempts")? as u32,
        error: row.opt_text("error")?,
        webhook_url: row.opt_text("webhook_url")?,
    })
}

/// A key's balance from its `unlimited`, `balance` and `reserved` columns.
pub(crate) fn balance(row: &impl Cols) -> Result<Balance, StoreError> {
    let reserved = row.int("reserved")?;
    let total = if row.flag("unlimited")? {
        UNLIMITED_CREDITS
    } else {
        row.int("balance")?
    };
    Ok(Balance {
        available: total - reserved,
        reserved,
        total,
    })
}

pub(crate) fn key_info(row: &impl Cols) -> Result<KeyInfo, StoreError> {
    Ok(KeyInfo {
        name: row.text("name")?,
        scopes: scopes(row)?,
        balance: balance(row)?,
        unlimited: row.flag("unlimited")?,
        revoked: row.flag("revoked")?,
    })
}

pub(crate) fn identity(row: &impl Cols) -> Result<KeyIdentity, StoreError> {
    Ok(KeyIdentity {
        id: row.int("id")?,
        name: row.text("name")?,
        scopes: scopes(row)?,
    })
}

pub(crate) fn source(row: &impl Cols) -> Result<Source, StoreError> {
    Ok(Source {
        id: uuid(row, "id")?,
        key_id: row.int("key_id")?,
        filename: row.text("filename")?,
        format: row.text("format")?,
        width: row.int("width")? as u32,
        height: row.int("height")? as u32,
        size: row.int("size")? as u64,
    })
}

pub(crate) fn notification(row: &impl Cols) -> Result<Notification, StoreError> {
    let status = row.text("status")?;
    Ok(Notification {
        id: row.text("id")?,
        process_id: ProcessId(uuid(row, "process_id")?),
        key_id: row.int("key_id")?,
        url: row.text("url")?,
        status: JobState::parse(&status).ok_or_else(|| corrupt("outbox status"))?,
        progress: row.int("progress")?.clamp(0, 100) as u8,
        creation_ms: row.int("creation_ms")?,
        modification_ms: row.int("modification_ms")?,
        attempts: row.int("attempts")? as u32,
    })
}

/// Both schemas' census query; [`census`] reads its rows.
pub(crate) const CENSUS_SQL: &str =
    "SELECT state, COUNT(*), MIN(created_ms) FROM jobs GROUP BY state ORDER BY state";

/// A census from `(state, count, oldest created_ms)` rows grouped by state.
pub(crate) fn census(rows: Vec<(String, i64, i64)>) -> Result<crate::Census, StoreError> {
    let mut census = crate::Census::default();
    for (state, count, oldest_ms) in rows {
        let state = JobState::parse(&state).ok_or_else(|| corrupt("state"))?;
        if state == JobState::Pending {
            census.oldest_pending_ms = Some(oldest_ms);
        }
        census.by_state.push((state, count));
    }
    Ok(census)
}
