//! The one HTTP client for calls to URLs a team gives (custom actions, their
//! health checks). It refuses private, loopback, link-local and other
//! non-public addresses unless the operator allows them
//! (`--outbound-allow`), checks every address a name resolves to inside the
//! connector (so a name cannot resolve to a public address for the check and
//! a private one for the call), follows no redirects, and caps the time and
//! size of every response.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The limits of outbound calls.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Networks reachable although not public (tests allow 127.0.0.1).
    pub allow: Vec<Network>,
    /// Whole-call limit, body included.
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            allow: Vec::new(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// An address or a CIDR network: `127.0.0.1`, `10.0.0.0/8`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or a CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Network { addr, prefix })
    }
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn v4_refused(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (b & 0xc0) == 64)
        // Protocol assignments, 192.0.0.0/24, and benchmarking, 198.18.0.0/15.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b & 0xfe) == 18)
        // Reserved, 240.0.0.0/4.
        || a >= 240
}

fn v6_refused(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64 64:ff9b::/96 reaches the IPv4 address it embeds.
        || (first == 0x64 && ip.segments()[1] == 0xff9b && {
            let [.., a, b, c, d] = ip.octets();
            v4_refused(Ipv4Addr::new(a, b, c, d))
        })
}

/// Whether an address is not on the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_refused(v4),
        IpAddr::V6(v6) => v6_refused(v6),
    }
}

/// Why an outbound call did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("the request is invalid: {0}")]
    Invalid(String),
    #[error("{0} is a private address; calls to it are refused")]
    Refused(String),
    #[error("no answer within {0} seconds")]
    Timeout(u64),
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the call failed: {0}")]
    Failed(String),
}

/// The error a refusing resolver gives the connector.
#[derive(Debug)]
struct RefusedAddress(String);

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedAddress {}

/// Resolves names and keeps only addresses the policy allows.
struct Guard {
    allow: Arc<Vec<Network>>,
}

fn allowed(allow: &[Network], ip: IpAddr) -> bool {
    !is_private(ip) || allow.iter().any(|n| n.contains(ip))
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (ok, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| allowed(&allow, a.ip()));
            if ok.is_empty() {
                let shown = refused
                    .first()
                    .map(|a| format!("{host} ({})", a.ip()))
                    .unwrap_or(host);
                return Err(
                    Box::new(RefusedAddress(shown)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// An answer, its body read within the caps.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
    /// Every header, in order (names lower-case).
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    settings: Arc<OutboundSettings>,
}

impl Outbound {
    pub fn new(settings: OutboundSettings) -> Self {
        llm::http::install_crypto_provider();
        let guard = Guard {
            allow: Arc::new(settings.allow.clone()),
        };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(guard))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("chatstudio/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Outbound {
            client,
            settings: Arc::new(settings),
        }
    }

    /// A request to `url`; [`Outbound::fetch`] sends it.
    pub fn request(&self, method: reqwest::Method, url: url::Url) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Refuses an address literal the policy does not allow (names are
    /// checked when they resolve).
    pub fn check(&self, url: &url::Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Invalid(format!(
                "{} is not http or https",
                url.scheme()
            )));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(OutboundError::Invalid("it has no host".into())),
        };
        if allowed(&self.settings.allow, ip) {
            Ok(())
        } else {
            Err(OutboundError::Refused(ip.to_string()))
        }
    }

    /// As [`Outbound::check`], and a name must resolve only to addresses the
    /// policy allows (for URLs kept to call later by other clients, such as
    /// an LLM provider's endpoint).
    pub async fn check_resolved(&self, url: &url::Url) -> Result<(), OutboundError> {
        self.check(url)?;
        let Some(url::Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| OutboundError::Invalid(format!("{name} does not resolve: {e}")))?;
        for a in addrs {
            if !allowed(&self.settings.allow, a.ip()) {
                return Err(OutboundError::Refused(a.ip().to_string()));
            }
        }
        Ok(())
    }

    /// Sends a request and reads its answer up to the size cap.
    pub async fn fetch(&self, rb: reqwest::RequestBuilder) -> Result<Fetched, OutboundError> {
        let req = rb
            .build()
            .map_err(|e| OutboundError::Invalid(e.to_string()))?;
        self.check(req.url())?;
        let limit = self.settings.max_response_bytes;
        let mut resp = self
            .client
            .execute(req)
            .await
            .map_err(|e| self.failure(e))?;
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(OutboundError::TooLarge(limit));
        }
        let header = |r: &reqwest::Response, h| {
            r.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(&resp, reqwest::header::CONTENT_TYPE);
        let content_disposition = header(&resp, reqwest::header::CONTENT_DISPOSITION);
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.failure(e))? {
            if body.len() + chunk.len() > limit {
                return Err(OutboundError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            content_type,
            content_disposition,
            headers,
            body: body.freeze(),
        })
    }

    fn failure(&self, e: reqwest::Error) -> OutboundError {
        if e.is_timeout() {
            return OutboundError::Timeout(self.settings.timeout.as_secs().max(1));
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if let Some(r) = s.downcast_ref::<RefusedAddress>() {
                return OutboundError::Refused(r.0.clone());
            }
            source = s.source();
        }
        // The message goes to the model and the trace: the URL (with its
        // query) stays out of it.
        OutboundError::Failed(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_private() {
        for a in [
            "127.0.0.1",
            "127.8.9.1",
            "10.2.3.4",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd12:3456::1",
            "fc00::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(is_private(a.parse().unwrap()), "{a}");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.255.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.168.0.1".parse().unwrap()));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn literals_and_names_of_refused_addresses_are_refused_before_any_connection() {
        let o = Outbound::new(OutboundSettings::default());
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:192.168.0.1]/",
            "http://localhost:9/",
        ] {
            let rb = o.request(reqwest::Method::GET, url::Url::parse(url).unwrap());
            let e = o.fetch(rb).await.unwrap_err();
            assert!(matches!(e, OutboundError::Refused(_)), "{url}: {e:?}");
        }
        let allowed = Outbound::new(OutboundSettings {
            allow: vec!["127.0.0.1".parse().unwrap()],
            ..Default::default()
        });
        let rb = allowed.request(
            reqwest::Method::GET,
            url::Url::parse("http://127.0.0.2:9/").unwrap(),
        );
        assert!(matches!(
            allowed.fetch(rb).await,
            Err(OutboundError::Refused(_))
        ));
    }

    /// A one-shot HTTP server on 127.0.0.1 answering `body`.
    async fn answer_once(body: &'static str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(reply.as_bytes()).await.unwrap();
        });
        port
    }

    #[tokio::test]
    async fn an_allowed_name_connects_on_the_urls_port_and_big_answers_stop() {
        let o = Outbound::new(OutboundSettings {
            allow: vec!["127.0.0.1".parse().unwrap()],
            max_response_bytes: 8,
            ..Default::default()
        });
        let port = answer_once("fine").await;
        let url = url::Url::parse(&format!("http://localhost:{port}/")).unwrap();
        let f = o.fetch(o.request(reqwest::Method::GET, url)).await.unwrap();
        assert_eq!((f.status, &f.body[..]), (200, &b"fine"[..]));
        let port = answer_once("more than eight").await;
        let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let e = o
            .fetch(o.request(reqwest::Method::GET, url))
            .await
            .unwrap_err();
        assert_eq!(e, OutboundError::TooLarge(8));
    }
}
