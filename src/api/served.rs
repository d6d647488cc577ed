//! What every family's answer may say besides its token counts — how Bedrock served the call
//! (service tier, latency-optimized) — and why an answer yielded no usage.

use http::HeaderMap;
use serde::Deserialize;

use crate::pricing::Tier;

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
