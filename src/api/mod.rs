//! API families: what the meter knows about each family of Bedrock Runtime operations.
//!
//! A family is one module that says which request paths are its own (and the model id in them),
//! and how a successful answer carries its token usage: in the response headers, in a JSON body
//! read whole, or in the events of an event stream — and how to read it there. The request
//! path ([`crate::proxy`]), the tap and the meter ask the family and know no operation by name,
//! so adding a family is adding a module here, its operations to [`Operation`] and its line in
//! [`FAMILIES`], and its units to the rate card.

pub mod async_invoke;
pub mod converse;
pub mod guardrail;
pub mod invoke;
mod served;

use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use crate::pricing::Usage;
pub use served::{Missing, PerformanceObject, Served, TierObject};

/// Every family, asked in this order which one a request path belongs to.
pub static FAMILIES: [&dyn Family; 4] = [
    &converse::Converse,
    &invoke::Invoke,
    &guardrail::Guardrail,
    &async_invoke::AsyncInvoke,
];

/// One family of Bedrock Runtime operations.
pub trait Family: Sync {
    /// The operation a request is, if its method and path (split at `/`, without the leading
    /// one, still percent-encoded) are this family's.
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route>;

    /// Where a successful answer to `op` carries its usage.
    fn answer(&self, op: Operation) -> Answer;

    /// How Bedrock says it served the call, when its response headers say so (tier, latency).
    fn served(&self, _op: Operation, _headers: &HeaderMap) -> Option<Served> {
        None
    }
}

/// Where an answer's usage is, and the reader for it there.
#[derive(Clone, Copy)]
pub enum Answer {
    /// No token usage: the operation is not billed per token (or not billed).
    Unmetered,
    /// In the response headers; the body passes untouched.
    Headers(fn(&HeaderMap) -> Result<Usage, Missing>),
    /// In a JSON body, which arrives whole once the model has finished: read whole (bounded)
    /// so its cost is known before the response headers go out.
    JsonBody(BodyReader),
    /// In events of an `application/vnd.amazon.eventstream` body, decoded on the side as the
    /// frames pass.
    EventStream(EventReader),
}

/// Reads a whole JSON answer: its usage and how the call was served.
pub type BodyReader = fn(&[u8]) -> Result<(Usage, Served), Missing>;

/// Reads one event of a stream: its `:event-type`, its payload, and a scratch buffer to reuse.
/// `Ok(None)`: this event carries no usage; `Err`: it should have and did not parse.
pub type EventReader = fn(&str, &[u8], &mut Vec<u8>) -> Result<Option<Found>, Unreadable>;

/// Usage found in an event, with how the call was served when the event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub usage: Usage,
    pub served: Option<Served>,
}

/// An event that should carry usage did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable;

/// The Bedrock Runtime operations the meter tells apart (the `operation` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Converse,
    ConverseStream,
    InvokeModel,
    InvokeModelWithResponseStream,
    CountTokens,
    ApplyGuardrail,
    Other,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::Converse,
        Operation::ConverseStream,
        Operation::InvokeModel,
        Operation::InvokeModelWithResponseStream,
        Operation::CountTokens,
        Operation::ApplyGuardrail,
        Operation::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Converse => "Converse",
            Operation::ConverseStream => "ConverseStream",
            Operation::InvokeModel => "InvokeModel",
            Operation::InvokeModelWithResponseStream => "InvokeModelWithResponseStream",
            Operation::CountTokens => "CountTokens",
            Operation::ApplyGuardrail => "ApplyGuardrail",
            Operation::Other => "Other",
        }
    }

    /// Operations whose response is an `application/vnd.amazon.eventstream`.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Operation::ConverseStream | Operation::InvokeModelWithResponseStream
        )
    }

    /// Dense index, for per-operation handle arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A recognised Bedrock Runtime call.
#[derive(Clone)]
pub struct Route {
    pub operation: Operation,
    /// The model id label, percent-decoded; `None` for operations not addressed to a model.
    pub model_id: Option<String>,
    /// The family the operation belongs to.
    pub family: &'static dyn Family,
}

// The family follows from the operation, so a route is its operation and model id.
impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        (self.operation, &self.model_id) == (other.operation, &other.model_id)
    }
}

impl Eq for Route {}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("operation", &self.operation)
            .field("model_id", &self.model_id)
            .finish()
    }
}

/// Longest model id we accept as a label. Bedrock's own limit for ARNs is 2048; anything longer
/// than this is not a model id any client would send, and it would bloat metric labels.
pub const MAX_MODEL_ID_LEN: usize = 2048;

/// The model id and action of a `model/{modelId}/{action}` path: the id percent-decoded
/// (`None` inside if it is not a valid label), the action as sent. Hand-written clients
/// sometimes leave the `/` of an ARN unencoded; the action is then still the last segment and
/// everything between `model/` and it is the label.
pub fn model_path<'a>(segments: &[&'a str]) -> Option<(Option<String>, &'a str)> {
    match segments {
        ["model", label, action] => Some((decode_label(label), action)),
        ["model", rest @ .., action] if rest.len() > 1 => {
            Some((decode_label(&rest.join("%2F")), action))
        }
        _ => None,
    }
}

/// A model id path label, percent-decoded; `None` if empty, too long or not UTF-8.
pub fn decode_label(label: &str) -> Option<String> {
    if label.is_empty() || label.len() > MAX_MODEL_ID_LEN * 3 {
        return None;
    }
    let decoded = percent_decode_str(label).decode_utf8().ok()?;
    if decoded.is_empty() || decoded.len() > MAX_MODEL_ID_LEN {
        return None;
    }
    Some(decoded.into_owned())
}
