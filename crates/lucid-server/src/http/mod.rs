//! The wire: one error type that writes `{"code", "message"}` ([`error`]) and the extractors
//! that own the API's quirks ([`extract`]).

pub mod error;
pub mod extract;
pub mod observe;

pub use error::HttpError;
pub use extract::{Caller, ProcessIdPath};
