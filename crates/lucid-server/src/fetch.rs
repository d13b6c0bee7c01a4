//! Downloading `source_url` images: public http(s) addresses only unless
//! `--allow-private-urls`; every redirect is checked the same way; size and time are bounded.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use lucid_core::ApiError;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("lucid/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static reqwest configuration")
}

/// Whether an address is reachable from the public internet (not loopback, private,
/// link-local, unique-local, CGNAT, multicast, unspecified or the cloud metadata address).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80)
        }
    }
}

fn unreachable(url: &str) -> ApiError {
    ApiError::bad_request(format!("The URL could not be reached: {url}"))
}

/// Refuses URLs that are not http(s) or whose host resolves to a non-public address (unless
/// `allow_private`). Used for `source_url` and `webhook_url`.
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| unreachable(url))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(unreachable(url));
    }
    check_host(&parsed, allow_private).await
}

async fn check_host(url: &reqwest::Url, allow_private: bool) -> Result<(), ApiError> {
    if allow_private {
        return Ok(());
    }
    let host = url.host_str().ok_or_else(|| unreachable(url.as_str()))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| unreachable(url.as_str()))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() || !addrs.iter().all(|ip| is_public(*ip)) {
        return Err(ApiError::bad_request(
            "The source URL points to a private or local address, which is not allowed.",
        ));
    }
    Ok(())
}

/// Downloads an image of at most `max_bytes`.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    max_bytes: usize,
    allow_private: bool,
) -> Result<Bytes, ApiError> {
    let mut url = reqwest::Url::parse(url).map_err(|_| unreachable(url))?;
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(unreachable(url.as_str()));
        }
        check_host(&url, allow_private).await?;
        let mut resp = client
            .get(url.clone())
            .send()
            .await
            .map_err(|_| unreachable(url.as_str()))?;
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| unreachable(url.as_str()))?;
            url = location;
            continue;
        }
        if !resp.status().is_success() {
            return Err(ApiError::bad_request(format!(
                "The source URL could not be downloaded: it answered {}.",
                resp.status().as_u16()
            )));
        }
        if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
            return Err(ApiError::too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| unreachable(url.as_str()))? {
            if body.len() + chunk.len() > max_bytes {
                return Err(ApiError::too_large());
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Bytes::from(body));
    }
    Err(ApiError::bad_request(
        "The source URL redirected too many times.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "100.64.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
