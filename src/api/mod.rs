//! API families: what the meter knows about each family of Bedrock Runtime operations.
//!
//! A family is one module that says which request paths are its own (and the model id in them,
//! or in the request body), and how a successful answer carries its token usage: in the response
//! headers, in a JSON body read whole, in the events of an event stream or of a Server-Sent
//! Events stream — and how to read it there. The request path ([`crate::proxy`]), the taps and
//! the meter ask the family and know no operation by name, so adding a family is adding a
//! module here, its operations to [`Operation`] and its line in [`FAMILIES`], and its units to
//! the rate card.

pub mod anthropic;
pub mod async_invoke;
pub mod bidirectional;
pub mod converse;
pub mod guardrail;
pub mod invoke;
pub mod openai;
pub mod request;
mod served;
pub mod stop_scan;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;
use std::borrow::Cow;

use crate::pricing::billing_units::Units;
use crate::pricing::{Tokens, Usage};
pub use served::{Missing, PerformanceObject, Served, TierObject};

/// Every family, asked in this order which one a request path belongs to.
pub static FAMILIES: [&dyn Family; 6] = [
    &converse::Converse,
    &invoke::Invoke,
    &guardrail::Guardrail,
    &async_invoke::AsyncInvoke,
    &openai::OpenAi,
    &anthropic::Anthropic,
];

/// One family of Bedrock Runtime operations.
pub trait Family: Sync {
    /// The operation a request is, if its method and path (split at `/`, without the leading
    /// one, still percent-encoded) are this family's.
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route>;

    /// What the request body says that the meter needs: the model, for families that name it
    /// there, and whether the client asked for a stream. Only families that need the body read
    /// it; a body they cannot read is refused with the reason.
    fn request(
        &self,
        _op: Operation,
        _model_id: Option<&str>,
        _body: &[u8],
    ) -> Result<Asked, BadBody> {
        Ok(Asked::default())
    }

    /// Where a successful answer to `op`, asked as `asked`, carries its usage.
    fn answer(&self, op: Operation, asked: &Asked) -> Answer;

    /// For an answer whose usage the meter asked for and the client did not
    /// ([`Asked::strip_usage`]): what to do with one Server-Sent Event's `data` so that the
    /// client gets what it would have got without the meter.
    fn strip(&self, _data: &[u8]) -> Strip {
        Strip::Keep
    }

    /// Where `op` carries Bedrock's request metadata (the key-value tags that invocation logs
    /// record), if it takes any.
    fn metadata(&self, _op: Operation) -> MetadataSlot {
        MetadataSlot::None
    }

    /// How Bedrock says it served the call, when its response headers say so (tier, latency).
    fn served(&self, _op: Operation, _headers: &HeaderMap) -> Option<Served> {
        None
    }
}

/// Where a request carries Bedrock's request metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataSlot {
    /// The operation takes none.
    None,
    /// The `requestMetadata` member of the JSON body (Converse, ConverseStream).
    Body,
    /// The `X-Amzn-Bedrock-Request-Metadata` header, a JSON object (InvokeModel,
    /// InvokeModelWithResponseStream).
    Header,
}

/// Where an answer's usage is, and the reader for it there.
#[derive(Clone, Copy)]
pub enum Answer {
    /// No token usage: the operation is not billed per token (or not billed).
    Unmetered,
    /// Nothing to read: a successful answer means Bedrock accepted the request, which is billed
    /// in the units the request asked for ([`Asked::units`]: seconds of video, search units).
    Accepted,
    /// In the response headers; the body passes untouched.
    Headers(fn(&HeaderMap) -> Result<Usage, Missing>),
    /// In a JSON body, which arrives whole once the model has finished: read whole (bounded)
    /// so its cost is known before the response headers go out.
    JsonBody(BodyReader),
    /// In events of an `application/vnd.amazon.eventstream` body, decoded on the side as the
    /// frames pass.
    EventStream(EventReader),
    /// In events of a `text/event-stream` (Server-Sent Events) body, read on the side as they
    /// pass.
    Sse(SseReader),
}

// Readers are compared by address: two answers are the same if they read with the same function.
impl PartialEq for Answer {
    fn eq(&self, other: &Answer) -> bool {
        match (self, other) {
            (Answer::Unmetered, Answer::Unmetered) | (Answer::Accepted, Answer::Accepted) => true,
            (Answer::Headers(a), Answer::Headers(b)) => *a as usize == *b as usize,
            (Answer::JsonBody(a), Answer::JsonBody(b)) => *a as usize == *b as usize,
            (Answer::EventStream(a), Answer::EventStream(b)) => *a as usize == *b as usize,
            (Answer::Sse(a), Answer::Sse(b)) => *a as usize == *b as usize,
            _ => false,
        }
    }
}

impl Eq for Answer {}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Answer::Unmetered => "Unmetered",
            Answer::Accepted => "Accepted",
            Answer::Headers(_) => "Headers",
            Answer::JsonBody(_) => "JsonBody",
            Answer::EventStream(_) => "EventStream",
            Answer::Sse(_) => "Sse",
        })
    }
}

/// Reads a whole JSON answer: its usage, how the call was served, and the model that served it.
pub type BodyReader = fn(&[u8]) -> Result<Found, Missing>;

/// Reads one Server-Sent Event: its `event:` name (empty when it has none) and its `data:`.
/// `Ok(None)`: the event carries neither usage nor a stop reason.
pub type SseReader = fn(&str, &[u8]) -> Result<Option<SseFound>, Unreadable>;

/// What one Server-Sent Event says: token counts where it reports them, and why the model
/// stopped where it says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SseFound {
    pub counts: Option<SseUsage>,
    pub stop: Option<StopReason>,
}

impl SseFound {
    pub fn counts(counts: SseUsage) -> SseFound {
        SseFound {
            counts: Some(counts),
            stop: None,
        }
    }

    /// `None` when the event said nothing of either.
    fn of(counts: Option<SseUsage>, stop: Option<StopReason>) -> Option<SseFound> {
        (counts.is_some() || stop.is_some()).then_some(SseFound { counts, stop })
    }
}

/// Token counts an event reports; `None` where it says nothing. Later events' counts replace
/// earlier ones field by field (Anthropic's stream reports input first, output at the end).
pub type SseUsage = Tokens<Option<u64>>;

/// Counts `new` reports replace those of `seen`; the others stay.
pub fn merge(seen: SseUsage, new: SseUsage) -> SseUsage {
    Tokens {
        input: new.input.or(seen.input),
        output: new.output.or(seen.output),
        cache_read: new.cache_read.or(seen.cache_read),
        cache_write: new.cache_write.or(seen.cache_write),
        cache_write_1h: new.cache_write_1h.or(seen.cache_write_1h),
    }
}

/// What the meter needs from a request body, for families that read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    /// The model named in the body, for families not addressed by path.
    pub model_id: Option<String>,
    /// The client asked for a streamed answer (`"stream": true`).
    pub stream: bool,
    /// The body to forward instead of the client's: the same request, asking Bedrock for the
    /// usage the client did not ask for.
    pub rewrite: Option<Bytes>,
    /// The answer will carry usage the client did not ask for; [`Family::strip`] takes it out.
    pub strip_usage: bool,
    /// What the request asks to be billed in besides tokens, as far as the request says
    /// (seconds of video; the quality and size of images, whose count the answer gives).
    pub units: Units,
    /// Where the answer's usage is, when the body decides it (an image model's JSON answer);
    /// `None`: the family's usual answer for the operation.
    pub answer: Option<Answer>,
}

/// A request body a family cannot read: why, for the `ValidationException` the client gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadBody(pub String);

/// What to do with one Server-Sent Event on its way to a client that did not ask for usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strip {
    /// Pass it as it is.
    Keep,
    /// Drop the whole event: it exists only because the meter asked for usage.
    Drop,
    /// Remove these bytes of its `data` (a `"usage":null` member the client did not ask for).
    Cut(std::ops::Range<usize>),
}

/// Reads one event of a stream: its `:event-type`, its payload, and a scratch buffer to reuse.
/// `Ok(None)`: this event carries no usage; `Err`: it should have and did not parse.
pub type EventReader = fn(&str, &[u8], &mut Vec<u8>) -> Result<Option<Found>, Unreadable>;

/// Usage found in an answer or an event, with how the call was served and by which model, when
/// the answer says. An event may carry only why the model stopped (`usage: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub usage: Option<Usage>,
    pub served: Option<Served>,
    /// The model a prompt router chose (`trace.promptRouter.invokedModelId`).
    pub invoked_model: Option<String>,
    /// What the answer says was used besides tokens (images generated, guardrail units).
    pub units: Units,
    /// Why the model stopped, where the answer says.
    pub stop_reason: Option<StopReason>,
}

impl Found {
    pub fn usage(usage: Usage) -> Found {
        Found {
            usage: Some(usage),
            served: None,
            invoked_model: None,
            units: Units::default(),
            stop_reason: None,
        }
    }
}

/// Why a model stopped generating, in Converse's words whatever the API said: the output
/// discipline lever of `advise` counts the calls that ran into their ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    /// The output ceiling the request set (`maxTokens`, `max_tokens`, …) cut the answer.
    MaxTokens,
    ToolUse,
    StopSequence,
    GuardrailIntervened,
    ContentFiltered,
    Other,
}

impl StopReason {
    pub const COUNT: usize = 7;

    /// Converse's `stopReason`, Anthropic's `stop_reason`, OpenAI's `finish_reason`,
    /// Responses' `incomplete_details.reason`, and the model-native answers' words for the same
    /// (Titan's `FINISH`/`LENGTH`, Cohere's `COMPLETE`/`MAX_TOKENS`, Mistral's `model_length`),
    /// whatever their case.
    pub fn parse(s: &str) -> StopReason {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return StopReason::parse(&s.to_ascii_lowercase());
        }
        match s {
            "end_turn" | "stop" | "completed" | "finish" | "complete" | "stop_criteria_met" => {
                StopReason::EndTurn
            }
            "max_tokens"
            | "length"
            | "max_output_tokens"
            | "model_context_window_exceeded"
            | "model_length" => StopReason::MaxTokens,
            "tool_use" | "tool_calls" | "function_call" => StopReason::ToolUse,
            "stop_sequence" => StopReason::StopSequence,
            "guardrail_intervened" => StopReason::GuardrailIntervened,
            "content_filtered" | "content_filter" | "refusal" | "error_toxic" => {
                StopReason::ContentFiltered
            }
            _ => StopReason::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::ToolUse => "tool_use",
            StopReason::StopSequence => "stop_sequence",
            StopReason::GuardrailIntervened => "guardrail_intervened",
            StopReason::ContentFiltered => "content_filtered",
            StopReason::Other => "other",
        }
    }
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
    /// `POST /openai/v1/chat/completions`, streamed or not.
    ChatCompletions,
    /// `POST /openai/v1/responses`, streamed or not.
    Responses,
    /// `POST /anthropic/v1/messages`, streamed or not.
    AnthropicMessages,
    /// `POST /async-invoke`: an asynchronous job (Nova Reel video), metered when accepted.
    StartAsyncInvoke,
    /// `POST /model/{modelId}/invoke-with-bidirectional-stream`: an HTTP/2 event stream each
    /// way (Nova Sonic speech to speech).
    InvokeModelWithBidirectionalStream,
    Other,
}

impl Operation {
    pub const ALL: [Operation; 12] = [
        Operation::Converse,
        Operation::ConverseStream,
        Operation::InvokeModel,
        Operation::InvokeModelWithResponseStream,
        Operation::CountTokens,
        Operation::ApplyGuardrail,
        Operation::ChatCompletions,
        Operation::Responses,
        Operation::AnthropicMessages,
        Operation::StartAsyncInvoke,
        Operation::InvokeModelWithBidirectionalStream,
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
            Operation::ChatCompletions => "ChatCompletions",
            Operation::Responses => "Responses",
            Operation::AnthropicMessages => "AnthropicMessages",
            Operation::StartAsyncInvoke => "StartAsyncInvoke",
            Operation::InvokeModelWithBidirectionalStream => "InvokeModelWithBidirectionalStream",
            Operation::Other => "Other",
        }
    }

    /// Operations whose response is an `application/vnd.amazon.eventstream`. (The families whose
    /// request body asks for a stream say so in [`Asked::stream`].)
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Operation::ConverseStream
                | Operation::InvokeModelWithResponseStream
                | Operation::InvokeModelWithBidirectionalStream
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
    /// The model id label, percent-decoded; `None` for operations not addressed to a model by
    /// path (those that name it in the body say so in [`Asked::model_id`]).
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

/// The `model` of a body, as a label: present, not empty, not absurdly long.
pub fn body_model(model: Option<Cow<'_, str>>) -> Result<String, BadBody> {
    match model {
        Some(m) if !m.is_empty() && m.len() <= MAX_MODEL_ID_LEN => Ok(m.into_owned()),
        Some(m) if !m.is_empty() => Err(BadBody(format!(
            "The model id is longer than {MAX_MODEL_ID_LEN} characters ({}).",
            m.len()
        ))),
        _ => Err(BadBody(
            "The request body names no model: `model` is required.".into(),
        )),
    }
}

/// A model id path label, percent-decoded; `None` if empty, too long or not UTF-8.
pub fn decode_label(label: &str) -> Option<String> {
    if label.is_empty() || label.len() > MAX_MODEL_ID_LEN * 3 {
        return None;
    }
    // Decoded straight into a buffer of the right size: one allocation per call.
    let mut bytes = Vec::with_capacity(label.len());
    bytes.extend(percent_decode_str(label));
    let decoded = String::from_utf8(bytes).ok()?;
    if decoded.is_empty() || decoded.len() > MAX_MODEL_ID_LEN {
        return None;
    }
    Some(decoded)
}

/// Where `part`, a slice borrowed from `whole`, lies in it.
pub fn span_of(whole: &[u8], part: &str) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

/// `body` with the bytes at `span` replaced by `with`; the rest copied as it is.
pub fn splice(body: &[u8], span: std::ops::Range<usize>, with: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() - span.len() + with.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&body[span.end..]);
    out.freeze()
}

/// For `#[serde(deserialize_with)]` on an `Option<&RawValue>` member: the value as written,
/// `null` included, so that a member that is present is never mistaken for an absent one.
pub fn raw_member<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'de serde_json::value::RawValue>, D::Error> {
    <&serde_json::value::RawValue as serde::Deserialize>::deserialize(d).map(Some)
}
