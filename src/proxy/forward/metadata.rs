//! Request metadata: the meter names the app in each call's Bedrock request metadata, the
//! key-value tags Bedrock's model invocation logs record, so the logs carry the app even when
//! every call is signed with the meter's own identity.
//!
//! Converse and ConverseStream take it as the body's `requestMetadata` member, InvokeModel and
//! InvokeModelWithResponseStream as the `X-Amzn-Bedrock-Request-Metadata` header (a JSON
//! object). The client's own tags are kept; the meter's key always carries the meter's app, so
//! an app cannot pass for another in the logs.
//!
//! Bodies can be 25 MB. A body without `"requestMetadata"` anywhere (the usual case) gets the
//! member spliced in after its opening brace: one substring search and one copy, no parse. Only
//! a body that names it is parsed (without building it: the members are skipped, the
//! `requestMetadata` value borrowed where it stands) and just that value replaced.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::api::{BadBody, raw_member, span_of, splice};

pub const HEADER: HeaderName = HeaderName::from_static("x-amzn-bedrock-request-metadata");

const MEMBER: &str = "requestMetadata";

/// A metadata key the meter may use (`--request-metadata-key`): what Bedrock accepts in a key,
/// without the characters that would need escaping in JSON, so the member is written as is.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'_' | b'-' | b'.' | b':' | b'@' | b'/' | b'=' | b'+')
        })
}

/// The top-level member the meter replaces; everything else is skipped unread.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(
        rename = "requestMetadata",
        borrow,
        default,
        deserialize_with = "raw_member"
    )]
    request_metadata: Option<&'a RawValue>,
}

/// The Converse body to forward with `key` = `app` in its `requestMetadata`, or `None` when it
/// stays as the client sent it (it already says exactly that, or it is not a JSON object,
/// which Bedrock refuses itself). `key` and `app` are plain (see [`valid_key`] and
/// `names::valid_app`).
pub fn body(body: &[u8], key: &str, app: &str) -> Result<Option<Bytes>, BadBody> {
    let named = memchr::memmem::find(body, br#""requestMetadata""#).is_some();
    let existing = if named {
        let head: Head<'_> = serde_json::from_slice(body)
            .map_err(|e| BadBody(format!("The request body is not a valid request: {e}")))?;
        head.request_metadata
    } else {
        None
    };
    let Some(raw) = existing else {
        return Ok(insert(body, key, app));
    };
    let mut tags = match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => Map::new(),
        _ => return Err(BadBody(format!("{MEMBER} must be an object of strings"))),
    };
    if tags.get(key).and_then(Value::as_str) == Some(app) {
        return Ok(None);
    }
    tags.insert(key.to_owned(), Value::String(app.to_owned()));
    let Some(span) = span_of(body, raw.get()) else {
        return Ok(None);
    };
    Ok(Some(splice(
        body,
        span,
        Value::Object(tags).to_string().as_bytes(),
    )))
}

/// `{"requestMetadata":{key:app},` spliced after the body's opening brace (no comma before an
/// empty object's closing one).
fn insert(body: &[u8], key: &str, app: &str) -> Option<Bytes> {
    let open = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[open] != b'{' {
        return None;
    }
    let empty = body[open + 1..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'}');
    let member = format!(
        r#""{MEMBER}":{{"{key}":"{app}"}}{}"#,
        if empty { "" } else { "," }
    );
    Some(splice(body, open + 1..open + 1, member.as_bytes()))
}

/// The `X-Amzn-Bedrock-Request-Metadata` value to forward: the client's object (if it sent
/// one) with `key` = `app`.
pub fn header(client: Option<&HeaderValue>, key: &str, app: &str) -> Result<HeaderValue, BadBody> {
    let bad = |why: String| {
        BadBody(format!(
            "X-Amzn-Bedrock-Request-Metadata must be a JSON object of strings: {why}"
        ))
    };
    let mut tags = match client {
        None => Map::new(),
        Some(value) => match serde_json::from_slice::<Value>(value.as_bytes()) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(bad("it is not an object".to_owned())),
            Err(e) => return Err(bad(e.to_string())),
        },
    };
    tags.insert(key.to_owned(), Value::String(app.to_owned()));
    HeaderValue::from_str(&Value::Object(tags).to_string()).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Option<Bytes>) -> String {
        String::from_utf8(b.expect("rewritten").to_vec()).expect("utf-8")
    }

    #[test]
    fn a_body_without_metadata_gets_the_member_after_its_brace() {
        let out = body(br#"{"messages":[]}"#, "app", "checkout").expect("ok");
        assert_eq!(
            text(out),
            r#"{"requestMetadata":{"app":"checkout"},"messages":[]}"#
        );
        let out = body(b"  {  }  ", "app", "a").expect("ok");
        assert_eq!(text(out), r#"  {"requestMetadata":{"app":"a"}  }  "#);
        // Not an object: left for Bedrock to refuse.
        assert_eq!(body(b"[1]", "app", "a").expect("ok"), None);
        assert_eq!(body(b"", "app", "a").expect("ok"), None);
    }

    #[test]
    fn the_clients_tags_are_kept_and_the_app_key_is_the_meters() {
        let sent = br#"{"messages":[], "requestMetadata" : {"team":"pay","app":"spoof"}, "x":1}"#;
        let out = text(body(sent, "app", "checkout").expect("ok"));
        assert_eq!(
            out,
            r#"{"messages":[], "requestMetadata" : {"app":"checkout","team":"pay"}, "x":1}"#
        );
        let null = br#"{"requestMetadata":null}"#;
        assert_eq!(
            text(body(null, "app", "a").expect("ok")),
            r#"{"requestMetadata":{"app":"a"}}"#
        );
        // Already right: forwarded as sent.
        let right = br#"{"requestMetadata":{"app":"a"}}"#;
        assert_eq!(body(right, "app", "a").expect("ok"), None);
    }

    #[test]
    fn the_name_inside_a_message_is_not_the_member() {
        // The words appear in a tool's input: the top level has no member, so one is added.
        let sent = br#"{"toolConfig":{"requestMetadata":{"app":"x"}},"messages":[]}"#;
        let out = text(body(sent, "app", "a").expect("ok"));
        assert!(
            out.starts_with(r#"{"requestMetadata":{"app":"a"},"toolConfig""#),
            "{out}"
        );
    }

    #[test]
    fn a_member_that_cannot_be_read_is_refused() {
        for sent in [
            &br#"{"requestMetadata":"x"}"#[..],
            br#"{"requestMetadata":{"app":"a"},"requestMetadata":{"app":"b"}}"#,
            br#"{"requestMetadata":{"#,
        ] {
            assert!(
                body(sent, "app", "a").is_err(),
                "{}",
                String::from_utf8_lossy(sent)
            );
        }
    }

    #[test]
    fn the_header_is_merged() {
        assert_eq!(header(None, "app", "a").expect("ok"), r#"{"app":"a"}"#);
        let client = HeaderValue::from_static(r#"{"team": "pay", "app": "spoof"}"#);
        assert_eq!(
            header(Some(&client), "app", "a").expect("ok"),
            r#"{"app":"a","team":"pay"}"#
        );
        let bad = HeaderValue::from_static("team=pay");
        let err = header(Some(&bad), "app", "a").expect_err("refused");
        assert!(
            err.0.starts_with("X-Amzn-Bedrock-Request-Metadata must be"),
            "{}",
            err.0
        );
    }

    #[test]
    fn keys() {
        assert!(valid_key("app"));
        assert!(valid_key("bedrock-meter:app"));
        assert!(!valid_key(""));
        assert!(!valid_key("a\"b"));
        assert!(!valid_key(&"k".repeat(257)));
    }
}
