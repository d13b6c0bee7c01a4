//! The behaviours every [`JobStore`] must have, as public functions over `&dyn JobStore`.
//! Each backend's tests call all of them (see `tests/sqlite.rs`); a new backend passes the same
//! suite. Enabled by the `conformance` feature.

use std::sync::Arc;
use std::time::Duration;

use lucid_core::key::Scopes;
use lucid_core::{Endpoint, Job, JobState, OutputFormat, ProcessId};
use uuid::Uuid;

use bytes::Bytes;

use crate::{
    BlobStore, CancelOutcome, DeleteOutcome, Delivery, Finalized, Idempotency, JobStore,
    ListFilter, NewKey, Outcome, SubmitOutcome, now_ms,
};

/// A key with `credits` (None = unlimited); answers its id.
pub async fn key(store: &dyn JobStore, name: &str, credits: Option<i64>) -> i64 {
    let plain = store
        .create_key(NewKey {
            name: name.into(),
            scopes: Scopes::all(),
            credits,
        })
        .await
        .unwrap();
    store.authenticate(&plain).await.unwrap().unwrap().id
}

/// A Pending job of `key_id` costing `credits`.
pub fn job(key_id: i64, credits: i64) -> Job {
    let now = now_ms();
    Job {
        id: ProcessId::new(),
        key_id,
        source_id: Uuid::new_v4(),
        endpoint: Endpoint::Enhance,
        model: "Standard V2".into(),
        state: JobState::Pending,
        progress: 0,
        filename: "a.png".into(),
        input_format: "png".into(),
        input_width: 10,
        input_height: 10,
        output_format: OutputFormat::Jpeg,
        output_width: 20,
        output_height: 20,
        crop_to_fill: false,
        options_json: "{}".into(),
        credits,
        sync: false,
        work_secs: 1.0,
        eta: now / 1000 + 1,
        created_ms: now,
        modified_ms: now,
        attempts: 0,
        error: None,
        webhook_url: None,
    }
}

async fn submitted(store: &dyn JobStore, key_id: i64, credits: i64) -> Job {
    let j = job(key_id, credits);
    assert_eq!(
        store.submit(&j, None).await.unwrap(),
        SubmitOutcome::Accepted
    );
    j
}

const LEASE: Duration = Duration::from_secs(60);

pub async fn keys_authenticate_and_revoke(store: &dyn JobStore) {
    let plain = store.create_key(NewKey::all_scopes("k")).await.unwrap();
    assert!(store.authenticate(&plain).await.unwrap().is_some());
    assert!(store.authenticate("lucid_nope").await.unwrap().is_none());
    assert!(
        store.create_key(NewKey::all_scopes("k")).await.is_err(),
        "names are unique"
    );
    assert!(store.revoke_key("k").await.unwrap());
    assert!(store.authenticate(&plain).await.unwrap().is_none());
    assert!(!store.revoke_key("k").await.unwrap());
}

pub async fn credits_are_reserved_then_charged_once(store: &dyn JobStore) {
    let k = key(store, "credits", Some(5)).await;
    let j = submitted(store, k, 3).await;
    assert_eq!(
        store.submit(&job(k, 3), None).await.unwrap(),
        SubmitOutcome::InsufficientCredits
    );
    let b = store.balance(k).await.unwrap();
    assert_eq!((b.available, b.reserved, b.total), (2, 3, 5));
    let claimed = store.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.id, j.id);
    assert_eq!(
        store.finalize(j.id, "w", Outcome::Completed).await.unwrap(),
        Finalized::Done
    );
    assert_eq!(
        store.finalize(j.id, "w", Outcome::Completed).await.unwrap(),
        Finalized::LostRace
    );
    let b = store.balance(k).await.unwrap();
    assert_eq!((b.available, b.reserved, b.total), (2, 0, 2));
}

pub async fn cancel_pending_releases_credits(store: &dyn JobStore) {
    let k = key(store, "cancel", Some(5)).await;
    let j = submitted(store, k, 2).await;
    assert_eq!(
        store.cancel(k, j.id).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        store.cancel(k, j.id).await.unwrap(),
        CancelOutcome::NotCancellable
    );
    let b = store.balance(k).await.unwrap();
    assert_eq!((b.available, b.reserved), (5, 0));
    assert!(
        store.claim("w", LEASE).await.unwrap().is_none(),
        "a cancelled job is never claimed"
    );
}

pub async fn cancel_then_finalize_loses(store: &dyn JobStore) {
    let k = key(store, "cancel-first", Some(5)).await;
    let j = submitted(store, k, 1).await;
    store.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(
        store.cancel(k, j.id).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        store.finalize(j.id, "w", Outcome::Completed).await.unwrap(),
        Finalized::LostRace
    );
    assert_eq!(
        store.job(k, j.id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(store.balance(k).await.unwrap().total, 5, "never charged");
}

pub async fn other_key_sees_not_found(store: &dyn JobStore) {
    let a = key(store, "a", None).await;
    let b = key(store, "b", None).await;
    let j = submitted(store, a, 1).await;
    assert!(store.job(b, j.id).await.unwrap().is_none());
    assert_eq!(
        store.cancel(b, j.id).await.unwrap(),
        CancelOutcome::NotFound
    );
    assert_eq!(
        store.delete(b, j.id).await.unwrap(),
        DeleteOutcome::NotFound
    );
    assert!(
        store
            .list(b, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.job(a, j.id).await.unwrap().unwrap().state,
        JobState::Pending
    );
}

pub async fn expired_lease_returns_to_pending_then_fails(store: &dyn JobStore) {
    let k = key(store, "lease", Some(5)).await;
    let j = submitted(store, k, 1).await;
    for attempt in 1..=3 {
        let claimed = store.claim("w", Duration::ZERO).await.unwrap().unwrap();
        assert_eq!((claimed.id, claimed.attempts), (j.id, attempt));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!store.renew(j.id, "other", LEASE).await.unwrap());
        assert_eq!(store.expire_leases(3).await.unwrap(), 1);
        let state = store.job(k, j.id).await.unwrap().unwrap().state;
        assert_eq!(
            state,
            if attempt < 3 {
                JobState::Pending
            } else {
                JobState::Failed
            }
        );
    }
    assert_eq!(
        store.finalize(j.id, "w", Outcome::Completed).await.unwrap(),
        Finalized::LostRace
    );
    let b = store.balance(k).await.unwrap();
    assert_eq!((b.reserved, b.total), (0, 5), "a failed job is not charged");
}

pub async fn release_returns_a_job_to_pending_without_using_an_attempt(store: &dyn JobStore) {
    let k = key(store, "release", Some(5)).await;
    let j = submitted(store, k, 2).await;
    store.claim("w", LEASE).await.unwrap().unwrap();
    assert!(!store.release(j.id, "other").await.unwrap(), "not its job");
    assert!(store.release(j.id, "w").await.unwrap());
    let back = store.job(k, j.id).await.unwrap().unwrap();
    assert_eq!((back.state, back.attempts), (JobState::Pending, 0));
    assert!(!store.release(j.id, "w").await.unwrap(), "already released");
    let b = store.balance(k).await.unwrap();
    assert_eq!((b.reserved, b.total), (2, 5), "still reserved, not charged");
    // Claimed again, it runs normally; a cancelled job is not released.
    store.claim("w2", LEASE).await.unwrap().unwrap();
    store.cancel(k, j.id).await.unwrap();
    assert!(!store.release(j.id, "w2").await.unwrap());
    assert_eq!(
        store.job(k, j.id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
}

pub async fn list_is_newest_first_with_cursor(store: &dyn JobStore) {
    let k = key(store, "list", None).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(submitted(store, k, 1).await.id);
    }
    ids.reverse();
    let all: Vec<ProcessId> = store
        .list(k, &ListFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(all, ids);
    let page: Vec<ProcessId> = store
        .list(
            k,
            &ListFilter {
                before: Some(ids[1]),
                limit: Some(2),
                ..ListFilter::default()
            },
        )
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(page, ids[2..4]);
}

pub async fn delete_needs_a_finished_job(store: &dyn JobStore) {
    let k = key(store, "delete", None).await;
    let j = submitted(store, k, 1).await;
    assert_eq!(
        store.delete(k, j.id).await.unwrap(),
        DeleteOutcome::Unfinished
    );
    store.cancel(k, j.id).await.unwrap();
    assert!(matches!(
        store.delete(k, j.id).await.unwrap(),
        DeleteOutcome::Deleted(_)
    ));
    let pending = submitted(store, k, 1).await;
    assert!(store.delete_finished(k).await.unwrap().is_empty());
    assert!(store.job(k, pending.id).await.unwrap().is_some());
}

pub async fn list_filters_combine(store: &dyn JobStore) {
    let k = key(store, "filters", None).await;
    let a = submitted(store, k, 1).await;
    // Creation times a millisecond apart, so the time bounds can tell the jobs apart.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let mut other_model = job(k, 1);
    other_model.model = "CGI".into();
    store.submit(&other_model, None).await.unwrap();
    store.cancel(k, a.id).await.unwrap();
    let ids = |f: ListFilter| async move {
        store
            .list(k, &f)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(ListFilter {
            state: Some(JobState::Cancelled),
            ..Default::default()
        })
        .await,
        vec![a.id]
    );
    assert_eq!(
        ids(ListFilter {
            model: Some("CGI".into()),
            ..Default::default()
        })
        .await,
        vec![other_model.id]
    );
    let t = other_model.created_ms;
    assert_eq!(
        ids(ListFilter {
            created_before_ms: Some(t),
            ..Default::default()
        })
        .await,
        vec![a.id]
    );
    assert_eq!(
        ids(ListFilter {
            created_after_ms: Some(t + 1),
            ..Default::default()
        })
        .await,
        vec![]
    );
    assert_eq!(
        ids(ListFilter {
            state: Some(JobState::Pending),
            model: Some("Standard V2".into()),
            ..Default::default()
        })
        .await,
        vec![]
    );
}

pub async fn idempotent_submit_replays_or_conflicts(store: &dyn JobStore) {
    let k = key(store, "idem", Some(10)).await;
    let idem = Idempotency {
        key: "abc".into(),
        request_hash: "h1".into(),
    };
    let first = job(k, 2);
    assert_eq!(
        store.submit(&first, Some(&idem)).await.unwrap(),
        SubmitOutcome::Accepted
    );
    match store.submit(&job(k, 2), Some(&idem)).await.unwrap() {
        SubmitOutcome::Replay(j) => assert_eq!(j.id, first.id),
        other => panic!("{other:?}"),
    }
    let other = Idempotency {
        key: "abc".into(),
        request_hash: "h2".into(),
    };
    assert_eq!(
        store.submit(&job(k, 2), Some(&other)).await.unwrap(),
        SubmitOutcome::IdempotencyConflict
    );
    assert_eq!(
        store.balance(k).await.unwrap().reserved,
        2,
        "one job, one reservation"
    );
    assert_eq!(
        store.list(k, &ListFilter::default()).await.unwrap().len(),
        1
    );
}

pub async fn outbox_delivers_a_jobs_notifications_in_order(store: &dyn JobStore) {
    let k = key(store, "hooks", None).await;
    let mut j = job(k, 1);
    j.webhook_url = Some("http://example.com/hook".into());
    store.submit(&j, None).await.unwrap();
    store.claim("w", LEASE).await.unwrap().unwrap();
    store.finalize(j.id, "w", Outcome::Completed).await.unwrap();
    let silent = job(k, 1);
    store.submit(&silent, None).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let due = store.claim_notifications(10, LEASE).await.unwrap();
        assert!(
            due.len() <= 1,
            "one job's notifications are due one at a time"
        );
        let Some(n) = due.into_iter().next() else {
            break;
        };
        assert_eq!(n.process_id, j.id);
        assert!(
            store
                .claim_notifications(10, LEASE)
                .await
                .unwrap()
                .is_empty(),
            "claimed ones are leased"
        );
        seen.push((n.id.clone(), n.status));
        store
            .record_delivery(&n.id, Delivery::Delivered)
            .await
            .unwrap();
    }
    let states: Vec<JobState> = seen.iter().map(|s| s.1).collect();
    assert_eq!(
        states,
        vec![JobState::Pending, JobState::Processing, JobState::Completed]
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "ULIDs sort by creation"
    );
}

pub async fn failed_deliveries_are_retried_with_the_same_id(store: &dyn JobStore) {
    let k = key(store, "retry", None).await;
    let mut j = job(k, 1);
    j.webhook_url = Some("http://example.com/hook".into());
    store.submit(&j, None).await.unwrap();
    let first = store
        .claim_notifications(10, LEASE)
        .await
        .unwrap()
        .remove(0);
    store
        .record_delivery(
            &first.id,
            Delivery::Retry {
                at_ms: now_ms() - 1,
                error: "503".into(),
            },
        )
        .await
        .unwrap();
    let again = store
        .claim_notifications(10, LEASE)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((again.id.as_str(), again.attempts), (first.id.as_str(), 1));
    store
        .record_delivery(&again.id, Delivery::Dropped("404".into()))
        .await
        .unwrap();
    assert!(
        store
            .claim_notifications(10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let secret = store.webhook_secret(k, false).await.unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(store.webhook_secret(k, false).await.unwrap(), secret);
    assert_ne!(store.webhook_secret(k, true).await.unwrap(), secret);
}

/// Cancel and finalize issued together, many times: exactly one wins each time, and the
/// credits match the winners.
pub async fn cancel_races_finalize(store: Arc<dyn JobStore>) {
    let k = key(&*store, "race", Some(1_000)).await;
    let (mut cancelled, mut completed) = (0, 0);
    for _ in 0..300 {
        let j = submitted(&*store, k, 1).await;
        store.claim("w", LEASE).await.unwrap().unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let (s1, s2, b1, b2) = (
            store.clone(),
            store.clone(),
            barrier.clone(),
            barrier.clone(),
        );
        let cancel = tokio::spawn(async move {
            b1.wait().await;
            s1.cancel(k, j.id).await.unwrap()
        });
        let finalize = tokio::spawn(async move {
            b2.wait().await;
            s2.finalize(j.id, "w", Outcome::Completed).await.unwrap()
        });
        let (c, f) = (cancel.await.unwrap(), finalize.await.unwrap());
        let state = store.job(k, j.id).await.unwrap().unwrap().state;
        match (c, f) {
            (CancelOutcome::Cancelled, Finalized::LostRace) => {
                assert_eq!(state, JobState::Cancelled);
                cancelled += 1;
            }
            (CancelOutcome::NotCancellable, Finalized::Done) => {
                assert_eq!(state, JobState::Completed);
                completed += 1;
            }
            other => panic!("inconsistent race outcome {other:?}"),
        }
    }
    let b = store.balance(k).await.unwrap();
    assert_eq!(
        (b.reserved, b.total),
        (0, 1_000 - completed),
        "charged exactly the completed jobs"
    );
    assert_eq!(cancelled + completed, 300);
}

/// Runs `n` copies of `op` at once (started together by a barrier) and answers their results.
async fn all_at_once<T, F, Fut>(n: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (b, fut) = (barrier.clone(), op(i));
            tokio::spawn(async move {
                b.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Thousands of submits on one key, all at once, with credits for a fraction of them; then
/// cancels, completions and more submits racing each other. The key never spends or reserves
/// more than it has, and its balance always equals what its jobs hold.
pub async fn submits_near_the_credit_limit_never_overdraw(store: Arc<dyn JobStore>) {
    const CREDITS: i64 = 500;
    let k = key(&*store, "limit", Some(CREDITS)).await;
    let submit = |store: Arc<dyn JobStore>| {
        move |_| {
            let store = store.clone();
            async move {
                let j = job(k, 1);
                (j.id, store.submit(&j, None).await.unwrap())
            }
        }
    };
    let first = all_at_once(2_000, submit(store.clone())).await;
    let accepted: Vec<ProcessId> = first
        .iter()
        .filter(|(_, o)| *o == SubmitOutcome::Accepted)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(accepted.len() as i64, CREDITS, "exactly the credits' worth");
    assert!(first.iter().all(|(_, o)| matches!(
        o,
        SubmitOutcome::Accepted | SubmitOutcome::InsufficientCredits
    )));
    let b = store.balance(k).await.unwrap();
    assert_eq!((b.available, b.reserved, b.total), (0, CREDITS, CREDITS));

    // Half cancelled, half claimed and completed, while 1000 more submits compete for the
    // credits the cancels release.
    for _ in 0..CREDITS / 2 {
        store.claim("w", LEASE).await.unwrap().unwrap();
    }
    let claimed: Vec<ProcessId> = {
        let mut all = Vec::new();
        for id in &accepted {
            if store.job(k, *id).await.unwrap().unwrap().state == JobState::Processing {
                all.push(*id);
            }
        }
        all
    };
    let pending: Vec<ProcessId> = accepted
        .iter()
        .filter(|id| !claimed.contains(id))
        .copied()
        .collect();
    let (s1, s2) = (store.clone(), store.clone());
    let (cancels, finals, second) = tokio::join!(
        all_at_once(pending.len(), move |i| {
            let (s, id) = (s1.clone(), pending[i]);
            async move { s.cancel(k, id).await.unwrap() }
        }),
        all_at_once(claimed.len(), move |i| {
            let (s, id) = (s2.clone(), claimed[i]);
            async move { s.finalize(id, "w", Outcome::Completed).await.unwrap() }
        }),
        all_at_once(1_000, submit(store.clone())),
    );
    assert!(cancels.iter().all(|c| *c == CancelOutcome::Cancelled));
    assert!(finals.iter().all(|f| *f == Finalized::Done));
    let resubmitted = second
        .iter()
        .filter(|(_, o)| *o == SubmitOutcome::Accepted)
        .count() as i64;
    assert!(
        resubmitted <= CREDITS / 2,
        "{resubmitted} accepted with {} credits released",
        CREDITS / 2
    );
    let b = store.balance(k).await.unwrap();
    let completed = CREDITS / 2;
    assert_eq!(
        (b.reserved, b.total, b.available),
        (
            resubmitted,
            CREDITS - completed,
            CREDITS - completed - resubmitted
        ),
        "reserved = jobs still waiting, total = credits less completed jobs"
    );
    assert!(b.available >= 0);
    eprintln!("credit limit: {resubmitted} of 1000 resubmits took released credits");
}

/// Two cancels of the same job at once, over and over: one cancels, the other finds it
/// already cancelled, and the credits come back exactly once.
pub async fn cancel_races_cancel(store: Arc<dyn JobStore>) {
    let k = key(&*store, "cancel-cancel", Some(10)).await;
    for round in 0..1_000 {
        let j = submitted(&*store, k, 3).await;
        if round % 2 == 1 {
            store.claim("w", LEASE).await.unwrap().unwrap();
        }
        let s = store.clone();
        let outcomes = all_at_once(2, move |_| {
            let s = s.clone();
            async move { s.cancel(k, j.id).await.unwrap() }
        })
        .await;
        let won = outcomes
            .iter()
            .filter(|o| **o == CancelOutcome::Cancelled)
            .count();
        assert_eq!(won, 1, "round {round}: {outcomes:?}");
        assert!(outcomes.contains(&CancelOutcome::NotCancellable));
        let b = store.balance(k).await.unwrap();
        assert_eq!(
            (b.available, b.reserved, b.total),
            (10, 0, 10),
            "round {round}"
        );
    }
}

/// Delete and finalize of a running job at once, over and over: a job is deleted only once it
/// is finished, a deleted job never comes back, and credits are charged once per completion.
pub async fn delete_races_finalize(store: Arc<dyn JobStore>) {
    let k = key(&*store, "delete-finalize", Some(100_000)).await;
    let (mut deleted, mut kept) = (0, 0);
    for round in 0..1_000 {
        let j = submitted(&*store, k, 1).await;
        store.claim("w", LEASE).await.unwrap().unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (d, f) = tokio::join!(
            tokio::spawn(async move { s1.delete(k, j.id).await.unwrap() }),
            tokio::spawn(async move { s2.finalize(j.id, "w", Outcome::Completed).await.unwrap() }),
        );
        let (d, f) = (d.unwrap(), f.unwrap());
        assert_eq!(
            f,
            Finalized::Done,
            "round {round}: nothing else ends the job"
        );
        let now = store.job(k, j.id).await.unwrap();
        match d {
            DeleteOutcome::Deleted(job) => {
                assert_eq!(job.state, JobState::Completed, "round {round}");
                assert!(now.is_none(), "round {round}: deleted job came back");
                deleted += 1;
            }
            DeleteOutcome::Unfinished => {
                assert_eq!(now.unwrap().state, JobState::Completed, "round {round}");
                kept += 1;
            }
            DeleteOutcome::NotFound => panic!("round {round}: the job vanished"),
        }
    }
    let b = store.balance(k).await.unwrap();
    assert_eq!((b.reserved, b.total), (0, 100_000 - 1_000));
    eprintln!("delete vs finalize: {deleted} deleted, {kept} kept");
    assert_eq!(deleted + kept, 1_000);
}

/// A store that announces changes ([`JobStore::events`]) announces each state a job enters,
/// submit, claim, cancel, in order. Stores that cannot announce pass trivially.
pub async fn events_announce_each_state_change(store: &dyn JobStore) {
    let Some(mut events) = store.events() else {
        return;
    };
    let k = key(store, "k", None).await;
    let j = submitted(store, k, 1).await;
    assert_eq!(store.claim("w", LEASE).await.unwrap().unwrap().id, j.id);
    assert_eq!(
        store.cancel(k, j.id).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an announcement within 10 s")
            .unwrap();
        if event.id == j.id {
            seen.push(event.state);
        }
    }
    assert_eq!(
        seen,
        [JobState::Pending, JobState::Processing, JobState::Cancelled]
    );
}

/// A store that keeps shared rate limits lets a key's burst through, refuses the next request
/// with a wait of about one interval, and counts each key on its own. Others pass trivially.
pub async fn shared_rate_limits_refuse_past_the_burst(store: &dyn JobStore) {
    let (a, b) = (key(store, "a", None).await, key(store, "b", None).await);
    let Some(first) = store.shared_rate_limit(a, 1, 3).await.unwrap() else {
        return;
    };
    assert_eq!(first, Ok(()));
    for _ in 0..2 {
        assert_eq!(
            store.shared_rate_limit(a, 1, 3).await.unwrap(),
            Some(Ok(()))
        );
    }
    match store.shared_rate_limit(a, 1, 3).await.unwrap() {
        Some(Err(wait)) => assert!(
            wait > Duration::from_millis(500) && wait <= Duration::from_secs(1),
            "{wait:?}"
        ),
        other => panic!("the fourth request in a burst of 3 went through: {other:?}"),
    }
    assert_eq!(
        store.shared_rate_limit(b, 1, 3).await.unwrap(),
        Some(Ok(()))
    );
}

/// Put, get, size and delete; deleting twice is fine.
pub async fn blobs_put_get_size_delete(store: &dyn BlobStore) {
    store
        .put("outputs/a.png", Bytes::from_static(b"abc"))
        .await
        .unwrap();
    assert_eq!(
        store.get("outputs/a.png").await.unwrap().unwrap(),
        Bytes::from_static(b"abc")
    );
    assert_eq!(store.size("outputs/a.png").await.unwrap(), Some(3));
    assert_eq!(store.size("outputs/none.png").await.unwrap(), None);
    store.delete("outputs/a.png").await.unwrap();
    assert_eq!(store.get("outputs/a.png").await.unwrap(), None);
    store.delete("outputs/a.png").await.unwrap();
}

/// A file is stored and consumed, small or large (larger than an S3 upload part), and read
/// back as a stream with the right size and bytes.
pub async fn blobs_put_file_and_stream_back(store: &dyn BlobStore) {
    use futures::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    for (key, len) in [
        ("outputs/small.jpg", 14usize),
        ("outputs/large.tiff", 40 << 20),
    ] {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let file = dir.path().join("scratch");
        std::fs::write(&file, &bytes).unwrap();
        store.put_file(key, &file).await.unwrap();
        assert!(!file.exists(), "the file was consumed");
        let stream = store.get_stream(key).await.unwrap().unwrap();
        assert_eq!(stream.size, len as u64);
        let chunks: Vec<Bytes> = stream.body.try_collect().await.unwrap();
        assert!(chunks.concat() == bytes, "{key} came back changed");
    }
    assert!(store.get_stream("outputs/none").await.unwrap().is_none());
}

/// Keys that would leave the store's root are refused, whatever the operation.
pub async fn blobs_refuse_path_escapes(store: &dyn BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scratch");
    std::fs::write(&file, b"x").unwrap();
    for key in ["../x", "/etc/passwd", "a/../../b", ""] {
        assert!(store.get(key).await.is_err(), "get {key}");
        assert!(store.put(key, Bytes::new()).await.is_err(), "put {key}");
        assert!(store.put_file(key, &file).await.is_err(), "put_file {key}");
    }
}

pub async fn census_counts_every_keys_jobs_by_state(store: &dyn JobStore) {
    assert_eq!(store.census().await.unwrap(), crate::Census::default());
    let (a, b) = (key(store, "a", None).await, key(store, "b", None).await);
    let first = submitted(store, a, 1).await;
    let second = submitted(store, b, 1).await;
    let third = submitted(store, a, 1).await;
    let census = store.census().await.unwrap();
    assert_eq!(census.count(JobState::Pending), 3);
    assert_eq!(census.oldest_pending_ms, Some(first.created_ms));
    assert_eq!(
        store.cancel(b, second.id).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let claimed = store.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.id, first.id);
    let census = store.census().await.unwrap();
    assert_eq!(
        (
            census.count(JobState::Pending),
            census.count(JobState::Processing),
            census.count(JobState::Cancelled),
            census.count(JobState::Completed),
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(census.oldest_pending_ms, Some(third.created_ms));
}

/// Emits one `#[tokio::test]` per blob store conformance function for a store built by
/// `$make` (an async expression answering `Option<(Arc<dyn BlobStore>, guard)>`; `None` skips).
#[macro_export]
macro_rules! blob_conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            blobs_put_get_size_delete, blobs_put_file_and_stream_back, blobs_refuse_path_escapes);
    };
}

/// Emits one `#[tokio::test]` per conformance function for a backend built by `$make` (an
/// async expression answering `Option<(Arc<dyn JobStore>, guard)>`; `None` skips).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            keys_authenticate_and_revoke, credits_are_reserved_then_charged_once,
            cancel_pending_releases_credits, cancel_then_finalize_loses, other_key_sees_not_found,
            expired_lease_returns_to_pending_then_fails,
            release_returns_a_job_to_pending_without_using_an_attempt,
            list_is_newest_first_with_cursor,
            delete_needs_a_finished_job, list_filters_combine, idempotent_submit_replays_or_conflicts,
            outbox_delivers_a_jobs_notifications_in_order, failed_deliveries_are_retried_with_the_same_id,
            events_announce_each_state_change, shared_rate_limits_refuse_past_the_burst,
            census_counts_every_keys_jobs_by_state);
        $crate::conformance_tests!(@racing $make;
            cancel_races_finalize, cancel_races_cancel, delete_races_finalize,
            submits_near_the_credit_limit_never_overdraw);
    };
    (@racing $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = $make.await else { return };
                $crate::conformance::$name(store).await;
            }
        )*
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((store, _guard)) = $make.await else { return };
                $crate::conformance::$name(&*store).await;
            }
        )*
    };
}
