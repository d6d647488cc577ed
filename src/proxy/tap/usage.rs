//! Usage readers: where each operation's response carries Bedrock's token counts.
//!
//! Converse: the `usage` object of the JSON body. InvokeModel: the
//! `X-Amzn-Bedrock-*-Token-Count` response headers (the body is the model's own format).

use http::HeaderMap;
use serde::Deserialize;

use crate::pricing::{Tier, Usage};

/// How Bedrock served a call, as its response says: the service tier and whether the
/// latency-optimized variant ran. Both change the price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub tier: Option<Tier>,
    pub latency_optimized: bool,
}

impl Served {
    /// `serviceTier` / `performanceConfig` objects of a Converse body or `metadata` event.
    pub fn from_json(tier: Option<&TierObject>, performance: Option<&PerformanceObject>) -> Served {
        Served {
            tier: tier.and_then(|t| Tier::parse(&t.kind)),
            latency_optimized: performance
                .is_some_and(|p| p.latency.eq_ignore_ascii_case("optimized")),
        }
    }

    /// `X-Amzn-Bedrock-Service-Tier` and `X-Amzn-Bedrock-PerformanceConfig-Latency` (InvokeModel
    /// and its stream).
    pub fn from_headers(headers: &HeaderMap) -> Served {
        let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
        Served {
            tier: get(TIER_HEADER).and_then(Tier::parse),
            latency_optimized: get(LATENCY_HEADER)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("optimized")),
        }
    }
}

pub const TIER_HEADER: &str = "x-amzn-bedrock-service-tier";
pub const LATENCY_HEADER: &str = "x-amzn-bedrock-performanceconfig-latency";

/// `{"type": "flex"}`
#[derive(Deserialize)]
pub struct TierObject {
    #[serde(rename = "type")]
    kind: String,
}

/// `{"latency": "optimized"}`
#[derive(Deserialize)]
pub struct PerformanceObject {
    latency: String,
}

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
#[serde(rename_all = "camelCase")]
struct ConverseBody {
    usage: ConverseUsage,
    service_tier: Option<TierObject>,
    performance_config: Option<PerformanceObject>,
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
    /// Cache writes split by TTL (`5m`, `1h`).
    #[serde(default)]
    cache_details: Vec<CacheDetail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheDetail {
    ttl: String,
    #[serde(default)]
    input_tokens: u64,
}

impl From<ConverseUsage> for Usage {
    fn from(u: ConverseUsage) -> Self {
        let one_hour = u
            .cache_details
            .iter()
            .filter(|d| d.ttl == "1h")
            .fold(0u64, |sum, d| sum.saturating_add(d.input_tokens));
        Usage {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens,
            cache_write: u.cache_write_input_tokens,
            // A 1-hour share larger than the total is a lie from upstream; it cannot exceed it.
            cache_write_1h: one_hour.min(u.cache_write_input_tokens),
        }
    }
}

/// Usage from a Converse response body, and how the call was served.
pub fn converse(body: &[u8]) -> Result<(Usage, Served), Missing> {
    serde_json::from_slice::<ConverseBody>(body)
        .map(|b| {
            let served = Served::from_json(b.service_tier.as_ref(), b.performance_config.as_ref());
            (b.usage.into(), served)
        })
        .map_err(|_| Missing::Unparseable)
}

pub const INPUT_TOKENS_HEADER: &str = "x-amzn-bedrock-input-token-count";
pub const OUTPUT_TOKENS_HEADER: &str = "x-amzn-bedrock-output-token-count";
pub const CACHE_READ_HEADER: &str = "x-amzn-bedrock-cache-read-input-token-count";
pub const CACHE_WRITE_HEADER: &str = "x-amzn-bedrock-cache-write-input-token-count";

/// Usage from InvokeModel's response headers. The input count is required; the output count is
/// absent for embedding models (no output tokens); the cache counts are sent only when caching
/// was used.
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
        // Embedding models (Titan, Cohere Embed, Nova embeddings) produce no output tokens
        // and Bedrock sends no output header for them.
        output: count(OUTPUT_TOKENS_HEADER)?.unwrap_or(0),
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
            Ok((
                Usage {
                    input: 11,
                    output: 7,
                    cache_read: 5,
                    cache_write: 7,
                    cache_write_1h: 0
                },
                Served::default()
            ))
        );
        let plain = br#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}"#;
        assert_eq!(
            converse(plain).map(|(u, _)| u),
            Ok(Usage {
                input: 1,
                output: 2,
                ..Default::default()
            })
        );
        let served = br#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":9,
            "cacheWriteInputTokens":6,
            "cacheDetails":[{"ttl":"5m","inputTokens":2},{"ttl":"1h","inputTokens":4}]},
            "serviceTier":{"type":"flex"},"performanceConfig":{"latency":"optimized"}}"#;
        let (usage, how) = converse(served).unwrap();
        assert_eq!((usage.cache_write, usage.cache_write_1h), (6, 4));
        assert_eq!(
            how,
            Served {
                tier: Some(Tier::Flex),
                latency_optimized: true
            }
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
