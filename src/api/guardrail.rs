//! The guardrail family: `ApplyGuardrail` (`POST /guardrail/{id}/version/{version}/apply`).
//! Guardrails are billed per text unit of content checked, not per token; the meter counts the
//! calls and does not price them yet.

use http::Method;

use super::{Answer, Asked, Family, Operation, Route};

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

    fn answer(&self, _op: Operation, _asked: &Asked) -> Answer {
        Answer::Unmetered
    }
}
