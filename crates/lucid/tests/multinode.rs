//! Scale-out, end to end on loopback: API nodes (`serve --workers 0`) and worker nodes
//! (`worker`) of the real binary sharing one PostgreSQL database and one S3 bucket (the
//! throwaway servers of `lucid_store::services`; skipped where they are not installed, never
//! in CI).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::Value;

mod common;
use common::{balance, get_json, lucid, start_with, status, submit_form};

/// Nodes sharing one database and one bucket prefix; every process is killed on drop.
struct Cluster {
    dir: tempfile::TempDir,
    database_url: String,
    blob_url: String,
    s3_env: Vec<(&'static str, String)>,
    key: String,
    api: Vec<String>,
    children: Vec<Child>,
    client: reqwest::Client,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    /// A database, a bucket prefix, a key with `credits`, and `api_nodes` API nodes.
    async fn start(api_nodes: usize, credits: u64) -> Option<Cluster> {
        let database_url = lucid_store::services::postgres_database().await?;
        let s3 = lucid_store::services::s3_server().await?;
        let (_, blob_url) = s3.fresh_store();
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            database_url,
            blob_url,
            s3_env: s3.env(),
            key: String::new(),
            api: Vec::new(),
            children: Vec::new(),
            client: reqwest::Client::new(),
        };
        let out = cluster
            .command()
            .args(["keys", "create", "--name", "multi", "--credits"])
            .arg(credits.to_string())
            .args(["--database-url", &cluster.database_url])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        cluster.key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        for _ in 0..api_nodes {
            let flags = [
                "--workers",
                "0",
                "--database-url",
                &cluster.database_url,
                "--blob-url",
                &cluster.blob_url,
            ];
            let (child, base) = start_with(
                cluster.command(),
                &flags,
                cluster.dir.path(),
                &cluster.key,
                &cluster.client,
            )
            .await;
            cluster.children.push(child);
            cluster.api.push(base);
        }
        Some(cluster)
    }

    /// The binary with the S3 settings in its environment.
    fn command(&self) -> std::process::Command {
        let mut cmd = lucid();
        cmd.envs(self.s3_env.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    /// Starts a worker node (one worker thread, 2 s leases, its own scratch folder); answers
    /// its index in `children`.
    fn start_worker(&mut self) -> usize {
        let scratch = self
            .dir
            .path()
            .join(format!("worker{}", self.children.len()));
        let child = self
            .command()
            .args(["worker", "--workers", "1", "--lease-seconds", "2"])
            .args(["--database-url", &self.database_url])
            .args(["--blob-url", &self.blob_url])
            .arg("--data-dir")
            .arg(scratch)
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

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
    let Some(mut cluster) = Cluster::start(2, 1_000_000).await else {
        return;
    };
    cluster.start_worker();
    cluster.start_worker();
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
    let Some(mut cluster) = Cluster::start(2, 1_000_000).await else {
        return;
    };
    // One worker: the next job can only run once the cancelled one has let go of it.
    cluster.start_worker();
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
    let Some(mut cluster) = Cluster::start(1, 1_000_000).await else {
        return;
    };
    let first = cluster.start_worker();
    let before = balance(&cluster.client, &cluster.api[0], &cluster.key)
        .await
        .unwrap();
    let interrupted = cluster.submit(0, SLOW).await;
    cluster.wait_for(0, &interrupted, "Processing").await;
    let mut others = Vec::new();
    for _ in 0..5 {
        others.push(cluster.submit(0, &[("output_width", "512")]).await);
    }
    cluster.start_worker();
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
