//! End-to-end tests: the real router on a loopback port, spoken to over HTTP.

mod helpers;

mod auth;
mod bad_input;
mod cancel;
mod download;
mod estimate;
mod memory;
mod operator;
mod status;
mod submit;
mod webhooks;
