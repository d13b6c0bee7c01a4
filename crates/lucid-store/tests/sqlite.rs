//! The store conformance suites on the embedded stores: SQLite and a local folder.

use std::sync::Arc;

use lucid_store::sqlite::SqliteStore;
use lucid_store::{BlobStore, JobStore, LocalBlobStore};

async fn sqlite() -> Option<(Arc<dyn JobStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lucid.db").display());
    Some((Arc::new(SqliteStore::open(&url).await.unwrap()), dir))
}

lucid_store::conformance_tests!(sqlite());

mod local_blobs {
    use super::*;

    async fn local() -> Option<(Arc<dyn BlobStore>, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path().join("blobs")).unwrap();
        Some((Arc::new(store), dir))
    }

    lucid_store::blob_conformance_tests!(local());
}
