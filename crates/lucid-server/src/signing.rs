//! Signed download links: `/files/{kind}/{process_id}?method=GET&expires=T&signature=S` where
//! `S` is HMAC-SHA256 over method, kind, id and expiry with a secret kept in the job store.
//! Links work without an API key, for one method, until they expire (1 hour, spec §3.8).

use hmac::{Hmac, Mac};
use lucid_core::ProcessId;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a minted link is valid.
pub const LINK_TTL_SECS: i64 = 3600;

/// Which blob of a job a link serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Output,
    Input,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Output => "output",
            FileKind::Input => "input",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "output" => Some(FileKind::Output),
            "input" => Some(FileKind::Input),
            _ => None,
        }
    }

    /// The blob key of this file of `job`.
    pub fn blob(self, job: &lucid_core::Job) -> String {
        match self {
            FileKind::Output => job.output_blob(),
            FileKind::Input => lucid_core::job::source_blob(job.source_id),
        }
    }
}

#[derive(Clone)]
pub struct Signer {
    key: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    pub fn new(key: Vec<u8>) -> Self {
        Signer { key: key.into() }
    }

    fn signature(&self, method: &str, kind: FileKind, id: ProcessId, expires: i64) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{method}\n{}\n{id}\n{expires}", kind.as_str()).as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// A link for `method` (`GET` or `HEAD`) valid until `expires` (Unix seconds).
    pub fn link(
        &self,
        base: &str,
        method: &str,
        kind: FileKind,
        id: ProcessId,
        expires: i64,
    ) -> String {
        let sig = hex::encode(self.signature(method, kind, id, expires));
        format!(
            "{base}/files/{}/{id}?method={method}&expires={expires}&signature={sig}",
            kind.as_str()
        )
    }

    /// Whether the signature matches and the link has not expired at `now`.
    pub fn verify(
        &self,
        method: &str,
        kind: FileKind,
        id: ProcessId,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> bool {
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        let expected = self.signature(method, kind, id, expires);
        bool::from(expected.ct_eq(&given)) && now <= expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_only_unaltered_and_unexpired() {
        let s = Signer::new(vec![7; 32]);
        let id = ProcessId::new();
        let link = s.link("http://h", "GET", FileKind::Output, id, 1000);
        let sig = link.rsplit_once("signature=").unwrap().1;
        assert!(s.verify("GET", FileKind::Output, id, 1000, sig, 999));
        assert!(
            !s.verify("GET", FileKind::Output, id, 1000, sig, 1001),
            "expired"
        );
        assert!(
            !s.verify("HEAD", FileKind::Output, id, 1000, sig, 999),
            "other method"
        );
        assert!(
            !s.verify("GET", FileKind::Input, id, 1000, sig, 999),
            "other file"
        );
        assert!(
            !s.verify("GET", FileKind::Output, id, 2000, sig, 999),
            "other expiry"
        );
        assert!(
            !s.verify("GET", FileKind::Output, ProcessId::new(), 1000, sig, 999),
            "other job"
        );
        assert!(
            !Signer::new(vec![8; 32]).verify("GET", FileKind::Output, id, 1000, sig, 999),
            "other secret"
        );
    }
}
