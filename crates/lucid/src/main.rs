//! The `lucid` binary: `serve`, `worker`, `keys`, `process` and the API client ([`client`]). Thin: it parses flags into
//! [`lucid_server::Config`] and calls the libraries. Every flag also reads `LUCID_<FLAG>`.

mod client;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use lucid_core::key::Scopes;
use lucid_server::config::RateLimit;
use lucid_store::NewKey;

#[derive(Parser)]
#[command(
    name = "lucid",
    version,
    about = "Self-hosted image enhancement that speaks the Topaz Labs Image API."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: text, or json (one object per line, with the request id and route of
    /// each request's lines).
    #[arg(long, env = "LUCID_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (and run workers) until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Run workers only, against the same database and blobs as the API nodes.
    Worker(WorkerArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run one job offline, file to file, with the server's pipeline.
    Process(ProcessArgs),
    /// Bring the job database's schema up to date (serve and worker also do this at start).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Copy an embedded installation (--data-dir: its SQLite database and blob folder) into an
    /// empty PostgreSQL database and a blob store (S3). The folder is only read.
    MoveData(MoveDataArgs),
    /// Submit images (or folders of them) to a server, follow them and download the outputs;
    /// Ctrl-C cancels the jobs it started.
    Submit(client::SubmitArgs),
    /// A job's status as JSON, or the key's jobs as a table.
    Status(client::StatusArgs),
    /// Cancel a Pending or Processing job.
    Cancel(client::IdArgs),
    /// Download a Completed job's output.
    Download(client::DownloadArgs),
}

#[derive(Args)]
struct MoveDataArgs {
    /// The embedded installation to copy.
    #[arg(long, env = "LUCID_DATA_DIR", default_value = "./lucid-data")]
    data_dir: PathBuf,
    /// The PostgreSQL database to fill (postgres://…); it must hold no keys yet.
    #[arg(long, env = "LUCID_DATABASE_URL")]
    database_url: String,
    /// Where the blobs go: s3://bucket[/prefix] (AWS_* variables as for serve).
    #[arg(long, env = "LUCID_BLOB_URL")]
    blob_url: String,
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Folder for the embedded database and blobs.
    #[arg(long, env = "LUCID_DATA_DIR", default_value = "./lucid-data")]
    data_dir: PathBuf,
    /// Job database URL: sqlite://path or postgres://user:password@host/database;
    /// default <data-dir>/lucid.db.
    #[arg(long, env = "LUCID_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LUCID_ADDR", default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    work: WorkArgs,
    /// Base URL of signed download links; default http://<addr>.
    #[arg(long, env = "LUCID_PUBLIC_URL")]
    public_url: Option<String>,
    /// Requests per second per API key (N/s, optionally ,burst=M).
    #[arg(long, env = "LUCID_RATE_LIMIT", default_value = "20/s,burst=40")]
    rate_limit: RateLimit,
    /// Largest request body in megabytes.
    #[arg(long, env = "LUCID_MAX_UPLOAD_MB", default_value_t = 500)]
    max_upload_mb: u64,
    /// Serve downloads through this node's signed links even when the blob store is S3
    /// (default there: presigned S3 links, so image bytes bypass the API nodes).
    #[arg(long, env = "LUCID_PROXY_DOWNLOADS")]
    proxy_downloads: bool,
}

#[derive(Args)]
struct WorkerArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    work: WorkArgs,
    /// Serve /metrics, /healthz and /readyz (and nothing else) on this address.
    #[arg(long, env = "LUCID_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

/// What `serve` and `worker` share: where outputs go and how jobs are worked.
#[derive(Args)]
struct WorkArgs {
    /// Blob storage URL: file:///folder or s3://bucket[/prefix] (endpoint and credentials
    /// from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ALLOW_HTTP); default <data-dir>/blobs.
    #[arg(long, env = "LUCID_BLOB_URL")]
    blob_url: Option<String>,
    /// Worker threads in this process (serve: 0 = API only, jobs stay Pending).
    /// Default: the number of cores.
    #[arg(long, env = "LUCID_WORKERS")]
    workers: Option<usize>,
    /// Seconds a worker's claim on a job lasts unless renewed (it renews every third of it):
    /// how long the jobs of a crashed worker wait before another takes them.
    #[arg(long, env = "LUCID_LEASE_SECONDS", default_value_t = 30)]
    lease_seconds: u64,
    /// After SIGTERM, seconds running jobs get to finish; then they are stopped and go back
    /// to Pending for another worker, without using up one of their attempts.
    #[arg(long, env = "LUCID_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    shutdown_grace_seconds: u64,
    /// Let source_url downloads and webhook deliveries reach loopback and private addresses.
    #[arg(long, env = "LUCID_ALLOW_PRIVATE_URLS")]
    allow_private_urls: bool,
    /// Megabytes of memory this node's running jobs may hold at once: a job waits until its
    /// estimated peak fits beside the others', and submit refuses one that never could.
    /// Default: three quarters of the machine's (or the container's) memory.
    #[arg(long, env = "LUCID_MEMORY_BUDGET_MB")]
    memory_budget_mb: Option<u64>,
}

impl WorkArgs {
    fn apply(&self, config: &mut lucid_server::Config) {
        config.blob_url = self.blob_url.clone();
        if let Some(n) = self.workers {
            config.workers = n;
        }
        config.lease = std::time::Duration::from_secs(self.lease_seconds.max(1));
        config.shutdown_grace = std::time::Duration::from_secs(self.shutdown_grace_seconds);
        config.allow_private_urls = self.allow_private_urls;
        if let Some(mb) = self.memory_budget_mb {
            config.memory_budget = mb.saturating_mul(1 << 20);
        }
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it (only the key) on stdout.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: submit, read, cancel, delete.
        #[arg(long, default_value = "submit,read,cancel,delete")]
        scopes: String,
        /// Credits, or "unlimited".
        #[arg(long, default_value = "unlimited")]
        credits: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List keys (never the keys themselves).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key by name.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the key's webhook signing secret (whsec_…), creating it on first use.
    WebhookSecret {
        name: String,
        /// Replace the secret with a new one.
        #[arg(long)]
        rotate: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args)]
struct ProcessArgs {
    /// Endpoint: enhance, enhance-gen, sharpen, sharpen-gen, denoise, denoise-gen, restore-gen,
    /// lighting, matting, tool.
    #[arg(long, default_value = "enhance")]
    endpoint: String,
    /// Model name; default: the endpoint's default.
    #[arg(long)]
    model: Option<String>,
    /// Any API field, as key=value (output_width=2000, sharpen=0.5, …).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    input: PathBuf,
    output: PathBuf,
}

fn store_config(store: &StoreArgs) -> lucid_server::Config {
    let mut config = lucid_server::Config::embedded(store.data_dir.clone());
    config.database_url = store.database_url.clone();
    config
}

fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("LUCID_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let mut config = store_config(&args.store);
            config.addr = args.addr;
            args.work.apply(&mut config);
            config.public_url = args.public_url;
            config.rate_limit = args.rate_limit;
            config.max_upload_mb = args.max_upload_mb;
            config.proxy_downloads = args.proxy_downloads;
            let app = lucid_server::App::build(config).await?;
            if let Some(key) = app.first_key() {
                println!("Created an API key with every scope (shown once): {key}");
            }
            tracing::info!(addr = %app.local_addr(), "lucid is serving");
            app.run(shutdown_signal()).await
        }
        Command::Worker(args) => {
            let mut config = store_config(&args.store);
            args.work.apply(&mut config);
            config.addr = args.metrics_addr.unwrap_or("127.0.0.1:0".parse()?);
            config.create_first_key = false;
            let app = lucid_server::App::build(config).await?;
            tracing::info!(metrics = ?args.metrics_addr, "lucid worker running");
            app.run_workers(shutdown_signal(), args.metrics_addr.is_some())
                .await
        }
        Command::Keys { command } => keys(command).await,
        Command::Process(args) => process(args),
        Command::MoveData(args) => move_data(args).await,
        Command::Submit(args) => client::submit(args).await,
        Command::Status(args) => client::status(args).await,
        Command::Cancel(args) => client::cancel(args).await,
        Command::Download(args) => client::download(args).await,
        Command::Migrate { store } => {
            lucid_server::app::open_job_store(&store_config(&store)).await?;
            eprintln!("the job database is up to date");
            Ok(())
        }
    }
}

async fn move_data(args: MoveDataArgs) -> anyhow::Result<()> {
    let embedded = lucid_server::Config::embedded(args.data_dir.clone());
    if !args.data_dir.join("lucid.db").is_file() {
        bail!("{} has no lucid.db", args.data_dir.display());
    }
    if !args.database_url.starts_with("postgres") {
        bail!("--database-url must be a postgres:// URL");
    }
    let from = lucid_store::sqlite::SqliteStore::open(&embedded.database_url()).await?;
    let to = lucid_store::postgres::PgStore::open(&args.database_url).await?;
    let blobs = lucid_server::app::open_blob_store(&lucid_server::Config {
        blob_url: Some(args.blob_url),
        ..embedded.clone()
    })?;
    // Blobs first: copying them again is harmless, while the database copy is refused once
    // the target holds keys, so a failed run can simply be repeated.
    let copied = lucid_store::transfer::copy_blobs(&embedded.blob_dir()?, &*blobs).await?;
    eprintln!("blobs: {copied} files");
    for (table, rows) in lucid_store::transfer::copy_database(&from, &to).await? {
        eprintln!("{table}: {rows} rows");
    }
    Ok(())
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            credits,
            store,
        } => {
            let scopes = Scopes::parse(&scopes).map_err(|e| anyhow::anyhow!(e.message))?;
            let credits = match credits.as_str() {
                "unlimited" => None,
                n => Some(
                    n.parse::<i64>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .context("--credits takes a number or 'unlimited'")?,
                ),
            };
            let jobs = lucid_server::app::open_job_store(&store_config(&store)).await?;
            let key = jobs
                .create_key(NewKey {
                    name,
                    scopes,
                    credits,
                })
                .await?;
            println!("{key}");
        }
        KeysCommand::List { store } => {
            let jobs = lucid_server::app::open_job_store(&store_config(&store)).await?;
            println!(
                "{:<24} {:<28} {:>12} {:>12}  STATE",
                "NAME", "SCOPES", "AVAILABLE", "RESERVED"
            );
            for k in jobs.list_keys().await? {
                let available = if k.unlimited {
                    "unlimited".to_string()
                } else {
                    k.balance.available.to_string()
                };
                let state = if k.revoked { "revoked" } else { "active" };
                println!(
                    "{:<24} {:<28} {:>12} {:>12}  {state}",
                    k.name,
                    k.scopes.to_string(),
                    available,
                    k.balance.reserved
                );
            }
        }
        KeysCommand::Revoke { name, store } => {
            let jobs = lucid_server::app::open_job_store(&store_config(&store)).await?;
            if !jobs.revoke_key(&name).await? {
                bail!("no active key named {name:?}");
            }
            eprintln!("revoked {name}");
        }
        KeysCommand::WebhookSecret {
            name,
            rotate,
            store,
        } => {
            let jobs = lucid_server::app::open_job_store(&store_config(&store)).await?;
            let id = jobs
                .key_id(&name)
                .await?
                .with_context(|| format!("no active key named {name:?}"))?;
            println!("{}", jobs.webhook_secret(id, rotate).await?);
        }
    }
    Ok(())
}

fn process(args: ProcessArgs) -> anyhow::Result<()> {
    use lucid_core::request::{Fields, SubmitRequest};
    let endpoint = lucid_core::Endpoint::from_slug(&args.endpoint)
        .with_context(|| format!("unknown endpoint {:?}", args.endpoint))?;
    let mut fields = Fields::new();
    for kv in &args.settings {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set takes key=value, got {kv:?}"))?;
        fields.insert(k, v.to_string());
    }
    if let Some(model) = args.model {
        fields.insert("model", model);
    }
    if fields.get("output_format").is_none()
        && let Some(ext) = args.output.extension().and_then(|e| e.to_str())
    {
        fields.insert("output_format", ext.to_string());
    }
    let req =
        SubmitRequest::parse(endpoint, &fields, true).map_err(|e| anyhow::anyhow!(e.message))?;
    let input =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let info = lucid_imaging::codec::probe(&input)?;
    let plan = req
        .plan(info.width, info.height, false)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let job = lucid_imaging::pipeline::Job {
        endpoint,
        model: req.model,
        settings: &req.settings,
        placement: plan.placement,
        format: req.output_format,
    };
    // Streamed straight into the file (an enhance never holds its whole output as pixels),
    // under a temporary name until it is complete.
    let mut partial = args.output.clone().into_os_string();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("writing {}", partial.display()))?;
    let written = lucid_imaging::pipeline::process_into(
        &input,
        &job,
        &lucid_imaging::Cancel::new(),
        &|_| {},
        std::io::BufWriter::new(file),
    )
    .map_err(anyhow::Error::from)
    .and_then(|out| Ok(out.into_inner().map_err(|e| e.into_error())?.sync_all()?));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e.context(format!("writing {}", args.output.display())));
    }
    std::fs::rename(&partial, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
