//! Why a model stopped, found in a model-native answer (an InvokeModel body, an
//! InvokeModelWithResponseStream chunk) as it passes, without parsing or keeping the answer.
//!
//! Every model family names the reason in a member whose key ends in `eason"`: Anthropic,
//! Meta Llama, Mistral and DeepSeek say `stop_reason`; Amazon Nova `stopReason` (its stream in
//! `messageStop`); Titan Text `completionReason`; Cohere and OpenAI's open-weight models
//! `finish_reason`. One substring search finds them all, then the key and its string value are
//! read where they stand. Inside a JSON string a quote is always escaped (`\"`), so generated
//! text can never produce the unescaped `"stop_reason":` the search needs; a `null` (Anthropic's
//! stream opens with `"stop_reason":null`) says nothing. When a body names a reason more than
//! once, the last one is the answer's: the families that nest one (a tool's input object) put
//! their own after the content.

use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::StopReason;

const KEYS: [&[u8]; 4] = [
    b"\"stop_reason\"",
    b"\"stopReason\"",
    b"\"completionReason\"",
    b"\"finish_reason\"",
];
const SUFFIX: &[u8] = b"eason\"";
/// The longest value a family uses (`RAG_QUERY_WHEN_RAG_DISABLED`) with room to spare.
const MAX_VALUE: usize = 40;
/// Enough to hold the longest key, some whitespace, the colon and the longest value: a member
/// cut by a chunk boundary is found again in the carried tail joined with the next chunk.
const CARRY: usize = 96;

/// The last stop reason `haystack` names, if it names one in full.
pub fn last_in(haystack: &[u8]) -> Option<StopReason> {
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(SUFFIX));
    FINDER
        .find_iter(haystack)
        .filter_map(|at| reason_at(haystack, at))
        .last()
}

/// The reason of the member whose key's `eason"` starts at `at`, if the key is one of
/// [`KEYS`] and its value is a whole string.
fn reason_at(haystack: &[u8], at: usize) -> Option<StopReason> {
    let key_end = at + SUFFIX.len();
    KEYS.iter()
        .any(|key| key_end >= key.len() && haystack.get(key_end - key.len()..key_end) == Some(key))
        .then_some(())?;
    let rest = haystack.get(key_end..)?;
    let rest = skip_space(rest).strip_prefix(b":")?;
    let rest = skip_space(rest).strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest.get(..rest.len().min(MAX_VALUE + 1))?)?;
    let value = std::str::from_utf8(rest.get(..end)?).ok()?;
    Some(StopReason::parse(value))
}

fn skip_space(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    bytes.get(n..).unwrap_or_default()
}

/// Scans a body chunk by chunk, keeping only the last [`CARRY`] bytes between chunks.
#[derive(Clone)]
pub struct StopScan {
    carry: [u8; CARRY],
    carried: usize,
    found: Option<StopReason>,
}

impl Default for StopScan {
    fn default() -> Self {
        StopScan {
            carry: [0; CARRY],
            carried: 0,
            found: None,
        }
    }
}

impl StopScan {
    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if self.carried > 0 {
            // A member the last chunk cut: the carried tail joined with this chunk's head.
            // Members wholly inside either are found again, with the same reason.
            let head = chunk.get(..chunk.len().min(CARRY)).unwrap_or_default();
            let mut joined = [0u8; 2 * CARRY];
            let len = self.carried + head.len();
            joined[..self.carried].copy_from_slice(&self.carry[..self.carried]);
            joined[self.carried..len].copy_from_slice(head);
            if let Some(stop) = last_in(&joined[..len]) {
                self.found = Some(stop);
            }
        }
        if let Some(stop) = last_in(chunk) {
            self.found = Some(stop);
        }
        self.keep_tail(chunk);
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        if chunk.len() >= CARRY {
            self.carry.copy_from_slice(&chunk[chunk.len() - CARRY..]);
            self.carried = CARRY;
            return;
        }
        let keep = self.carried.min(CARRY - chunk.len());
        self.carry.copy_within(self.carried - keep..self.carried, 0);
        self.carry[keep..keep + chunk.len()].copy_from_slice(chunk);
        self.carried = keep + chunk.len();
    }

    /// The last reason the body named.
    pub fn found(&self) -> Option<StopReason> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_names_its_reason() {
        for (body, want) in [
            (
                &br#"{"id":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":3}}"#[..],
                StopReason::MaxTokens,
            ),
            (
                br#"{"output":{"message":{"role":"assistant"}},"stopReason":"end_turn","usage":{}}"#,
                StopReason::EndTurn,
            ),
            (
                br#"{"inputTextTokenCount":3,"results":[{"tokenCount":9,"outputText":"x","completionReason":"LENGTH"}]}"#,
                StopReason::MaxTokens,
            ),
            (
                br#"{"generation":"x","prompt_token_count":3,"generation_token_count":9,"stop_reason":"length"}"#,
                StopReason::MaxTokens,
            ),
            (
                br#"{"outputs":[{"text":"x","stop_reason":"model_length"}]}"#,
                StopReason::MaxTokens,
            ),
            (
                br#"{"text":"x","finish_reason":"COMPLETE"}"#,
                StopReason::EndTurn,
            ),
            (
                br#"{"choices":[{"finish_reason":"tool_calls","message":{"content":"x"}}]}"#,
                StopReason::ToolUse,
            ),
            (
                br#"{"messageStop":{"stopReason":"content_filtered"}}"#,
                StopReason::ContentFiltered,
            ),
            (
                br#"{"stop_reason" : "stop_sequence"}"#,
                StopReason::StopSequence,
            ),
        ] {
            assert_eq!(
                last_in(body),
                Some(want),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn text_and_nulls_name_nothing() {
        for body in [
            &br#"{"type":"message_start","message":{"stop_reason":null}}"#[..],
            br#"{"text":"say \"stop_reason\":\"max_tokens\" please"}"#,
            br#"{"reason":"max_tokens","treason":"length"}"#,
            br#"{"stop_reason":"#,
            br#"{"stop_reason":"unterminated"#,
            br#"eason""#,
            b"",
        ] {
            assert_eq!(last_in(body), None, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_last_reason_wins() {
        let body = br#"{"content":[{"type":"tool_use","input":{"stop_reason":"end_turn"}}],"stop_reason":"tool_use"}"#;
        assert_eq!(last_in(body), Some(StopReason::ToolUse));
    }

    #[test]
    fn a_member_cut_anywhere_is_found() {
        let body = format!(
            r#"{{"outputText":"{}","stopReason":"max_tokens","usage":{{"inputTokens":3}}}}"#,
            "y".repeat(300)
        );
        let body = body.as_bytes();
        for cut in 0..=body.len() {
            let mut scan = StopScan::default();
            scan.push(&body[..cut]);
            scan.push(&body[cut..]);
            assert_eq!(scan.found(), Some(StopReason::MaxTokens), "cut at {cut}");
        }
        // One byte at a time: the carry holds the member across a hundred chunks.
        let mut scan = StopScan::default();
        for b in body {
            scan.push(std::slice::from_ref(b));
        }
        assert_eq!(scan.found(), Some(StopReason::MaxTokens));
        let mut scan = StopScan::default();
        scan.push(&body[..body.len() / 2]);
        assert_eq!(scan.found(), None);
    }
}
