//! The upstream client: a pooled hyper-util client over rustls (or plain HTTP for a local
//! simulator), and where each request goes.

use crate::names::valid_region;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Where requests go: a fixed URL, or Bedrock's regional endpoint.
#[derive(Clone, Debug)]
pub enum Upstream {
    Fixed {
        scheme: http::uri::Scheme,
        authority: http::uri::Authority,
    },
    Regional,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("--upstream must be an absolute http:// or https:// URL without a path, got {0:?}")]
    BadUrl(String),
    #[error("invalid region {0:?}")]
    BadRegion(String),
}

impl Upstream {
    pub fn parse(url: Option<&str>) -> Result<Self, UpstreamError> {
        let Some(url) = url else {
            return Ok(Upstream::Regional);
        };
        let bad = || UpstreamError::BadUrl(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let scheme = uri.scheme().cloned().ok_or_else(bad)?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(bad());
        }
        if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
            return Err(bad());
        }
        let authority = uri.authority().cloned().ok_or_else(bad)?;
        Ok(Upstream::Fixed { scheme, authority })
    }

    /// The URI to forward to: the upstream's scheme and host with the client's raw path and
    /// query, byte for byte.
    pub fn uri(&self, region: &str, path_and_query: &str) -> Result<Uri, UpstreamError> {
        let built = match self {
            Upstream::Fixed { scheme, authority } => Uri::builder()
                .scheme(scheme.clone())
                .authority(authority.clone())
                .path_and_query(path_and_query)
                .build(),
            Upstream::Regional => {
                // The region becomes part of a host name; only let a real region id through.
                if !valid_region(region) {
                    return Err(UpstreamError::BadRegion(region.to_owned()));
                }
                Uri::builder()
                    .scheme("https")
                    .authority(format!("bedrock-runtime.{region}.amazonaws.com"))
                    .path_and_query(path_and_query)
                    .build()
            }
        };
        built.map_err(|_| UpstreamError::BadUrl(path_and_query.to_owned()))
    }
}

/// The pooled client of every operation but the bidirectional stream. HTTP/1.1 by default: it
/// costs less CPU per call than HTTP/2 (bench/RESULTS.md), and pooling keeps handshakes rare;
/// `http2` (`--upstream-http2`) makes it the HTTP/2 client [`duplex_client`] is.
pub fn client(connect_timeout: Duration, http2: bool) -> Result<UpstreamClient, rustls::Error> {
    if http2 {
        return duplex_client(connect_timeout);
    }
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config()?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector(connect_timeout));
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(https))
}

/// The HTTP/2 client, for the operations that need it (a bidirectional event stream): h2 by
/// ALPN over TLS, h2 with prior knowledge over plain HTTP (a local simulator). One connection
/// per upstream carries every stream.
pub fn duplex_client<B>(
    connect_timeout: Duration,
) -> Result<Client<HttpsConnector<HttpConnector>, B>, rustls::Error>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config()?)
        .https_or_http()
        .enable_http2()
        .wrap_connector(connector(connect_timeout));
    Ok(Client::builder(TokioExecutor::new())
        .http2_only(true)
        // A silent speech session must not look dead to the connection: pings keep it open
        // through idle periods and find a dead peer.
        .http2_keep_alive_interval(Duration::from_secs(20))
        .http2_keep_alive_while_idle(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(https))
}

fn connector(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http
}

/// Web PKI roots through rustls with an explicit provider: other crates in the tree enable
/// rustls' aws-lc-rs backend too, and with two backends rustls cannot pick a process default
/// on its own.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(
        rustls::ClientConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_uris() {
        let regional = Upstream::parse(None).unwrap();
        assert_eq!(
            regional
                .uri("eu-west-1", "/model/a%3A0/converse")
                .unwrap()
                .to_string(),
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/a%3A0/converse"
        );
        assert!(regional.uri("evil.com/x", "/").is_err());
        assert!(regional.uri("", "/").is_err());
        let fixed = Upstream::parse(Some("http://127.0.0.1:9000")).unwrap();
        assert_eq!(
            fixed
                .uri("ignored", "/model/a/invoke?x=1")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:9000/model/a/invoke?x=1"
        );
        for bad in ["127.0.0.1:9000", "ftp://x", "http://x/path", "nonsense"] {
            assert!(Upstream::parse(Some(bad)).is_err(), "{bad}");
        }
        assert!(Upstream::parse(Some("https://bedrock-runtime.us-east-1.amazonaws.com/")).is_ok());
    }
}
