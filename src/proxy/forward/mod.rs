//! Forward: turns the client's request into the upstream request — hop-by-hop and client auth
//! headers dropped, the body's length fixed, and the whole signed with the proxy's credentials.

pub mod metadata;
pub mod upstream;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, header, request::Parts};
use http_body_util::Full;

use crate::aws::sigv4::{self, PayloadHash, SigV4Error};
use crate::names::APP_HEADER;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // The usual message has none: one pass over its names instead of a removal per name.
    if !headers
        .keys()
        .any(|name| HOP_BY_HOP.contains(name) || name == header::TRANSFER_ENCODING)
    {
        return;
    }
    let named: Vec<HeaderName> = connection_named(headers).collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// The headers a `Connection` header names as hop-by-hop.
fn connection_named(headers: &HeaderMap) -> impl Iterator<Item = HeaderName> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
}

/// Whether a client header stays off the upstream request: hop-by-hop, the client's own
/// authentication (SigV4 or a Bedrock API key, never forwarded), the meter's app header, and
/// what the proxy sets itself (`host`, the body's length).
fn dropped_upstream(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
        || [
            header::TRANSFER_ENCODING,
            header::HOST,
            header::EXPECT,
            header::CONTENT_LENGTH,
            header::AUTHORIZATION,
        ]
        .contains(name)
        || matches!(
            name.as_str(),
            APP_HEADER
                | sigv4::X_AMZ_DATE
                | sigv4::X_AMZ_SECURITY_TOKEN
                | sigv4::X_AMZ_CONTENT_SHA256
        )
}

/// Builds the signed upstream request from the client's request head and buffered body.
pub fn upstream_request(
    client: &Parts,
    uri: Uri,
    body: Bytes,
    payload: &PayloadHash,
    credentials: &Credentials,
    region: &str,
    metadata: Option<HeaderValue>,
) -> Result<Request<Full<Bytes>>, SigV4Error> {
    let parts = upstream_head(
        client,
        uri,
        Some(body.len()),
        payload,
        credentials,
        region,
        metadata,
    )?;
    Ok(Request::from_parts(parts, Full::new(body)))
}

/// The signed upstream request head: the client's headers without hop-by-hop, auth and the
/// meter's own, the body's length when it is known (`None`: a stream), signed over `payload`.
pub fn upstream_head(
    client: &Parts,
    uri: Uri,
    length: Option<usize>,
    payload: &PayloadHash,
    credentials: &Credentials,
    region: &str,
    metadata: Option<HeaderValue>,
) -> Result<Parts, SigV4Error> {
    // Built from the headers kept rather than cloned whole and pruned.
    let mut headers = HeaderMap::with_capacity(client.headers.len() + 4);
    let named: Vec<HeaderName> = if client.headers.contains_key(header::CONNECTION) {
        connection_named(&client.headers).collect()
    } else {
        Vec::new()
    };
    for (name, value) in &client.headers {
        if !dropped_upstream(name) && !named.contains(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Some(value) = metadata {
        headers.insert(metadata::HEADER, value);
    }

    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = client.method.clone();
    parts.uri = uri;
    parts.headers = headers;
    sigv4::sign_hashed(&mut parts, payload, credentials, region, SystemTime::now())?;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_cleaned_and_signed() {
        let (client, ()) = Request::builder()
            .method("POST")
            .uri("/model/m%3A0/converse")
            .header("host", "meter:8080")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=CLIENT/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00")
            .header("x-amz-date", "20260101T000000Z")
            .header("x-amz-security-token", "client-token")
            .header("connection", "keep-alive, x-custom-hop")
            .header("x-custom-hop", "1")
            .header("transfer-encoding", "chunked")
            .header("x-bedrock-meter-app", "checkout")
            .header("content-type", "application/json")
            .header("user-agent", "aws-sdk-rust app/checkout")
            .body(())
            .unwrap()
            .into_parts();
        let creds = Credentials::new("PROXYKEY", "proxy-secret", None, None, "test");
        let uri: Uri = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A0/converse"
            .parse()
            .unwrap();
        let req = upstream_request(
            &client,
            uri,
            Bytes::from_static(b"{}"),
            &PayloadHash::of(b"{}"),
            &creds,
            "us-east-1",
            None,
        )
        .unwrap();
        let h = req.headers();
        assert_eq!(h["host"], "bedrock-runtime.us-east-1.amazonaws.com");
        assert_eq!(h["content-length"], "2");
        assert!(
            h["authorization"]
                .to_str()
                .unwrap()
                .contains("Credential=PROXYKEY/")
        );
        for gone in [
            "x-amz-security-token",
            "connection",
            "x-custom-hop",
            "transfer-encoding",
            APP_HEADER,
        ] {
            assert!(!h.contains_key(gone), "{gone}");
        }
        assert_eq!(h["user-agent"], "aws-sdk-rust app/checkout");
        assert_eq!(req.uri().path(), "/model/m%3A0/converse");
        let (parts, _) = req.into_parts();
        assert_eq!(
            sigv4::verify(
                &parts,
                b"{}",
                &creds,
                SystemTime::now(),
                std::time::Duration::from_secs(60)
            ),
            Ok(())
        );
    }
}
