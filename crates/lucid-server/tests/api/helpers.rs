//! `spawn_app()` starts lucid on port 0 with a fresh data folder and no background workers;
//! tests step the worker with `run_worker()`, so nothing depends on timing.

use std::time::Duration;

use lucid_core::key::Scopes;
use lucid_server::config::RateLimit;
use lucid_server::worker::Worker;
use lucid_server::{App, AppState, Config};
use lucid_store::NewKey;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub key: String,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    pub options: Options,
    shutdown: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

#[derive(Clone)]
pub struct Options {
    pub workers: usize,
    pub rate_limit: RateLimit,
    pub max_upload_mb: u64,
    pub webhook_base_delay: Duration,
    pub lease: Duration,
    /// `--allow-private-urls`; on by default here, since every test server is on loopback.
    pub allow_private_urls: bool,
    pub shutdown_grace: Duration,
    /// `--memory-budget-mb`; the machine's default when `None`.
    pub memory_budget_mb: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 0,
            rate_limit: RateLimit {
                per_second: 10_000,
                burst: 10_000,
            },
            max_upload_mb: 50,
            webhook_base_delay: Duration::from_millis(100),
            lease: Duration::from_secs(5),
            allow_private_urls: true,
            shutdown_grace: Duration::from_secs(30),
            memory_budget_mb: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    start(tempfile::tempdir().unwrap(), options, None).await
}

async fn start(dir: tempfile::TempDir, options: Options, key: Option<String>) -> TestApp {
    let mut config = Config::embedded(dir.path().to_path_buf());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.workers = options.workers;
    config.rate_limit = options.rate_limit;
    config.max_upload_mb = options.max_upload_mb;
    config.allow_private_urls = options.allow_private_urls;
    config.lease = options.lease;
    config.shutdown_grace = options.shutdown_grace;
    config.webhook_base_delay = options.webhook_base_delay;
    if let Some(mb) = options.memory_budget_mb {
        config.memory_budget = mb << 20;
    }
    let app = App::build(config).await.unwrap();
    let key = key.unwrap_or_else(|| {
        app.first_key()
            .expect("a fresh data folder creates a key")
            .to_string()
    });
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        key,
        state,
        dir,
        options,
        shutdown,
        running,
    }
}

impl TestApp {
    /// Stops the server (as SIGTERM would) and starts a new one on the same data folder.
    pub async fn restart(self) -> TestApp {
        let options = self.options.clone();
        self.restart_with(options).await
    }

    /// [`TestApp::restart`] with other options.
    pub async fn restart_with(self, options: Options) -> TestApp {
        let TestApp {
            dir,
            key,
            shutdown,
            running,
            ..
        } = self;
        let _ = shutdown.send(());
        running.await.unwrap().unwrap();
        start(dir, options, Some(key)).await
    }
}

/// A textured RGB PNG of the given size.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    lucid_imaging::codec::encode_test_png(width, height)
}

pub fn shared_image(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../../shared/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new key with the given scopes and credits (`None` = unlimited).
    pub async fn key_with(&self, name: &str, scopes: &str, credits: Option<i64>) -> String {
        self.state
            .jobs
            .create_key(NewKey {
                name: name.into(),
                scopes: Scopes::parse(scopes).unwrap(),
                credits,
            })
            .await
            .unwrap()
    }

    /// Runs every Pending job to its end.
    pub async fn run_worker(&self) -> usize {
        Worker::new(self.state.clone(), "test")
            .run_until_idle()
            .await
            .unwrap()
    }

    pub async fn submit_as(
        &self,
        key: &str,
        path: &str,
        image: Option<Vec<u8>>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = Form::new();
        if let Some(bytes) = image {
            form = form.part("image", Part::bytes(bytes).file_name("input.png"));
        }
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        self.client
            .post(self.url(path))
            .header("X-API-Key", key)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn submit(
        &self,
        endpoint: &str,
        image: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        self.submit_as(
            &self.key,
            &format!("/image/v1/{endpoint}/async"),
            Some(image),
            fields,
        )
        .await
    }

    /// Submits and answers the new process id, asserting success.
    pub async fn submit_ok(
        &self,
        endpoint: &str,
        image: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> String {
        let resp = self.submit(endpoint, image, fields).await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        let body: Value = resp.json().await.unwrap();
        body["process_id"].as_str().unwrap().to_string()
    }

    pub async fn get_as(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_as(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap()
    }

    /// The key's jobs, as `GET /image/v1/status` lists them.
    pub async fn jobs(&self) -> Value {
        let resp = self.get_as(&self.key, "/image/v1/status").await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    pub async fn status(&self, id: &str) -> Value {
        self.status_as(&self.key, id).await
    }

    pub async fn status_as(&self, key: &str, id: &str) -> Value {
        let resp = self.get_as(key, &format!("/image/v1/status/{id}")).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    pub async fn cancel_as(&self, key: &str, id: &str) -> reqwest::Response {
        self.delete_as(key, &format!("/image/v1/cancel/{id}")).await
    }

    pub async fn balance_as(&self, key: &str) -> Value {
        self.get_as(key, "/account/v1/credits/balance")
            .await
            .json()
            .await
            .unwrap()
    }

    /// Downloads the output through its signed link; answers (content type, bytes).
    pub async fn download(&self, id: &str) -> (String, Vec<u8>) {
        let links: Value = self
            .get_as(&self.key, &format!("/image/v1/download/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let resp = self
            .client
            .get(links["download_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        (ct, resp.bytes().await.unwrap().to_vec())
    }
}

/// Asserts the `{code, message}` error body.
pub async fn assert_error(resp: reqwest::Response, status: u16, message: &str) {
    assert_eq!(resp.status().as_u16(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], status);
    assert_eq!(body["message"], message, "{body}");
}

/// Width and height of an encoded image.
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let info = lucid_imaging::codec::probe(bytes).unwrap();
    (info.width, info.height)
}
