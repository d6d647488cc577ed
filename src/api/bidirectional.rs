//! The response events of `InvokeModelWithBidirectionalStream` (Nova Sonic): `chunk` frames
//! whose payload is `{"bytes": "<base64 of the event JSON>"}`. Usage comes in `usageEvent`s,
//! many per session, each with the session's running totals in `details.total` (and the change
//! since the last in `details.delta`): the meter keeps the latest totals, so a session is
//! metered once with what Bedrock reported last, never totals and deltas both.
//!
//! Text tokens are the meter's input and output tokens, priced at the model's token rates;
//! speech tokens are units of their own (`speech_input_token`, `speech_output_token`), priced
//! at the card's speech rates.

use memchr::memmem;
use serde::Deserialize;

use super::{Found, Unreadable};
use crate::pricing::Usage;
use crate::pricing::billing_units::Units;

#[derive(Deserialize)]
struct Envelope {
    event: Event,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    usage_event: Option<UsageEvent>,
}

#[derive(Deserialize)]
struct UsageEvent {
    details: Details,
}

#[derive(Deserialize)]
struct Details {
    total: Directions,
}

#[derive(Deserialize)]
struct Directions {
    #[serde(default)]
    input: Kinds,
    #[serde(default)]
    output: Kinds,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Kinds {
    #[serde(default)]
    speech_tokens: u64,
    #[serde(default)]
    text_tokens: u64,
}

/// The session's running totals from a `usageEvent`; other events say nothing. Only chunks
/// whose decoded JSON mentions `usageEvent` are parsed; a chunk that mentions it without
/// carrying one (a transcript quoting the word) is not an error.
pub fn read_event(
    event_type: &str,
    payload: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<Option<Found>, Unreadable> {
    if event_type != "chunk" {
        return Ok(None);
    }
    super::invoke::decode_chunk(payload, scratch)?;
    if memmem::find(scratch, b"\"usageEvent\"").is_none() {
        return Ok(None);
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(scratch) else {
        return Err(Unreadable);
    };
    let Some(usage) = envelope.event.usage_event else {
        return Ok(None);
    };
    let total = usage.details.total;
    let mut found = Found::usage(Usage {
        input: total.input.text_tokens,
        output: total.output.text_tokens,
        ..Usage::default()
    });
    found.units = Units {
        speech_input_tokens: total.input.speech_tokens,
        speech_output_tokens: total.output.speech_tokens,
        ..Units::default()
    };
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    fn chunk(event: &str) -> Vec<u8> {
        format!(r#"{{"bytes":"{}"}}"#, STANDARD.encode(event)).into_bytes()
    }

    #[test]
    fn running_totals_from_usage_events() {
        let mut scratch = Vec::new();
        let usage = r#"{"event":{"usageEvent":{"completionId":"c","details":{"delta":{"input":{"speechTokens":0,"textTokens":3},"output":{"speechTokens":20,"textTokens":0}},"total":{"input":{"speechTokens":288,"textTokens":3443},"output":{"speechTokens":694,"textTokens":203}}},"promptName":"p","sessionId":"s","totalInputTokens":3731,"totalOutputTokens":897,"totalTokens":4628}}}"#;
        let found = read_event("chunk", &chunk(usage), &mut scratch)
            .unwrap()
            .unwrap();
        assert_eq!(
            found.usage,
            Some(Usage {
                input: 3443,
                output: 203,
                ..Usage::default()
            })
        );
        assert_eq!(
            (
                found.units.speech_input_tokens,
                found.units.speech_output_tokens
            ),
            (288, 694)
        );
        let text =
            r#"{"event":{"textOutput":{"content":"the \"usageEvent\" word","role":"ASSISTANT"}}}"#;
        assert_eq!(read_event("chunk", &chunk(text), &mut scratch), Ok(None));
        let audio = r#"{"event":{"audioOutput":{"content":"AAAA"}}}"#;
        assert_eq!(read_event("chunk", &chunk(audio), &mut scratch), Ok(None));
        assert_eq!(read_event("other", b"garbage", &mut scratch), Ok(None));
        assert_eq!(
            read_event("chunk", b"not json", &mut scratch),
            Err(Unreadable)
        );
        let broken = r#"{"event":{"usageEvent":{"details":{}}}}"#;
        assert_eq!(
            read_event("chunk", &chunk(broken), &mut scratch),
            Err(Unreadable)
        );
    }
}
