//! Downloading `source_url` images: public http(s) addresses only unless
//! `--allow-private-urls`; every redirect and every resolved name is checked the same way;
//! size and time are bounded.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lucid_core::ApiError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Which addresses outgoing requests (`source_url` downloads, webhook deliveries) may reach.
pub type AddressRule = fn(IpAddr) -> bool;

/// Public addresses only, or anything with `--allow-private-urls`.
pub fn rule(allow_private: bool) -> AddressRule {
    if allow_private { |_| true } else { is_public }
}

/// An HTTP client whose every connection goes to an address `allowed` accepts: names are
/// checked as they are resolved for the connection itself, so a name that answers a public
/// address to a first lookup and a private one to the next (DNS rebinding) gains nothing.
pub fn client(allowed: AddressRule) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver(allowed)))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("lucid/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static reqwest configuration")
}

struct GuardedResolver(AddressRule);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.0;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || !addrs.iter().all(|a| allowed(a.ip())) {
                return Err(format!("{host} resolves to an address that is not allowed").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
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

/// Refuses URLs that are not http(s) or whose host resolves to an address `allowed` refuses.
/// Used for `source_url` and `webhook_url` at submit, for a clear 400 before any job exists.
pub async fn check_url(url: &str, allowed: AddressRule) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| unreachable(url))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(unreachable(url));
    }
    check_host(&parsed, allowed).await
}

/// Literal addresses never reach the resolver, so this check is the only one they get; names
/// are checked again by [`GuardedResolver`] when connecting.
async fn check_host(url: &reqwest::Url, allowed: AddressRule) -> Result<(), ApiError> {
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
    if addrs.is_empty() || !addrs.iter().all(|ip| allowed(*ip)) {
        return Err(ApiError::bad_request(
            "The URL points to a private or local address, which is not allowed.",
        ));
    }
    Ok(())
}

/// Downloads an image of at most `max_bytes`, checking every redirect's target like the first.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    max_bytes: usize,
    allowed: AddressRule,
) -> Result<Bytes, ApiError> {
    let mut url = reqwest::Url::parse(url).map_err(|_| unreachable(url))?;
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(unreachable(url.as_str()));
        }
        check_host(&url, allowed).await?;
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

    /// Serves `GET /` on `ip`, answering a redirect to `to` or an image body.
    async fn serve(ip: &str, to: Option<String>) -> String {
        use axum::response::{IntoResponse, Redirect};
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move {
                match to {
                    Some(to) => Redirect::temporary(&to).into_response(),
                    None => b"image bytes".to_vec().into_response(),
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    fn only_127_0_0_1(ip: IpAddr) -> bool {
        ip == IpAddr::from([127, 0, 0, 1])
    }

    #[tokio::test]
    async fn a_redirect_to_a_refused_address_is_refused() {
        // 127.0.0.2 stands for the private address behind a public redirector.
        let inner = serve("127.0.0.2", None).await;
        let outer = serve("127.0.0.1", Some(format!("{inner}/"))).await;
        let strict = client(only_127_0_0_1);
        let err = download(&strict, &outer, 1 << 20, only_127_0_0_1)
            .await
            .unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("private or local"), "{}", err.message);
        // The same chain with both addresses allowed downloads: the rule made the difference.
        let open = client(rule(true));
        let body = download(&open, &outer, 1 << 20, rule(true)).await.unwrap();
        assert_eq!(&body[..], b"image bytes");
    }

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_are_refused() {
        let server = serve("127.0.0.1", None).await;
        let port = server.rsplit(':').next().unwrap();
        let by_name = format!("http://localhost:{port}/");
        let err = check_url(&by_name, is_public).await.unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("private or local"), "{}", err.message);
        // Past the submit-time check, the connection itself resolves through the rule too:
        // a name that changes its answer after the check (DNS rebinding) is still refused.
        let guarded = client(is_public);
        assert!(guarded.get(&by_name).send().await.is_err());
        assert!(client(rule(true)).get(&by_name).send().await.is_ok());
        for literal in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://10.0.0.1:8080/",
            "http://[fd00::1]/",
        ] {
            let err = check_url(literal, is_public).await.unwrap_err();
            assert_eq!(err.status, 400, "{literal}");
        }
        for refused_scheme in ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"] {
            assert!(check_url(refused_scheme, rule(true)).await.is_err());
        }
    }

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
