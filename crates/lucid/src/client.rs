//! `lucid submit | status | cancel | download`: a client for any server that speaks the Image
//! API — a lucid server or the vendor's (`--server https://api.topazlabs.com`). It uses only the
//! documented API (multipart submit, status polling, download links), never lucid's extensions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

/// How often a job's status is read while waiting (the vendor's quickstart polls every 2 s).
const POLL: Duration = Duration::from_secs(1);
/// File names a folder contributes: the formats the API accepts.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "tif", "tiff"];

#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The server: a lucid server, or the vendor's https://api.topazlabs.com
    /// (a trailing /image/v1 is accepted).
    #[arg(long, env = "LUCID_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The API key, sent as X-API-Key.
    #[arg(long, env = "LUCID_API_KEY", hide_env_values = true)]
    api_key: String,
}

#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The endpoint: enhance, enhance-gen, sharpen, sharpen-gen, denoise, denoise-gen,
    /// restore-gen, lighting, matting or tool.
    endpoint: String,
    /// Images, or folders whose images (jpg, jpeg, png, tif, tiff) are all submitted.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The model (default: the endpoint's default model).
    #[arg(long)]
    model: Option<String>,
    /// A request field, e.g. --set output_width=2048 --set output_format=png (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Where outputs go (default: next to each input), named <name>-<endpoint>.<format>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Jobs in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// A job's process id: its whole status as JSON. Without it, the key's jobs as a table.
    id: Option<String>,
}

#[derive(Args)]
pub struct IdArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The job's process id.
    id: String,
}

#[derive(Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The job's process id.
    id: String,
    /// The file to write (default: <name>-<category>.<format> in the current folder).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The API at one server with one key.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(args: &ServerArgs) -> anyhow::Result<Api> {
        let base = args.server.trim_end_matches('/');
        let base = base.strip_suffix("/image/v1").unwrap_or(base).to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server must be an http:// or https:// URL, not {base:?}");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Api {
            http,
            base,
            key: args.api_key.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/image/v1{path}", self.base)
    }

    /// Sends a request with the key; answers the response when it succeeded, else the API's
    /// `{code, message}` as the error.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let resp = request
            .header("X-API-Key", &self.key)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {}: {e}", self.base))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{message} (HTTP {})", status.as_u16())
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        Ok(self.send(request).await?.json().await?)
    }

    async fn status(&self, id: &str) -> anyhow::Result<Value> {
        self.json(self.http.get(self.url(&format!("/status/{id}"))))
            .await
    }

    async fn cancel(&self, id: &str) -> anyhow::Result<()> {
        self.send(self.http.delete(self.url(&format!("/cancel/{id}"))))
            .await?;
        Ok(())
    }

    /// Fetches the output through its download link (a plain GET, without the key) into
    /// `path`, through a temporary file beside it.
    async fn download_to(&self, id: &str, path: &Path) -> anyhow::Result<()> {
        let links = self
            .json(self.http.get(self.url(&format!("/download/{id}"))))
            .await?;
        let url = links["download_url"]
            .as_str()
            .context("the download answer has no download_url")?;
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("fetching {url}"))?;
        if !resp.status().is_success() {
            bail!("the download link answered HTTP {}", resp.status().as_u16());
        }
        let partial = path.with_extension("partial");
        let written = async {
            let mut file = tokio::fs::File::create(&partial).await?;
            while let Some(chunk) = resp.chunk().await? {
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
            }
            tokio::io::AsyncWriteExt::flush(&mut file).await?;
            anyhow::Ok(())
        }
        .await;
        match written {
            Ok(()) => tokio::fs::rename(&partial, path).await?,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(e.context(format!("writing {}", path.display())));
            }
        }
        Ok(())
    }
}

/// `<stem>-<suffix>.<output format>` for a job's status.
fn output_name(input: &str, suffix: &str, status: &Value) -> String {
    let stem = Path::new(input)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("output");
    let ext = match status["output_format"].as_str().unwrap_or("jpeg") {
        "jpeg" | "jpg" => "jpg",
        other => other,
    };
    format!("{stem}-{suffix}.{ext}")
}

/// The files to submit: each named file, and the images directly inside each named folder
/// (sorted by name).
fn collect_inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                        })
                })
                .collect();
            if found.is_empty() {
                bail!("{} holds no jpg, png or tiff images", path.display());
            }
            found.sort();
            inputs.extend(found);
        } else if path.is_file() {
            inputs.push(path.clone());
        } else {
            bail!("{} does not exist", path.display());
        }
    }
    Ok(inputs)
}

/// Two inputs whose outputs would land on one name (`a.jpg` and `a.png` into one folder) are
/// refused before anything is sent, rather than one output overwriting the other.
fn refuse_clashing_outputs(inputs: &[PathBuf], out: Option<&Path>) -> anyhow::Result<()> {
    let mut seen = std::collections::HashMap::new();
    for input in inputs {
        let folder = out.or(input.parent()).unwrap_or(Path::new("."));
        let key = (
            folder.to_path_buf(),
            input.file_stem().map(|s| s.to_os_string()),
        );
        if let Some(first) = seen.insert(key, input) {
            bail!(
                "{} and {} would write the same output name; submit them separately or rename one",
                first.display(),
                input.display()
            );
        }
    }
    Ok(())
}

fn parse_settings(settings: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    settings
        .iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("--set {s:?}: expected KEY=VALUE"))?;
            Ok((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Jobs this run started and has not seen end: what Ctrl-C cancels.
type InFlight = Arc<Mutex<Vec<String>>>;

pub async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server)?;
    let inputs = collect_inputs(&args.files)?;
    refuse_clashing_outputs(&inputs, args.out.as_deref())?;
    let fields = parse_settings(&args.settings)?;
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new(inputs.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    overall.set_prefix("all jobs");
    let in_flight = InFlight::default();
    let job_style = ProgressStyle::with_template("{prefix:30!} [{bar:30}] {pos:>3}% {msg}")?
        .progress_chars("=> ");
    let jobs = futures::stream::iter(inputs.iter().map(|input| {
        let bar = bars.insert_before(&overall, ProgressBar::new(100));
        bar.set_style(job_style.clone());
        bar.set_prefix(input.display().to_string());
        run_job(&api, &args, &fields, input, bar, &in_flight)
    }))
    .buffer_unordered(args.concurrency.max(1));
    let mut jobs = std::pin::pin!(jobs);
    // Listening from here on also keeps SIGINT from killing the process before the cancels.
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let mut failures = 0;
    loop {
        let next = tokio::select! {
            next = jobs.next() => next,
            _ = &mut interrupted => {
                let started: Vec<String> = in_flight.lock().unwrap().clone();
                overall.abandon_with_message("interrupted");
                let cancels = started.iter().map(|id| api.cancel(id));
                let cancelled = futures::future::join_all(cancels).await;
                let n = cancelled.iter().filter(|r| r.is_ok()).count();
                bail!("interrupted: cancelled {n} of the {} running jobs", started.len());
            }
        };
        let Some((input, result)) = next else { break };
        overall.inc(1);
        match result {
            Ok(output) => bars.suspend(|| println!("{} -> {}", input.display(), output.display())),
            Err(e) => {
                failures += 1;
                bars.suspend(|| eprintln!("error: {}: {e:#}", input.display()));
            }
        }
    }
    overall.finish_with_message(format!("{failures} failed"));
    if failures > 0 {
        bail!("{failures} of {} jobs failed", inputs.len());
    }
    Ok(())
}

/// Submits one file, follows it to its end on its bar, downloads its output; answers the
/// input and the output's path.
async fn run_job<'a>(
    api: &'a Api,
    args: &'a SubmitArgs,
    fields: &'a [(String, String)],
    input: &'a Path,
    bar: ProgressBar,
    in_flight: &'a InFlight,
) -> (&'a Path, anyhow::Result<PathBuf>) {
    let result = async {
        let bytes = tokio::fs::read(input)
            .await
            .with_context(|| format!("reading {}", input.display()))?;
        let name = input
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("image")
            .to_string();
        let mut form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(bytes).file_name(name.clone()),
        );
        if let Some(model) = &args.model {
            form = form.text("model", model.clone());
        }
        for (k, v) in fields {
            form = form.text(k.clone(), v.clone());
        }
        bar.set_message("uploading");
        let accepted = api
            .json(
                api.http
                    .post(api.url(&format!("/{}/async", args.endpoint)))
                    .multipart(form),
            )
            .await?;
        let id = accepted["process_id"]
            .as_str()
            .context("the submit answer has no process_id")?
            .to_string();
        in_flight.lock().unwrap().push(id.clone());
        let status = follow(api, &id, &bar).await;
        in_flight.lock().unwrap().retain(|j| *j != id);
        let status = status?;
        let folder = match &args.out {
            Some(out) => out.clone(),
            None => input.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        let output = folder.join(output_name(&name, &args.endpoint, &status));
        bar.set_message("downloading");
        api.download_to(&id, &output).await?;
        bar.finish_with_message("done");
        Ok(output)
    }
    .await;
    if let Err(e) = &result {
        bar.abandon_with_message(format!("{e:#}"));
    }
    (input, result)
}

/// Polls a job until it ends, showing its progress and ETA; answers its Completed status.
async fn follow(api: &Api, id: &str, bar: &ProgressBar) -> anyhow::Result<Value> {
    loop {
        let status = api.status(id).await?;
        let state = status["status"].as_str().unwrap_or("?");
        bar.set_position(status["progress"].as_u64().unwrap_or(0));
        let eta = status["eta"].as_i64().unwrap_or(0) - unix_now();
        match state {
            "Completed" => return Ok(status),
            "Failed" | "Cancelled" => bail!("the job {id} ended {state}"),
            "Processing" => bar.set_message(format!("processing, about {}s left", eta.max(0))),
            other => bar.set_message(other.to_lowercase()),
        }
        tokio::time::sleep(POLL).await;
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server)?;
    if let Some(id) = &args.id {
        println!("{}", serde_json::to_string_pretty(&api.status(id).await?)?);
        return Ok(());
    }
    let jobs = api.json(api.http.get(api.url("/status"))).await?;
    let jobs = jobs.as_array().context("the status list is not an array")?;
    println!(
        "{:<36}  {:<10}  {:>4}  {:<9}  {:<22}  FILE",
        "PROCESS ID", "STATUS", "%", "CATEGORY", "MODEL"
    );
    for job in jobs {
        println!(
            "{:<36}  {:<10}  {:>4}  {:<9}  {:<22}  {}",
            job["process_id"].as_str().unwrap_or(""),
            job["status"].as_str().unwrap_or(""),
            job["progress"].as_u64().unwrap_or(0),
            job["category"].as_str().unwrap_or(""),
            job["model"].as_str().unwrap_or(""),
            job["filename"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}

pub async fn cancel(args: IdArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server)?;
    api.cancel(&args.id).await?;
    eprintln!("cancelled {}", args.id);
    Ok(())
}

pub async fn download(args: DownloadArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server)?;
    let status = api.status(&args.id).await?;
    let path = match args.out {
        Some(path) => path,
        None => PathBuf::from(output_name(
            status["filename"].as_str().unwrap_or("output"),
            &status["category"]
                .as_str()
                .unwrap_or("output")
                .to_lowercase(),
            &status,
        )),
    };
    api.download_to(&args.id, &path).await?;
    println!("{}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_named_after_inputs_and_formats() {
        let status = serde_json::json!({"output_format": "jpeg"});
        assert_eq!(
            output_name("a.b.png", "enhance", &status),
            "a.b-enhance.jpg"
        );
        let status = serde_json::json!({"output_format": "tiff"});
        assert_eq!(
            output_name("shot.jpg", "denoise", &status),
            "shot-denoise.tiff"
        );
    }

    #[test]
    fn inputs_sharing_a_name_and_folder_are_refused() {
        let inputs = [PathBuf::from("a/x.jpg"), PathBuf::from("a/x.png")];
        assert!(refuse_clashing_outputs(&inputs, None).is_err());
        let apart = [PathBuf::from("a/x.jpg"), PathBuf::from("b/x.png")];
        assert!(refuse_clashing_outputs(&apart, None).is_ok());
        assert!(refuse_clashing_outputs(&apart, Some(Path::new("out"))).is_err());
    }

    #[test]
    fn settings_need_an_equals_sign() {
        assert_eq!(
            parse_settings(&["output_width=64".into(), "k = a=b".into()]).unwrap(),
            vec![
                ("output_width".to_string(), "64".to_string()),
                ("k".to_string(), " a=b".to_string())
            ]
        );
        assert!(parse_settings(&["nothing".into()]).is_err());
    }
}
