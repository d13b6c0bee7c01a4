//! lucid's domain, without I/O: job states and transitions ([`job`]), the model catalogue
//! ([`model`]), request parsing from string fields ([`request`]), output geometry
//! ([`geometry`]), credits and time estimates ([`credits`]) and the API error ([`error`]).
//!
//! ```
//! use lucid_core::{model::Endpoint, request::{Fields, SubmitRequest}};
//! let fields: Fields = [("model", "CGI"), ("outputWidth", "2000")].into_iter().collect();
//! let req = SubmitRequest::parse(Endpoint::Enhance, &fields, true).unwrap();
//! let plan = req.plan(1000, 500, false).unwrap();
//! assert_eq!((plan.placement.width, plan.placement.height, plan.credits), (2000, 1000, 1));
//! ```

pub mod credits;
pub mod error;
pub mod geometry;
pub mod job;
pub mod key;
pub mod model;
pub mod request;

pub use error::ApiError;
pub use job::{Job, JobState, ProcessId};
pub use model::{Endpoint, OutputFormat};
