//! The store conformance suite on the embedded SQLite store.

use std::sync::Arc;

use lucid_store::JobStore;
use lucid_store::sqlite::SqliteStore;

async fn sqlite() -> (Arc<dyn JobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lucid.db").display());
    (Arc::new(SqliteStore::open(&url).await.unwrap()), dir)
}

lucid_store::conformance_tests!(sqlite());
