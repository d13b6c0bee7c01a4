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

/// `lucid move-data`'s copy: an embedded installation's rows and blobs arrive whole in
/// PostgreSQL + S3, and the same keys, jobs and secrets work there.
#[tokio::test]
async fn an_embedded_installation_moves_to_postgres_and_s3() {
    use lucid_store::conformance::{job, key};
    use lucid_store::sqlite::SqliteStore;
    use lucid_store::{LocalBlobStore, NewKey, Outcome, transfer};

    let Some(url) = services::postgres_database().await else {
        return;
    };
    let Some(s3) = services::s3_server().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&format!(
        "sqlite://{}",
        dir.path().join("lucid.db").display()
    ))
    .await
    .unwrap();
    let plain = sqlite
        .create_key(NewKey {
            credits: Some(10),
            ..NewKey::all_scopes("shop")
        })
        .await
        .unwrap();
    let shop = sqlite.authenticate(&plain).await.unwrap().unwrap().id;
    let other = key(&sqlite, "other", None).await;
    let done = job(shop, 3);
    let waiting = job(shop, 2);
    let mut hooked = job(other, 1);
    hooked.webhook_url = Some("https://example.com/hook".into());
    for j in [&done, &waiting, &hooked] {
        sqlite.submit(j, None).await.unwrap();
    }
    let claimed = sqlite
        .claim("w", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, done.id);
    sqlite
        .finalize(done.id, "w", Outcome::Completed)
        .await
        .unwrap();
    let signing = sqlite.secret("link-signing").await.unwrap();
    let webhook = sqlite.webhook_secret(other, false).await.unwrap();
    let blobs = LocalBlobStore::new(dir.path().join("blobs")).unwrap();
    blobs
        .put("sources/a", bytes::Bytes::from_static(b"source"))
        .await
        .unwrap();
    blobs
        .put("outputs/b.jpg", bytes::Bytes::from_static(b"output"))
        .await
        .unwrap();

    let pg = PgStore::open(&url).await.unwrap();
    let copied = transfer::copy_database(&sqlite, &pg).await.unwrap();
    assert!(
        copied.contains(&("jobs", 3)) && copied.contains(&("api_keys", 2)),
        "{copied:?}"
    );
    let (s3_store, _) = s3.fresh_store();
    let moved = transfer::copy_blobs(&dir.path().join("blobs"), &s3_store)
        .await
        .unwrap();
    assert_eq!(moved, 2);

    // The same key authenticates, with the same balance and reservations.
    assert_eq!(pg.authenticate(&plain).await.unwrap().unwrap().id, shop);
    assert_eq!(
        pg.balance(shop).await.unwrap(),
        sqlite.balance(shop).await.unwrap()
    );
    let b = pg.balance(shop).await.unwrap();
    assert_eq!((b.total, b.reserved), (7, 2));
    for j in [&done, &waiting, &hooked] {
        assert_eq!(
            pg.job_any(j.id).await.unwrap(),
            sqlite.job_any(j.id).await.unwrap()
        );
    }
    // Work goes on: the waiting job is claimable, new keys get fresh ids, secrets are kept.
    assert_eq!(
        pg.claim("w2", std::time::Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap()
            .id,
        waiting.id
    );
    let newer = key(&pg, "newer", None).await;
    assert!(newer > other);
    assert_eq!(pg.secret("link-signing").await.unwrap(), signing);
    assert_eq!(pg.webhook_secret(other, false).await.unwrap(), webhook);
    assert_eq!(
        pg.claim_notifications(10, std::time::Duration::from_secs(60))
            .await
            .unwrap()
            .len(),
        1,
        "the webhook notification is still due"
    );
    assert_eq!(
        &s3_store.get("outputs/b.jpg").await.unwrap().unwrap()[..],
        b"output"
    );
    assert_eq!(
        &s3_store.get("sources/a").await.unwrap().unwrap()[..],
        b"source"
    );
    assert!(
        dir.path().join("blobs/sources/a").exists(),
        "the source folder is untouched"
    );
    // A second move into the now non-empty database is refused.
    assert!(transfer::copy_database(&sqlite, &pg).await.is_err());
}
