//! Usage readers: where each operation's response carries Bedrock's token counts.
//!
//! Converse: the `usage` object of the JSON body. InvokeModel: the
//! `X-Amzn-Bedrock-*-Token-Count` response headers (the body is the model's own format).

use http::HeaderMap;
use serde::Deserialize;

use crate::pricing::Usage;

/// Why a successful response yielded no usage (the `reason` label of
/// `bedrock_usage_missing_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The body was not the JSON we expected, or had no `usage`.
    Unparseable,
    /// The body was larger than the meter keeps a copy of.
    TooLarge,
    /// The token-count headers were absent or not numbers.
    NoHeaders,
    /// The upstream body failed before its end.
    UpstreamError,
    /// The client went away before the end.
    ClientGone,
    /// An event stream's bytes could not be decoded (bad frame, CRC mismatch, bad payload).
    Undecodable,
    /// An event stream ended with a modeled exception frame before its usage.
    StreamException,
    /// An event stream ended cleanly without a usage-carrying event.
    NoUsage,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Unparseable => "unparseable",
            Missing::TooLarge => "too_large",
            Missing::NoHeaders => "no_headers",
            Missing::UpstreamError => "upstream_error",
            Missing::ClientGone => "client_gone",
            Missing::Undecodable => "undecodable",
            Missing::StreamException => "stream_exception",
            Missing::NoUsage => "no_usage",
        }
    }
}

#[derive(Deserialize)]
struct ConverseBody {
    usage: ConverseUsage,
}

/// The `usage` object shared by Converse and the ConverseStream `metadata` event.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl From<ConverseUsage> for Usage {
    fn from(u: ConverseUsage) -> Self {
        Usage {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens,
            cache_write: u.cache_write_input_tokens,
            cache_write_1h: 0,
        }
    }
}

/// Usage from a Converse response body.
pub fn converse(body: &[u8]) -> Result<Usage, Missing> {
    serde_json::from_slice::<ConverseBody>(body)
        .map(|b| b.usage.into())
        .map_err(|_| Missing::Unparseable)
}

pub const INPUT_TOKENS_HEADER: &str = "x-amzn-bedrock-input-token-count";
pub const OUTPUT_TOKENS_HEADER: &str = "x-amzn-bedrock-output-token-count";
pub const CACHE_READ_HEADER: &str = "x-amzn-bedrock-cache-read-input-token-count";
pub const CACHE_WRITE_HEADER: &str = "x-amzn-bedrock-cache-write-input-token-count";

/// Usage from InvokeModel's response headers. Input and output counts are required; the cache
/// counts are sent only when caching was used.
pub fn invoke_headers(headers: &HeaderMap) -> Result<Usage, Missing> {
    let count = |name: &str| -> Result<Option<u64>, Missing> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map(Some)
                .ok_or(Missing::NoHeaders),
        }
    };
    Ok(Usage {
        input: count(INPUT_TOKENS_HEADER)?.ok_or(Missing::NoHeaders)?,
        output: count(OUTPUT_TOKENS_HEADER)?.ok_or(Missing::NoHeaders)?,
        cache_read: count(CACHE_READ_HEADER)?.unwrap_or(0),
        cache_write: count(CACHE_WRITE_HEADER)?.unwrap_or(0),
        cache_write_1h: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converse_usage() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},
            "stopReason":"end_turn","metrics":{"latencyMs":12},
            "usage":{"inputTokens":11,"outputTokens":7,"totalTokens":30,
                     "cacheReadInputTokens":5,"cacheWriteInputTokens":7,
                     "cacheDetails":[{"ttl":"5m","inputTokens":7}]}}"#;
        assert_eq!(
            converse(body),
            Ok(Usage {
                input: 11,
                output: 7,
                cache_read: 5,
                cache_write: 7,
                cache_write_1h: 0
            })
        );
        let plain = br#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}"#;
        assert_eq!(
            converse(plain),
            Ok(Usage {
                input: 1,
                output: 2,
                ..Default::default()
            })
        );
        for bad in [
            &b""[..],
            b"{",
            b"{}",
            b"[]",
            br#"{"usage":{"inputTokens":-1,"outputTokens":2}}"#,
            br#"{"usage":{"inputTokens":"1","outputTokens":2}}"#,
        ] {
            assert_eq!(converse(bad), Err(Missing::Unparseable));
        }
    }

    #[test]
    fn invoke_usage() {
        let mut h = HeaderMap::new();
        assert_eq!(invoke_headers(&h), Err(Missing::NoHeaders));
        h.insert("X-Amzn-Bedrock-Input-Token-Count", "12".parse().unwrap());
        h.insert("X-Amzn-Bedrock-Output-Token-Count", "34".parse().unwrap());
        assert_eq!(
            invoke_headers(&h),
            Ok(Usage {
                input: 12,
                output: 34,
                ..Default::default()
            })
        );
        h.insert(
            "X-Amzn-Bedrock-Cache-Read-Input-Token-Count",
            "5".parse().unwrap(),
        );
        h.insert(
            "X-Amzn-Bedrock-Cache-Write-Input-Token-Count",
            "6".parse().unwrap(),
        );
        assert_eq!(
            invoke_headers(&h),
            Ok(Usage {
                input: 12,
                output: 34,
                cache_read: 5,
                cache_write: 6,
                cache_write_1h: 0
            })
        );
        h.insert("X-Amzn-Bedrock-Output-Token-Count", "lots".parse().unwrap());
        assert_eq!(invoke_headers(&h), Err(Missing::NoHeaders));
    }
}
