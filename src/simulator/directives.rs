//! The `[[sim key=value ...]]` directive a test embeds in a prompt to choose the simulator's
//! usage, pacing and faults for that one request.
//!
//! The directive rides inside the request body (usually a JSON string in the prompt), so it
//! reaches the simulator unchanged through any proxy and needs no side channel.
//!
//! Keys: `input output cache_read cache_write cache_write_1h` (the usage to report), `tier`
//! (the service tier to echo), `fault` (see [`Fault`]), `exception` (the type of a `midstream`
//! exception), `after` (content frames or events before a stream fault), `delay_ms ttft_ms
//! gap_ms chunks` (pacing, and the number of content parts), `stop` (the stop reason
//! the answer gives: `end_turn`, `max_tokens`, `tool_use`, `stop_sequence`), and `invoked=MODEL` (the model
//! id or ARN a prompt router says it chose: non-empty, no whitespace, at most 2048 bytes;
//! ignored unless the call is addressed to a prompt router).

use crate::api::MAX_MODEL_ID_LEN;
use crate::pricing::Tokens;
use crate::pricing::billing_units::Policy;
use std::fmt;
use std::time::Duration;

const OPEN: &[u8] = b"[[sim";
const CLOSE: &[u8] = b"]]";

/// Longer sleeps than this are surely a typo, and a bound keeps deadline arithmetic safe.
const MAX_MS: u64 = 24 * 60 * 60 * 1000;
/// Bounds the text the simulator builds, so a directive cannot make it allocate without limit.
const MAX_CHUNKS: u64 = 100_000;
/// Images in one answer: Bedrock's image models make at most a handful.
const MAX_IMAGES: u64 = 100;
/// Guardrail units of one policy in one answer.
const MAX_UNITS: u64 = 1_000_000_000;

/// What a request's directive asked for; `None`/defaults where it said nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directive {
    /// The token counts to report, where the directive gives them.
    pub tokens: Tokens<Option<u64>>,
    pub tier: Option<&'static str>,
    pub fault: Option<Fault>,
    pub exception: Option<&'static str>,
    pub after: Option<u64>,
    pub delay_ms: Option<u64>,
    pub ttft_ms: Option<u64>,
    pub gap_ms: Option<u64>,
    pub chunks: Option<u64>,
    /// The model a prompt router reports it chose (`trace.promptRouter.invokedModelId`).
    pub invoked: Option<String>,
    /// Why the answer says the model stopped (Converse's `stopReason`; `end_turn` if unsaid).
    pub stop: Option<&'static str>,
    /// Images an image model answers with (else the request's `numberOfImages`, else 1).
    pub images: Option<u64>,
    /// Guardrail units per policy (`content_policy=3`, …), indexed like `Policy::ALL`.
    pub guardrail: [Option<u64>; 8],
}

/// A fault to inject instead of (or in the middle of) a normal answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    Validation,
    UnknownModel,
    Internal,
    Unavailable,
    ModelError,
    Timeout,
    Malformed,
    Drop,
    Midstream,
}

/// Why a directive was rejected; names the offending key so the test author can find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectiveError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid simulator directive key `{}`: {}",
            self.key, self.reason
        )
    }
}

impl std::error::Error for DirectiveError {}

const TIERS: [&str; 4] = ["default", "priority", "flex", "reserved"];
/// The stop reasons a directive may ask a Converse answer to give.
const STOP_REASONS: [&str; 4] = ["end_turn", "max_tokens", "tool_use", "stop_sequence"];
const EXCEPTIONS: [&str; 6] = [
    "modelStreamErrorException",
    "throttlingException",
    "internalServerException",
    "validationException",
    "serviceUnavailableException",
    "modelTimeoutException",
];

impl Directive {
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.unwrap_or(0))
    }
    pub fn ttft(&self) -> Duration {
        Duration::from_millis(self.ttft_ms.unwrap_or(0))
    }
    pub fn gap(&self) -> Duration {
        Duration::from_millis(self.gap_ms.unwrap_or(0))
    }
    pub fn chunks(&self) -> u64 {
        self.chunks.unwrap_or(4)
    }
    /// Content frames sent before a stream fault, never more than there are.
    pub fn after(&self) -> u64 {
        self.after.unwrap_or(1).min(self.chunks())
    }
}

/// Finds and parses the first directive in `body`; no directive is not an error.
pub fn parse(body: &[u8]) -> Result<Directive, DirectiveError> {
    let Some(inner) = find(body)? else {
        return Ok(Directive::default());
    };
    let mut d = Directive::default();
    for token in inner.split_ascii_whitespace() {
        let Some((key, value)) = token.split_once('=') else {
            return Err(err(token, "expected key=value"));
        };
        apply(&mut d, key, value)?;
    }
    if let (Some(h1), write) = (d.tokens.cache_write_1h, d.tokens.cache_write.unwrap_or(0))
        && h1 > write
    {
        return Err(err(
            "cache_write_1h",
            &format!("{h1} exceeds cache_write={write}"),
        ));
    }
    Ok(d)
}

/// The text between `[[sim` and `]]`, if the body has a directive.
fn find(body: &[u8]) -> Result<Option<&str>, DirectiveError> {
    let mut from = 0;
    while let Some(pos) = position(&body[from..], OPEN) {
        let start = from + pos + OPEN.len();
        // `[[simple` is prose, not a directive.
        if matches!(body.get(start), Some(b' ' | b']')) {
            let Some(len) = position(&body[start..], CLOSE) else {
                return Err(err("sim", "directive is not closed with `]]`"));
            };
            return std::str::from_utf8(&body[start..start + len])
                .map(Some)
                .map_err(|_| err("sim", "directive is not UTF-8"));
        }
        from = start;
    }
    Ok(None)
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn apply(d: &mut Directive, key: &str, value: &str) -> Result<(), DirectiveError> {
    let slot_u64 = |slot: &mut Option<u64>, max: u64| -> Result<(), DirectiveError> {
        let n: u64 = value
            .parse()
            .map_err(|_| err(key, &format!("`{value}` is not a non-negative integer")))?;
        if n > max {
            return Err(err(key, &format!("{n} is more than {max}")));
        }
        set(slot, n, key)
    };
    match key {
        "input" => slot_u64(&mut d.tokens.input, u64::MAX),
        "output" => slot_u64(&mut d.tokens.output, u64::MAX),
        "cache_read" => slot_u64(&mut d.tokens.cache_read, u64::MAX),
        "cache_write" => slot_u64(&mut d.tokens.cache_write, u64::MAX),
        "cache_write_1h" => slot_u64(&mut d.tokens.cache_write_1h, u64::MAX),
        "after" => slot_u64(&mut d.after, MAX_CHUNKS),
        "images" => slot_u64(&mut d.images, MAX_IMAGES),
        policy if Policy::ALL.iter().any(|p| p.key() == policy) => {
            let i = Policy::ALL
                .iter()
                .position(|p| p.key() == policy)
                .unwrap_or_default();
            slot_u64(&mut d.guardrail[i], MAX_UNITS)
        }
        "chunks" => slot_u64(&mut d.chunks, MAX_CHUNKS),
        "delay_ms" => slot_u64(&mut d.delay_ms, MAX_MS),
        "ttft_ms" => slot_u64(&mut d.ttft_ms, MAX_MS),
        "gap_ms" => slot_u64(&mut d.gap_ms, MAX_MS),
        "tier" => {
            let tier = one_of(key, value, &TIERS)?;
            set(&mut d.tier, tier, key)
        }
        "exception" => {
            let exception = one_of(key, value, &EXCEPTIONS)?;
            set(&mut d.exception, exception, key)
        }
        "stop" => {
            let stop = one_of(key, value, &STOP_REASONS)?;
            set(&mut d.stop, stop, key)
        }
        "invoked" => {
            if value.is_empty() {
                return Err(err(key, "is empty"));
            }
            if value.len() > MAX_MODEL_ID_LEN {
                return Err(err(
                    key,
                    &format!("is {} bytes, more than {MAX_MODEL_ID_LEN}", value.len()),
                ));
            }
            if value.chars().any(char::is_whitespace) {
                return Err(err(key, "contains whitespace"));
            }
            set(&mut d.invoked, value.to_owned(), key)
        }
        "fault" => {
            let fault = match value {
                "throttle" => Fault::Throttle,
                "validation" => Fault::Validation,
                "unknown_model" => Fault::UnknownModel,
                "internal" => Fault::Internal,
                "unavailable" => Fault::Unavailable,
                "model_error" => Fault::ModelError,
                "timeout" => Fault::Timeout,
                "malformed" => Fault::Malformed,
                "drop" => Fault::Drop,
                "midstream" => Fault::Midstream,
                _ => return Err(err(key, &format!("unknown fault `{value}`"))),
            };
            set(&mut d.fault, fault, key)
        }
        _ => Err(err(key, "unknown key")),
    }
}

fn set<T>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), DirectiveError> {
    if slot.is_some() {
        return Err(err(key, "given twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn one_of(
    key: &str,
    value: &str,
    allowed: &[&'static str],
) -> Result<&'static str, DirectiveError> {
    allowed
        .iter()
        .copied()
        .find(|a| *a == value)
        .ok_or_else(|| {
            err(
                key,
                &format!("`{value}` is not one of {}", allowed.join("|")),
            )
        })
}

fn err(key: &str, reason: &str) -> DirectiveError {
    DirectiveError {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests;
