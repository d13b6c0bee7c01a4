//! The store conformance suites on the shared stores: PostgreSQL and S3 (SeaweedFS), started by
//! `lucid_store::services` for this test process. They run in CI; elsewhere they skip when
//! PostgreSQL or `weed` is not installed.

use std::sync::Arc;

use lucid_store::postgres::PgStore;
use lucid_store::{BlobStore, JobStore, services};

async fn postgres() -> Option<(Arc<dyn JobStore>, ())> {
    let url = services::postgres_database().await?;
    Some((Arc::new(PgStore::open(&url).await.unwrap()), ()))
}

lucid_store::conformance_tests!(postgres());

mod s3_blobs {
    use super::*;

    async fn s3() -> Option<(Arc<dyn BlobStore>, ())> {
        let server = services::s3_server().await?;
        Some((Arc::new(server.fresh_store().0), ()))
    }

    lucid_store::blob_conformance_tests!(s3());
}
