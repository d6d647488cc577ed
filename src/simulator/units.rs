//! Answers billed per unit rather than per token: image models and rerank models through
//! InvokeModel, Nova Reel jobs through StartAsyncInvoke, and ApplyGuardrail's policy units. Each
//! records what it answered with as ground truth (`SimStats::units`), computed here from the
//! request on its own, not with the meter's parsers.

use serde::Deserialize;
use serde_json::{Value, json};

use super::body::SimBody;
use super::call::Call;
use super::converse::json_response;
use crate::pricing::billing_units::Policy;
use crate::pricing::model_id::{Arn, split_profile};

/// What a model id bills in, by the families AWS bills per unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerUnit {
    NovaOrTitanImage,
    /// Titan Multimodal Embeddings: tokens like any embedding model, plus its input image.
    EmbeddingImage,
    StabilityImage,
    Rerank,
}

pub fn per_unit(model_id: &str) -> Option<PerUnit> {
    let id = Arn::parse(model_id).map_or(model_id, |a| a.resource_id);
    let base = split_profile(id).1;
    if base.starts_with("amazon.titan-embed-image") {
        Some(PerUnit::EmbeddingImage)
    } else if base.starts_with("amazon.nova-canvas")
        || base.starts_with("amazon.titan-image-generator")
    {
        Some(PerUnit::NovaOrTitanImage)
    } else if base.starts_with("stability.") {
        Some(PerUnit::StabilityImage)
    } else if base.starts_with("cohere.rerank") || base.starts_with("amazon.rerank") {
        Some(PerUnit::Rerank)
    } else {
        None
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbeddingRequest {
    input_image: Option<serde::de::IgnoredAny>,
}

/// Counts the input image of a multimodal embedding request, billed per image.
pub fn input_image(call: &Call, body: &[u8]) {
    if serde_json::from_slice::<EmbeddingRequest>(body).is_ok_and(|r| r.input_image.is_some()) {
        call.recorder.units_sent(&call.model, "image", 1);
    }
}

/// A tiny, fixed PNG-shaped payload per image: the count is what matters.
const IMAGE_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ImageRequest {
    #[serde(default)]
    image_generation_config: Option<ImageConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ImageConfig {
    number_of_images: Option<u64>,
}

/// An image model's answer: `images=N`, else the request's `numberOfImages`, else one image;
/// no token headers.
pub fn image(call: &Call, kind: PerUnit, body: &[u8]) -> SimBody {
    let asked = serde_json::from_slice::<ImageRequest>(body)
        .unwrap_or_default()
        .image_generation_config
        .and_then(|c| c.number_of_images);
    let n = call.directive.images.or(asked).unwrap_or(1).min(100);
    let images: Vec<Value> = (0..n).map(|_| Value::from(IMAGE_BASE64)).collect();
    let answer = match kind {
        PerUnit::StabilityImage => json!({
            "seeds": (0..n).map(|i| 1000 + i).collect::<Vec<_>>(),
            "finish_reasons": (0..n).map(|_| Value::Null).collect::<Vec<_>>(),
            "images": images,
        }),
        _ => json!({"images": images, "error": null}),
    };
    call.recorder.units_sent(&call.model, "image", n);
    SimBody::bytes(answer.to_string())
}

#[derive(Deserialize)]
struct RerankRequest {
    documents: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    top_n: Option<u64>,
}

/// A rerank model's answer: one result per document (or `top_n`), scores descending; one
/// search unit per 100 documents.
pub fn rerank(call: &Call, body: &[u8]) -> Result<SimBody, String> {
    let r: RerankRequest =
        serde_json::from_slice(body).map_err(|e| format!("Malformed rerank request: {e}"))?;
    let documents = r.documents.len() as u64;
    let shown = r.top_n.unwrap_or(documents).min(documents);
    let results: Vec<Value> = (0..shown)
        .map(|i| json!({"index": i, "relevance_score": 0.99 - (i as f64) * 0.01}))
        .collect();
    call.recorder
        .units_sent(&call.model, "search_unit", documents.div_ceil(100).max(1));
    Ok(SimBody::bytes(json!({"results": results}).to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Job {
    model_id: Option<String>,
    #[serde(default)]
    model_input: Value,
}

/// StartAsyncInvoke: the job is accepted (and billed) at once; Nova Reel's seconds are its
/// `durationSeconds`, else six per manual shot.
pub fn start_async(call: &Call, body: &[u8]) -> Result<SimBody, String> {
    let job: Job = serde_json::from_slice(body).map_err(|e| format!("Malformed request: {e}"))?;
    let model = job
        .model_id
        .filter(|m| !m.is_empty())
        .ok_or("modelId is required")?;
    let input = &job.model_input;
    let seconds = input["videoGenerationConfig"]["durationSeconds"]
        .as_u64()
        .or_else(|| {
            input["multiShotManualParams"]["shots"]
                .as_array()
                .map(|s| s.len() as u64 * 6)
        })
        .unwrap_or(0);
    call.recorder.units_sent(&model, "video_second", seconds);
    let id = format!(
        "{:012x}",
        call.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16
    );
    Ok(SimBody::bytes(
        json!({"invocationArn": format!("arn:aws:bedrock:us-east-1:123456789012:async-invoke/{id}")})
            .to_string(),
    ))
}

/// ApplyGuardrail's answer with the directive's units per policy; without them, content and
/// topic units as for a text of the body's length (one per 1,000 characters).
pub fn apply_guardrail(call: &Call, guardrail_id: &str, body_len: usize) -> SimBody {
    let text_units = (body_len as u64).div_ceil(1000).max(1);
    let given = call.directive.guardrail.iter().any(Option::is_some);
    let units = |p: Policy| -> u64 {
        let i = Policy::ALL.iter().position(|q| *q == p).unwrap_or_default();
        match call.directive.guardrail[i] {
            Some(n) => n,
            None if !given && matches!(p, Policy::Content | Policy::Topic) => text_units,
            None => 0,
        }
    };
    let mut usage = serde_json::Map::new();
    for (field, p) in [
        ("topicPolicyUnits", Policy::Topic),
        ("contentPolicyUnits", Policy::Content),
        ("wordPolicyUnits", Policy::Word),
        (
            "sensitiveInformationPolicyUnits",
            Policy::SensitiveInformation,
        ),
        (
            "sensitiveInformationPolicyFreeUnits",
            Policy::SensitiveInformationFree,
        ),
        (
            "contextualGroundingPolicyUnits",
            Policy::ContextualGrounding,
        ),
        ("contentPolicyImageUnits", Policy::ContentImage),
        ("automatedReasoningPolicyUnits", Policy::AutomatedReasoning),
    ] {
        let n = units(p);
        let optional = matches!(p, Policy::ContentImage | Policy::AutomatedReasoning);
        if n > 0 || !optional {
            usage.insert(field.into(), n.into());
        }
        call.recorder.units_sent(guardrail_id, p.key(), n);
    }
    SimBody::bytes(
        json!({"action": "NONE", "outputs": [], "assessments": [], "usage": usage}).to_string(),
    )
}

/// A JSON answer with the body given.
pub fn json(body: SimBody) -> http::Response<SimBody> {
    let mut r = json_response(&Value::Null);
    *r.body_mut() = body;
    r
}
