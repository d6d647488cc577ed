//! The InvokeModel family: `InvokeModel`, `InvokeModelWithResponseStream` and `CountTokens`
//! (`POST /model/{modelId}/invoke`, `/invoke-with-response-stream`, `/count-tokens`), and
//! `InvokeModelWithBidirectionalStream` (`/invoke-with-bidirectional-stream`, whose events
//! `bidirectional.rs` reads). The bodies are the
//! model's own format; the usage is in Bedrock's `X-Amzn-Bedrock-*-Token-Count` response
//! headers, or in the final stream chunk's `amazon-bedrock-invocationMetrics`.
//!
//! Models AWS bills per unit are told apart by their id, and only their bodies are read: an
//! image model's request gives the quality and size of its images and its JSON answer their
//! count (`images`); a rerank model's request gives the number of documents, which makes its
//! search units.

use std::borrow::Cow;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use http::{HeaderMap, Method};
use memchr::memmem::Finder;
use serde::Deserialize;

use super::{
    Answer, Asked, BadBody, Family, Found, MetadataSlot, Missing, Operation, Route, Served,
    Unreadable, bidirectional, model_path, stop_scan,
};
use crate::pricing::Usage;
use crate::pricing::billing_units::{PerUnit, Quality, Units, per_unit};

pub struct Invoke;

impl Family for Invoke {
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route> {
        if method != Method::POST {
            return None;
        }
        let (label, action) = model_path(segments)?;
        let operation = match action {
            "invoke" => Operation::InvokeModel,
            "invoke-with-response-stream" => Operation::InvokeModelWithResponseStream,
            "count-tokens" => Operation::CountTokens,
            "invoke-with-bidirectional-stream" => Operation::InvokeModelWithBidirectionalStream,
            _ => return None,
        };
        Some(Route {
            operation,
            model_id: Some(label?),
            family: &Invoke,
        })
    }

    fn request(
        &self,
        op: Operation,
        model_id: Option<&str>,
        body: &[u8],
    ) -> Result<Asked, BadBody> {
        if op != Operation::InvokeModel {
            return Ok(Asked::default());
        }
        match model_id.and_then(per_unit) {
            Some(PerUnit::Image) => Ok(image_request(body)),
            Some(PerUnit::InputImage) => Ok(embedding_image_request(body)),
            Some(PerUnit::SearchUnit) => Ok(rerank_request(body)),
            // Video models are not called through InvokeModel.
            Some(PerUnit::VideoSecond) | None => Ok(Asked::default()),
        }
    }

    fn metadata(&self, op: Operation) -> MetadataSlot {
        match op {
            Operation::InvokeModel | Operation::InvokeModelWithResponseStream => {
                MetadataSlot::Header
            }
            _ => MetadataSlot::None,
        }
    }

    fn answer(&self, op: Operation, _asked: &Asked) -> Answer {
        match op {
            Operation::InvokeModel => Answer::Headers(read_headers),
            Operation::InvokeModelWithResponseStream => Answer::EventStream(read_chunk),
            Operation::InvokeModelWithBidirectionalStream => {
                Answer::EventStream(bidirectional::read_event)
            }
            _ => Answer::Unmetered,
        }
    }

    /// `X-Amzn-Bedrock-Service-Tier` and `X-Amzn-Bedrock-PerformanceConfig-Latency`, on the
    /// answer and on the stream's headers alike.
    fn served(&self, op: Operation, headers: &HeaderMap) -> Option<Served> {
        matches!(
            op,
            Operation::InvokeModel | Operation::InvokeModelWithResponseStream
        )
        .then(|| Served::from_headers(headers))
    }
}

pub const INPUT_TOKENS_HEADER: &str = "x-amzn-bedrock-input-token-count";
pub const OUTPUT_TOKENS_HEADER: &str = "x-amzn-bedrock-output-token-count";
pub const CACHE_READ_HEADER: &str = "x-amzn-bedrock-cache-read-input-token-count";
pub const CACHE_WRITE_HEADER: &str = "x-amzn-bedrock-cache-write-input-token-count";

/// Usage from InvokeModel's response headers. The input count is required; the output count is
/// absent for embedding models (no output tokens); the cache counts are sent only when caching
/// was used.
pub fn read_headers(headers: &HeaderMap) -> Result<Usage, Missing> {
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

/// The image settings of a Nova Canvas or Titan Image request; Stability requests have none
/// (their images are priced the same whatever the size).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ImageRequest {
    #[serde(default)]
    image_generation_config: Option<ImageConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ImageConfig {
    quality: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
}

/// Nova Canvas and Titan Image default to 1024×1024 at standard quality.
const DEFAULT_SIDE: u64 = 1024;

/// The quality and size an image request asks for. A body the meter cannot read is Bedrock's
/// to refuse: it goes on, priced at the defaults if Bedrock answers it.
fn image_request(body: &[u8]) -> Asked {
    let request: ImageRequest = serde_json::from_slice(body).unwrap_or_default();
    let config = request.image_generation_config.unwrap_or_default();
    let quality = config
        .quality
        .as_deref()
        .and_then(Quality::parse)
        .unwrap_or_default();
    let pixels = config
        .width
        .unwrap_or(DEFAULT_SIDE)
        .saturating_mul(config.height.unwrap_or(DEFAULT_SIDE));
    Asked {
        units: Units {
            image_quality: quality,
            image_pixels: pixels,
            ..Units::default()
        },
        answer: Some(Answer::JsonBody(read_images)),
        ..Asked::default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbeddingImageRequest {
    input_image: Option<serde::de::IgnoredAny>,
}

/// A Titan Multimodal Embeddings request is billed per input image on top of its input tokens
/// (which the answer's headers carry, as for every embedding model); it takes at most one image.
fn embedding_image_request(body: &[u8]) -> Asked {
    let images = serde_json::from_slice::<EmbeddingImageRequest>(body)
        .map_or(0, |r| u64::from(r.input_image.is_some()));
    Asked {
        units: Units {
            images,
            ..Units::default()
        },
        ..Asked::default()
    }
}

#[derive(Deserialize)]
struct ImageAnswer {
    images: Vec<serde::de::IgnoredAny>,
}

/// The images an image model's answer holds: every one is billed.
pub fn read_images(body: &[u8]) -> Result<Found, Missing> {
    let answer: ImageAnswer = serde_json::from_slice(body).map_err(|_| Missing::Unparseable)?;
    let mut found = Found::usage(Usage::default());
    found.units.images = answer.images.len() as u64;
    Ok(found)
}

/// Documents per search unit: AWS counts a rerank query of up to 100 documents as one.
pub const DOCUMENTS_PER_SEARCH_UNIT: u64 = 100;

#[derive(Deserialize)]
struct RerankRequest {
    documents: Vec<serde::de::IgnoredAny>,
}

/// A rerank request's search units, from its documents; its answer has nothing more to read.
fn rerank_request(body: &[u8]) -> Asked {
    let search_units = serde_json::from_slice::<RerankRequest>(body).map_or(1, |r| {
        (r.documents.len() as u64)
            .div_ceil(DOCUMENTS_PER_SEARCH_UNIT)
            .max(1)
    });
    Asked {
        units: Units {
            search_units,
            ..Units::default()
        },
        answer: Some(Answer::Accepted),
        ..Asked::default()
    }
}

const METRICS_KEY: &[u8] = b"amazon-bedrock-invocationMetrics";

/// Padding is accepted either way: the metrics must not be lost over an encoder's padding choice.
static BASE64: GeneralPurpose = STANDARD_PAD_INDIFFERENT;

/// Usage from an InvokeModelWithResponseStream event: only the final `chunk` carries it. Why the
/// model stopped is in the chunk that says so (Anthropic's `message_delta`, Nova's
/// `messageStop`, the final chunk of the others).
pub fn read_chunk(
    event_type: &str,
    payload: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<Option<Found>, Unreadable> {
    if event_type != "chunk" {
        return Ok(None);
    }
    let usage = final_chunk(payload, scratch)?;
    let stop_reason = stop_scan::last_in(scratch);
    if usage.is_none() && stop_reason.is_none() {
        return Ok(None);
    }
    Ok(Some(Found {
        usage,
        served: None,
        invoked_model: None,
        units: Units::default(),
        stop_reason,
    }))
}

/// Decodes a `chunk` event's payload, `{"bytes": "<base64>"}`, into `scratch`: the JSON the
/// model (or, for a bidirectional stream, the session) sent.
pub(super) fn decode_chunk(payload: &[u8], scratch: &mut Vec<u8>) -> Result<(), Unreadable> {
    let chunk: ChunkPayload<'_> = serde_json::from_slice(payload).map_err(|_| Unreadable)?;
    scratch.clear();
    BASE64
        .decode_vec(chunk.bytes.as_bytes(), scratch)
        .map_err(|_| Unreadable)?;
    Ok(())
}

#[derive(Deserialize)]
struct ChunkPayload<'a> {
    #[serde(borrow)]
    bytes: Cow<'a, str>,
}

#[derive(Deserialize)]
struct FinalChunk {
    #[serde(rename = "amazon-bedrock-invocationMetrics", default)]
    metrics: Option<InvocationMetrics>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvocationMetrics {
    input_token_count: u64,
    output_token_count: u64,
    #[serde(default)]
    cache_read_input_token_count: Option<u64>,
    #[serde(default)]
    cache_write_input_token_count: Option<u64>,
}

/// Usage from an InvokeModel stream `chunk` if it is the final one. Only chunks whose decoded
/// bytes mention the metrics key are parsed as JSON; the key may also turn up in generated text,
/// so a chunk that mentions it without carrying it is not an error.
fn final_chunk(payload: &[u8], scratch: &mut Vec<u8>) -> Result<Option<Usage>, Unreadable> {
    decode_chunk(payload, scratch)?;
    if !mentions_metrics(scratch) {
        return Ok(None);
    }
    let parsed: FinalChunk = serde_json::from_slice(scratch).map_err(|_| Unreadable)?;
    Ok(parsed.metrics.map(|m| Usage {
        input: m.input_token_count,
        output: m.output_token_count,
        cache_read: m.cache_read_input_token_count.unwrap_or(0),
        cache_write: m.cache_write_input_token_count.unwrap_or(0),
        cache_write_1h: 0,
    }))
}

/// Whether a decoded chunk mentions the metrics key. memchr's prebuilt searcher is 4× (100-byte
/// chunks) to 30× (600 bytes and up) faster than comparing every window, measured in a release
/// build; building the searcher per call would cost more than the search on small chunks.
fn mentions_metrics(haystack: &[u8]) -> bool {
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(METRICS_KEY));
    FINDER.find(haystack).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_usage() {
        let mut h = HeaderMap::new();
        assert_eq!(read_headers(&h), Err(Missing::NoHeaders));
        h.insert("X-Amzn-Bedrock-Input-Token-Count", "12".parse().unwrap());
        h.insert("X-Amzn-Bedrock-Output-Token-Count", "34".parse().unwrap());
        assert_eq!(
            read_headers(&h),
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
            read_headers(&h),
            Ok(Usage {
                input: 12,
                output: 34,
                cache_read: 5,
                cache_write: 6,
                cache_write_1h: 0
            })
        );
        h.insert("X-Amzn-Bedrock-Output-Token-Count", "lots".parse().unwrap());
        assert_eq!(read_headers(&h), Err(Missing::NoHeaders));
    }
}
