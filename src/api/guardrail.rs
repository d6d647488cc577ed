//! The guardrail family: `ApplyGuardrail` (`POST /guardrail/{id}/version/{version}/apply`).
//! Guardrails are billed per policy unit (a text unit is up to 1,000 characters; image content
//! filters count images), at the card's `[guardrails]` prices: the answer's `usage` says how
//! many units of each policy the call used.

use http::Method;
use serde::Deserialize;

use super::{Answer, Asked, Family, Found, Missing, Operation, Route};
use crate::pricing::Usage;
use crate::pricing::billing_units::{Policy, PolicyUnits};

pub struct Guardrail;

impl Family for Guardrail {
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route> {
        match (method, segments) {
            (&Method::POST, ["guardrail", id, "version", version, "apply"])
                if !id.is_empty() && !version.is_empty() =>
            {
                Some(Route {
                    operation: Operation::ApplyGuardrail,
                    model_id: None,
                    family: &Guardrail,
                })
            }
            _ => None,
        }
    }

    fn answer(&self, op: Operation, _asked: &Asked) -> Answer {
        match op {
            Operation::ApplyGuardrail => Answer::JsonBody(read_answer),
            _ => Answer::Unmetered,
        }
    }
}

#[derive(Deserialize)]
struct GuardrailAnswer {
    usage: GuardrailUsage,
}

/// ApplyGuardrail's `usage`: units per policy; the image and automated-reasoning counts are
/// optional.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailUsage {
    topic_policy_units: u64,
    content_policy_units: u64,
    word_policy_units: u64,
    sensitive_information_policy_units: u64,
    sensitive_information_policy_free_units: u64,
    contextual_grounding_policy_units: u64,
    #[serde(default)]
    content_policy_image_units: u64,
    #[serde(default)]
    automated_reasoning_policy_units: u64,
}

impl From<&GuardrailUsage> for PolicyUnits {
    fn from(u: &GuardrailUsage) -> PolicyUnits {
        let mut units = PolicyUnits::default();
        for (policy, n) in [
            (Policy::Topic, u.topic_policy_units),
            (Policy::Content, u.content_policy_units),
            (Policy::Word, u.word_policy_units),
            (
                Policy::SensitiveInformation,
                u.sensitive_information_policy_units,
            ),
            (
                Policy::SensitiveInformationFree,
                u.sensitive_information_policy_free_units,
            ),
            (
                Policy::ContextualGrounding,
                u.contextual_grounding_policy_units,
            ),
            (Policy::ContentImage, u.content_policy_image_units),
            (
                Policy::AutomatedReasoning,
                u.automated_reasoning_policy_units,
            ),
        ] {
            units.set(policy, n);
        }
        units
    }
}

/// The policy units of an ApplyGuardrail answer.
pub fn read_answer(body: &[u8]) -> Result<Found, Missing> {
    let answer: GuardrailAnswer = serde_json::from_slice(body).map_err(|_| Missing::Unparseable)?;
    let mut found = Found::usage(Usage::default());
    found.units.guardrail = PolicyUnits::from(&answer.usage);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_per_policy() {
        let body = br#"{"action":"GUARDRAIL_INTERVENED","outputs":[],"assessments":[],
            "usage":{"topicPolicyUnits":1,"contentPolicyUnits":2,"wordPolicyUnits":3,
                     "sensitiveInformationPolicyUnits":4,"sensitiveInformationPolicyFreeUnits":5,
                     "contextualGroundingPolicyUnits":6,"contentPolicyImageUnits":7}}"#;
        let units = read_answer(body).unwrap().units.guardrail;
        assert_eq!(units.0, [1, 2, 3, 4, 5, 6, 7, 0]);
        assert_eq!(read_answer(br#"{"usage":{}}"#), Err(Missing::Unparseable));
        assert_eq!(read_answer(b"{"), Err(Missing::Unparseable));
    }
}
