//! lucid's server: the HTTP API ([`routes`]), its wire quirks ([`http`]), signed download
//! links ([`signing`]), the in-process worker pool ([`worker`]) and the startup seam
//! ([`app::App`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = lucid_server::Config::embedded("./lucid-data".into());
//! let app = lucid_server::App::build(config).await?;
//! println!("listening on {}", app.local_addr());
//! app.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod app;
pub mod config;
pub mod fetch;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod signing;
pub mod state;
pub mod webhook;
pub mod worker;

pub use app::App;
pub use config::Config;
pub use state::AppState;
