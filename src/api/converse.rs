//! The Converse family: `Converse` and `ConverseStream` (`POST /model/{modelId}/converse`,
//! `/converse-stream`). One request and answer shape for every model; the usage is the `usage`
//! object of the answer's JSON body, or of the stream's `metadata` event. A call to a prompt
//! router names the model the router chose in `trace.promptRouter.invokedModelId` there.

use http::Method;
use serde::Deserialize;

use super::{
    Answer, Asked, Family, Found, MetadataSlot, Missing, Operation, PerformanceObject, Route,
    Served, StopReason, TierObject, Unreadable, model_path,
};
use std::collections::HashMap;

use super::guardrail::GuardrailUsage;
use crate::pricing::Usage;
use crate::pricing::billing_units::{PolicyUnits, Units};

pub struct Converse;

impl Family for Converse {
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route> {
        if method != Method::POST {
            return None;
        }
        let (label, action) = model_path(segments)?;
        let operation = match action {
            "converse" => Operation::Converse,
            "converse-stream" => Operation::ConverseStream,
            _ => return None,
        };
        Some(Route {
            operation,
            model_id: Some(label?),
            family: &Converse,
        })
    }

    fn metadata(&self, _op: Operation) -> MetadataSlot {
        MetadataSlot::Body
    }

    fn answer(&self, op: Operation, _asked: &Asked) -> Answer {
        match op {
            Operation::Converse => Answer::JsonBody(read_answer),
            Operation::ConverseStream => Answer::EventStream(read_event),
            _ => Answer::Unmetered,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseBody {
    usage: ConverseUsage,
    stop_reason: Option<String>,
    service_tier: Option<TierObject>,
    performance_config: Option<PerformanceObject>,
    trace: Option<Trace>,
}

/// The parts of a Converse `trace` the meter reads: which model a prompt router chose, and
/// the guardrail's assessments with the policy units they used.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Trace {
    prompt_router: Option<RouterTrace>,
    guardrail: Option<GuardrailTrace>,
}

/// `trace.guardrail`: the input assessment and the output assessments, each by guardrail id.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuardrailTrace {
    #[serde(default)]
    input_assessment: HashMap<String, Assessment>,
    #[serde(default)]
    output_assessments: HashMap<String, Vec<Assessment>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assessment {
    invocation_metrics: Option<AssessmentMetrics>,
}

#[derive(Deserialize)]
struct AssessmentMetrics {
    usage: Option<GuardrailUsage>,
}

/// The guardrail policy units every assessment in a trace used, added up.
fn guardrail_units(trace: Option<&Trace>) -> PolicyUnits {
    let Some(g) = trace.and_then(|t| t.guardrail.as_ref()) else {
        return PolicyUnits::default();
    };
    g.input_assessment
        .values()
        .chain(g.output_assessments.values().flatten())
        .filter_map(|a| a.invocation_metrics.as_ref()?.usage.as_ref())
        .fold(PolicyUnits::default(), |sum, u| {
            sum.plus(PolicyUnits::from(u))
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouterTrace {
    invoked_model_id: Option<String>,
}

fn invoked(trace: Option<Trace>) -> Option<String> {
    trace?
        .prompt_router?
        .invoked_model_id
        .filter(|id| !id.is_empty() && id.len() <= super::MAX_MODEL_ID_LEN)
}

/// What a trace says besides tokens: the model a router chose, and guardrail units.
fn traced(trace: Option<Trace>) -> (Option<String>, Units) {
    let units = Units {
        guardrail: guardrail_units(trace.as_ref()),
        ..Units::default()
    };
    (invoked(trace), units)
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

/// Usage from a Converse response body, how the call was served, and the model a prompt router
/// chose.
pub fn read_answer(body: &[u8]) -> Result<Found, Missing> {
    serde_json::from_slice::<ConverseBody>(body)
        .map(|b| {
            let served = Served::from_json(b.service_tier.as_ref(), b.performance_config.as_ref());
            let (invoked_model, units) = traced(b.trace);
            Found {
                usage: Some(b.usage.into()),
                served: Some(served),
                invoked_model,
                units,
                stop_reason: b.stop_reason.as_deref().map(StopReason::parse),
            }
        })
        .map_err(|_| Missing::Unparseable)
}

/// Usage from a Converse response body, and how the call was served.
pub fn read_body(body: &[u8]) -> Result<(Usage, Served), Missing> {
    read_answer(body).map(|f| (f.usage.unwrap_or_default(), f.served.unwrap_or_default()))
}

/// The ConverseStream `metadata` event.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    usage: ConverseUsage,
    service_tier: Option<TierObject>,
    performance_config: Option<PerformanceObject>,
    trace: Option<Trace>,
}

/// The ConverseStream `messageStop` event.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    stop_reason: String,
}

/// Usage from a ConverseStream event: only `metadata` carries it, with how the call was served;
/// `messageStop` says why the model stopped.
pub fn read_event(
    event_type: &str,
    payload: &[u8],
    _scratch: &mut Vec<u8>,
) -> Result<Option<Found>, Unreadable> {
    if event_type == "messageStop" {
        // Only a fact for the ledger: one that does not parse costs nothing but itself.
        return Ok(serde_json::from_slice::<MessageStop>(payload)
            .ok()
            .map(|m| Found {
                usage: None,
                served: None,
                invoked_model: None,
                units: Units::default(),
                stop_reason: Some(StopReason::parse(&m.stop_reason)),
            }));
    }
    if event_type != "metadata" {
        return Ok(None);
    }
    serde_json::from_slice::<Metadata>(payload)
        .map(|m| {
            let (invoked_model, units) = traced(m.trace);
            Some(Found {
                usage: Some(m.usage.into()),
                stop_reason: None,
                served: Some(Served::from_json(
                    m.service_tier.as_ref(),
                    m.performance_config.as_ref(),
                )),
                invoked_model,
                units,
            })
        })
        .map_err(|_| Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::Tier;

    #[test]
    fn message_stop_says_why_without_usage() {
        let mut scratch = Vec::new();
        let stop = read_event(
            "messageStop",
            br#"{"stopReason":"max_tokens"}"#,
            &mut scratch,
        );
        let found = stop.unwrap().unwrap();
        assert_eq!(found.usage, None);
        assert_eq!(found.stop_reason, Some(StopReason::MaxTokens));
        // A stop event that does not parse is not a broken stream.
        assert_eq!(read_event("messageStop", b"{", &mut scratch), Ok(None));
        assert_eq!(
            read_event("contentBlockDelta", b"{}", &mut scratch),
            Ok(None)
        );
    }

    #[test]
    fn converse_usage() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},
            "stopReason":"end_turn","metrics":{"latencyMs":12},
            "usage":{"inputTokens":11,"outputTokens":7,"totalTokens":30,
                     "cacheReadInputTokens":5,"cacheWriteInputTokens":7,
                     "cacheDetails":[{"ttl":"5m","inputTokens":7}]}}"#;
        assert_eq!(
            read_body(body),
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
            read_body(plain).map(|(u, _)| u),
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
        let (usage, how) = read_body(served).unwrap();
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
            assert_eq!(read_body(bad), Err(Missing::Unparseable));
        }
    }

    #[test]
    fn guardrail_trace_units_add_up() {
        let body = br#"{"usage":{"inputTokens":5,"outputTokens":6,"totalTokens":11},
            "stopReason":"guardrail_intervened",
            "trace":{"guardrail":{
              "inputAssessment":{"gr1":{"invocationMetrics":{"guardrailProcessingLatency":10,
                 "usage":{"topicPolicyUnits":1,"contentPolicyUnits":2,"wordPolicyUnits":0,
                   "sensitiveInformationPolicyUnits":1,"sensitiveInformationPolicyFreeUnits":0,
                   "contextualGroundingPolicyUnits":0}}}},
              "outputAssessments":{"gr1":[{"invocationMetrics":{"usage":{"topicPolicyUnits":1,
                   "contentPolicyUnits":3,"wordPolicyUnits":0,"sensitiveInformationPolicyUnits":0,
                   "sensitiveInformationPolicyFreeUnits":0,"contextualGroundingPolicyUnits":2}}},
                 {"topicPolicy":{"topics":[]}}]}}}}"#;
        let found = read_answer(body).unwrap();
        assert_eq!(found.units.guardrail.0, [2, 5, 0, 1, 0, 2, 0, 0]);
        assert_eq!(found.usage.map(|u| u.input), Some(5));
        assert_eq!(found.stop_reason, Some(StopReason::GuardrailIntervened));
        // No trace, no units.
        let plain = br#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}"#;
        assert!(read_answer(plain).unwrap().units.is_empty());
    }
}
