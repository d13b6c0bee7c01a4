//! Moving an embedded installation to the shared stores: every row of the SQLite database into
//! an empty PostgreSQL database, and every blob of the local folder into another blob store
//! (S3). The source is only read.

use std::path::{Path, PathBuf};

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{BlobStore, StoreError};

/// The tables copied row for row, parents first. Both schemas name the same columns; the
/// values travel as JSON and PostgreSQL's `json_populate_recordset` gives them their types
/// (SQLite's 0/1 flags become booleans).
const TABLES: &[&str] = &[
    "api_keys",
    "sources",
    "jobs",
    "idempotency_keys",
    "webhook_outbox",
];

/// Rows per round trip.
const BATCH: i64 = 1000;

/// How many rows of each table were copied.
pub type Copied = Vec<(&'static str, u64)>;

/// Copies every key, source, job, idempotency key, webhook notification and server secret from
/// `from` into `to`, in one PostgreSQL transaction. `to` must hold no keys yet.
pub async fn copy_database(from: &SqliteStore, to: &PgStore) -> Result<Copied, StoreError> {
    let (sqlite, pg) = (from.pool(), to.pool());
    let mut tx = pg.begin().await?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Err(StoreError::Invalid(
            "the PostgreSQL database already has keys; move data into an empty one".into(),
        ));
    }
    let mut copied = Vec::new();
    for &table in TABLES {
        // Table and column names come from this list and SQLite's own catalogue.
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        )))
        .fetch_all(sqlite)
        .await?;
        let fields: Vec<String> = columns.iter().map(|c| format!("'{c}', {c}")).collect();
        let read = format!(
            "SELECT json_group_array(json_object({})), COUNT(*), MAX(rowid) FROM \
             (SELECT rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT {BATCH})",
            fields.join(", ")
        );
        let list = columns.join(", ");
        let write = format!(
            "INSERT INTO {table} ({list}) SELECT {list} FROM json_populate_recordset(NULL::{table}, $1::json) \
             WITH ORDINALITY ORDER BY ordinality"
        );
        let (mut after, mut rows) = (0i64, 0u64);
        loop {
            let (json, count, last): (String, i64, Option<i64>) =
                sqlx::query_as(sqlx::AssertSqlSafe(read.clone()))
                    .bind(after)
                    .fetch_one(sqlite)
                    .await?;
            let Some(last) = last else { break };
            sqlx::query(sqlx::AssertSqlSafe(write.clone()))
                .bind(json)
                .execute(&mut *tx)
                .await?;
            rows += count as u64;
            after = last;
        }
        copied.push((table, rows));
    }
    // New keys continue after the copied ids.
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('api_keys', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM api_keys",
    )
    .execute(&mut *tx)
    .await?;
    // Server secrets (the link-signing key), so links already handed out stay valid.
    let secrets: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT name, value FROM settings")
        .fetch_all(sqlite)
        .await?;
    for (name, value) in &secrets {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    }
    copied.push(("settings", secrets.len() as u64));
    tx.commit().await?;
    Ok(copied)
}

/// Copies every blob under the local folder `root` into `to`, under the same keys; answers how
/// many. The files stay where they are (each is uploaded through a hard link the upload
/// consumes); a local store's unfinished temporary files are skipped.
pub async fn copy_blobs(root: &Path, to: &dyn BlobStore) -> Result<u64, StoreError> {
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut copied = 0;
    while let Some(dir) = pending.pop() {
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            if entry.file_type().await?.is_dir() {
                pending.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp-") || name.starts_with(".move-") {
                continue;
            }
            let key = path
                .strip_prefix(root)
                .map_err(|_| StoreError::Corrupt(format!("{} escaped the folder", path.display())))?
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let link = dir.join(format!(".move-{}", uuid::Uuid::new_v4()));
            tokio::fs::hard_link(&path, &link).await?;
            let uploaded = to.put_file(&key, &link).await;
            let _ = tokio::fs::remove_file(&link).await;
            uploaded?;
            copied += 1;
        }
    }
    Ok(copied)
}
