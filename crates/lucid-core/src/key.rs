//! API keys as the domain sees them: who is calling and what they may do
//! (DESIGN.md "Scopes and tenancy").

use crate::error::ApiError;

/// A permission an API key may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Submit jobs and estimates.
    Submit,
    /// Read statuses, downloads and the credit balance.
    Read,
    /// Cancel jobs.
    Cancel,
    /// Delete statuses.
    Delete,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Submit, Scope::Read, Scope::Cancel, Scope::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Submit => "submit",
            Scope::Read => "read",
            Scope::Cancel => "cancel",
            Scope::Delete => "delete",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes, written as a comma-separated list (`submit,read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Self {
        Scopes(Scope::ALL.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn parse(list: &str) -> Result<Self, ApiError> {
        let mut bits = 0;
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.as_str().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Unknown scope '{name}'. Scopes: submit, read, cancel, delete."
                    ))
                })?;
            bits |= scope.bit();
        }
        Ok(Scopes(bits))
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    pub id: i64,
    pub name: String,
    pub scopes: Scopes,
}

/// `GET /account/v1/credits/balance`. Unlimited keys report [`UNLIMITED_CREDITS`] in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub available: i64,
    pub reserved: i64,
    pub total: i64,
}

/// The total an unlimited key reports: the largest integer every JSON client reads exactly.
pub const UNLIMITED_CREDITS: i64 = 9_007_199_254_740_991;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse("read, cancel").unwrap();
        assert!(s.contains(Scope::Read) && s.contains(Scope::Cancel) && !s.contains(Scope::Submit));
        assert_eq!(s.to_string(), "read,cancel");
        assert_eq!(Scopes::all().to_string(), "submit,read,cancel,delete");
        assert!(Scopes::parse("admin").is_err());
    }
}
