//! Scale-out, end to end on loopback: API nodes (`serve --workers 0`) and worker nodes
//! (`worker`) of the real binary sharing one PostgreSQL database and one S3 bucket (the
//! throwaway servers of `lucid_store::services`; skipped where they are not installed, never
//! in CI).

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::Value;

mod common;
use common::cluster::Cluster;
use common::{balance, get_json, status, submit_form};

/// A cluster of this build's binary with a key of a million credits and `api_nodes` API
/// nodes; `None` where PostgreSQL or SeaweedFS is missing (outside CI).
async fn cluster(api_nodes: usize) -> Option<Cluster> {
    let mut cluster = Cluster::start(env!("CARGO_BIN_EXE_lucid").as_ref(), "1000000").await?;
    for _ in 0..api_nodes {
        cluster.start_api().await;
    }
    Some(cluster)
}

/// Worker nodes lease for 2 s, so a killed one's job comes back quickly.
const WORKER: &[&str] = &["--lease-seconds", "2"];

/// What the tests ask of the API nodes.
impl Cluster {
    async fn submit(&self, node: usize, fields: &[(&str, &str)]) -> String {
        let image = std::fs::read(common::shared_png()).unwrap();
        let mut form = Form::new().part("image", Part::bytes(image).file_name("camera.png"));
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        submit_form(&self.client, &self.api[node], &self.key, "enhance", form).await
    }

    async fn status(&self, node: usize, id: &str) -> Value {
        status(&self.client, &self.api[node], &self.key, id).await
    }

    /// Polls through `node` until the job is in `state`.
    async fn wait_for(&self, node: usize, id: &str, state: &str) -> Value {
        let started = Instant::now();
        loop {
            let s = self.status(node, id).await;
            if s["status"] == state {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "job {id} never reached {state}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn cancel(&self, node: usize, id: &str) -> u16 {
        self.client
            .delete(format!("{}/image/v1/cancel/{id}", self.api[node]))
            .header("X-API-Key", &self.key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// A job long enough to be caught running: a ×40 upscale of the 512 px test image.
const SLOW: &[(&str, &str)] = &[("output_width", "20480"), ("output_format", "png")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_submitted_anywhere_are_worked_by_any_worker_and_downloaded_from_s3() {
    let Some(mut cluster) = cluster(2).await else {
        return;
    };
    cluster.start_worker(WORKER);
    cluster.start_worker(WORKER);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(cluster.submit(i % 2, &[("output_width", "640")]).await);
    }
    for (i, id) in ids.iter().enumerate() {
        // Read through the node that did not take the submit.
        let done = cluster.wait_for((i + 1) % 2, id, "Completed").await;
        assert_eq!(done["progress"], 100);
    }
    let listed = get_json(
        &cluster.client,
        &cluster.api[1],
        &cluster.key,
        "/image/v1/status",
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 6);

    // Download links are presigned S3 URLs: the bytes come from the bucket, not an API node.
    let links = get_json(
        &cluster.client,
        &cluster.api[0],
        &cluster.key,
        &format!("/image/v1/download/{}", ids[0]),
    )
    .await;
    let url = links["download_url"].as_str().unwrap();
    let endpoint = &cluster.s3_env[0].1;
    assert!(url.starts_with(endpoint.as_str()), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let bytes = resp.bytes().await.unwrap();
    let info = lucid_imaging::codec::probe(&bytes).unwrap();
    assert_eq!((info.format, info.width, info.height), ("jpeg", 640, 640));
    let head = cluster
        .client
        .head(links["head_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    // Tampering with the signature is refused by the store.
    let forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert_eq!(reqwest::get(forged).await.unwrap().status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_one_api_node_stops_the_job_on_a_worker_node() {
    let Some(mut cluster) = cluster(2).await else {
        return;
    };
    // One worker: the next job can only run once the cancelled one has let go of it.
    cluster.start_worker(WORKER);
    let before = balance(&cluster.client, &cluster.api[0], &cluster.key)
        .await
        .unwrap();
    let slow = cluster.submit(0, SLOW).await;
    cluster.wait_for(1, &slow, "Processing").await;
    assert_eq!(cluster.cancel(1, &slow).await, 204);
    assert_eq!(cluster.cancel(0, &slow).await, 409, "one cancel wins");
    let quick = cluster.submit(0, &[("output_width", "256")]).await;
    cluster.wait_for(1, &quick, "Completed").await;
    // The slow job stayed cancelled (no output, no charge) and the worker moved on.
    let cancelled = cluster.status(0, &slow).await;
    assert_eq!(cancelled["status"], "Cancelled");
    let links = cluster
        .client
        .get(format!("{}/image/v1/download/{slow}", cluster.api[0]))
        .header("X-API-Key", &cluster.key)
        .send()
        .await
        .unwrap();
    assert_eq!(links.status(), 409);
    let after = balance(&cluster.client, &cluster.api[1], &cluster.key)
        .await
        .unwrap();
    let quick_credits = cluster.status(0, &quick).await["credits"].as_i64().unwrap();
    assert_eq!(
        before["available_credits"].as_i64().unwrap()
            - after["available_credits"].as_i64().unwrap(),
        quick_credits,
        "only the completed job was charged: {before} → {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_node_s_job_finishes_on_another_and_is_charged_once() {
    let Some(mut cluster) = cluster(1).await else {
        return;
    };
    let first = cluster.start_worker(WORKER);
    let before = balance(&cluster.client, &cluster.api[0], &cluster.key)
        .await
        .unwrap();
    let interrupted = cluster.submit(0, SLOW).await;
    cluster.wait_for(0, &interrupted, "Processing").await;
    let mut others = Vec::new();
    for _ in 0..5 {
        others.push(cluster.submit(0, &[("output_width", "512")]).await);
    }
    cluster.start_worker(WORKER);
    let killed = &mut cluster.children[first];
    killed.kill().unwrap();
    killed.wait().unwrap();
    let cut_short = cluster.status(0, &interrupted).await;
    assert_eq!(
        cut_short["status"], "Processing",
        "killed mid-job: {cut_short}"
    );
    let mut spent = 0;
    for id in others.iter().chain([&interrupted]) {
        let done = cluster.wait_for(0, id, "Completed").await;
        spent += done["credits"].as_i64().unwrap();
    }
    let after = balance(&cluster.client, &cluster.api[0], &cluster.key)
        .await
        .unwrap();
    assert_eq!(after["reserved_credits"], 0, "{after}");
    assert_eq!(
        before["available_credits"].as_i64().unwrap()
            - after["available_credits"].as_i64().unwrap(),
        spent,
        "each job charged exactly once: {before} → {after}"
    );
}
