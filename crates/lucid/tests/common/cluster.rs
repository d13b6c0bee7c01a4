//! Nodes of the real binary sharing one PostgreSQL database and one S3 bucket prefix (the
//! throwaway servers of `lucid_store::services`), every process killed on drop. The
//! multi-node tests use it, and the `scaleout` benchmark includes this file by path (an
//! example cannot reach the tests' other helpers, so this file needs none of them).
// Each user takes its own subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    lucid: PathBuf,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub blob_url: String,
    /// The `AWS_*` variables every node gets.
    pub s3_env: Vec<(&'static str, String)>,
    pub key: String,
    /// Base URLs of the API nodes.
    pub api: Vec<String>,
    /// Every node process, API and worker, in start order.
    pub children: Vec<Child>,
    pub client: reqwest::Client,
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
    /// A fresh database and bucket prefix, and a key with `credits` (a number or
    /// "unlimited"), for the binary `lucid`; `None` where the services are not installed
    /// (outside CI).
    pub async fn start(lucid: &Path, credits: &str) -> Option<Cluster> {
        let database_url = lucid_store::services::postgres_database().await?;
        let s3 = lucid_store::services::s3_server().await?;
        let (_, blob_url) = s3.fresh_store();
        let mut cluster = Cluster {
            lucid: lucid.to_path_buf(),
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
            .args(["keys", "create", "--name", "cluster", "--credits", credits])
            .args(["--database-url", &cluster.database_url])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        cluster.key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Some(cluster)
    }

    /// The binary, logging warnings only, with the S3 settings in its environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.lucid);
        cmd.env("LUCID_LOG", "warn")
            .envs(self.s3_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Starts a node: `args` (its role and flags) on the shared stores, with a scratch folder
    /// of its own; answers its index in `children`.
    fn spawn_node(&mut self, args: &[&str]) -> usize {
        let scratch = self.dir.path().join(format!("node{}", self.children.len()));
        let child = self
            .command()
            .args(args)
            .args(["--database-url", &self.database_url])
            .args(["--blob-url", &self.blob_url])
            .arg("--data-dir")
            .arg(scratch)
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    /// Starts an API node (`serve --workers 0`, no rate limit to speak of) on a free port and
    /// waits until it answers; its base URL is pushed to `api`.
    pub async fn start_api(&mut self) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        self.spawn_node(&[
            "serve",
            "--workers",
            "0",
            "--addr",
            &addr,
            "--rate-limit",
            "1000000/s,burst=1000000",
        ]);
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while self
            .client
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "API node did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.api.push(base);
    }

    /// Starts a worker node (`worker --workers 1` and `flags`) with its own scratch folder;
    /// answers its index in `children`.
    pub fn start_worker(&mut self, flags: &[&str]) -> usize {
        let args: Vec<&str> = ["worker", "--workers", "1"]
            .into_iter()
            .chain(flags.iter().copied())
            .collect();
        self.spawn_node(&args)
    }
}
