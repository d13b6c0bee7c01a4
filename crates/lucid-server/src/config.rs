//! The server's settings, filled by the command line (or directly by tests).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Requests per second and burst allowed per API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    /// `20/s` (burst = rate) or `20/s,burst=40`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (rate, burst) = match s.split_once(",burst=") {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let n = rate
            .trim()
            .trim_end_matches("/s")
            .parse::<u32>()
            .map_err(|_| format!("bad rate limit {s:?}; use N/s"))?;
        if n == 0 {
            return Err("rate limit must be at least 1/s".into());
        }
        let burst = burst
            .map(|b| b.parse::<u32>().map_err(|_| format!("bad burst in {s:?}")))
            .transpose()?
            .unwrap_or(n);
        Ok(RateLimit {
            per_second: n,
            burst: burst.max(1),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Folder for the embedded database and blobs.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `<data_dir>/lucid.db`.
    pub database_url: Option<String>,
    /// `file:///…` or `s3://bucket[/prefix]`; default `<data_dir>/blobs`.
    pub blob_url: Option<String>,
    /// Serve downloads through this node's signed `/files/…` links even where the blob store
    /// could presign links to itself (S3).
    pub proxy_downloads: bool,
    /// In-process workers; 0 leaves jobs Pending (API-only node).
    pub workers: usize,
    /// Base of signed download links; default `http://<bound address>`.
    pub public_url: Option<String>,
    pub rate_limit: RateLimit,
    pub max_upload_mb: u64,
    /// Lets `source_url` reach loopback and private addresses (local setups, tests).
    pub allow_private_urls: bool,
    /// How long a worker's claim lasts without renewal.
    pub lease: Duration,
    /// How long a job may run before it is failed (per attempt).
    pub job_timeout: Duration,
    /// After SIGTERM, how long running jobs get to finish before they are stopped and given
    /// back to Pending.
    pub shutdown_grace: Duration,
    /// When no key exists at start, create one with every scope and print it.
    pub create_first_key: bool,
    /// First webhook retry delay; later ones double (spec: 5 s).
    pub webhook_base_delay: Duration,
    /// Bytes this node's running jobs may hold at once (see [`crate::memory`]); jobs that
    /// need more than all of it are refused at submit.
    pub memory_budget: u64,
}

impl Config {
    /// The defaults of `lucid serve` with everything under `data_dir`.
    pub fn embedded(data_dir: PathBuf) -> Self {
        Config {
            addr: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir,
            database_url: None,
            blob_url: None,
            proxy_downloads: false,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            public_url: None,
            rate_limit: RateLimit {
                per_second: 20,
                burst: 40,
            },
            max_upload_mb: 500,
            allow_private_urls: false,
            lease: Duration::from_secs(30),
            job_timeout: Duration::from_secs(90 * 60),
            shutdown_grace: Duration::from_secs(30),
            create_first_key: true,
            webhook_base_delay: Duration::from_secs(5),
            memory_budget: crate::memory::default_budget(),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("lucid.db").display()))
    }

    pub fn blob_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.blob_url {
            None => Ok(self.data_dir.join("blobs")),
            Some(url) => match url.strip_prefix("file://") {
                Some(path) => Ok(PathBuf::from(path)),
                None => anyhow::bail!(
                    "unsupported --blob-url {url:?}: use file:///folder or s3://bucket[/prefix]"
                ),
            },
        }
    }

    pub fn max_upload_bytes(&self) -> usize {
        (self.max_upload_mb as usize).saturating_mul(1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_parses() {
        assert_eq!(
            "20/s".parse::<RateLimit>().unwrap(),
            RateLimit {
                per_second: 20,
                burst: 20
            }
        );
        assert_eq!(
            "5/s,burst=9".parse::<RateLimit>().unwrap(),
            RateLimit {
                per_second: 5,
                burst: 9
            }
        );
        assert!("0/s".parse::<RateLimit>().is_err());
        assert!("fast".parse::<RateLimit>().is_err());
    }
}
