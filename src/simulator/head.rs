//! What the simulator reads from the JSON body of the operations that name their model there
//! (Chat Completions, Responses, Anthropic Messages), besides the model and `stream` the
//! family reads: the conversation, for ids that are the same for the same request, and
//! whether a Chat Completions stream asked for its usage.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The members the simulator looks at; a body it cannot read this way reads as empty.
#[derive(Default, Deserialize)]
pub struct Head<'a> {
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream_options: Option<&'a RawValue>,
}

impl<'a> Head<'a> {
    pub fn read(body: &'a [u8]) -> Head<'a> {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// A stable hash of the conversation as sent (`messages`, or a Responses `input`): the
    /// same request gets the same ids however often, in whatever order, it is sent, and
    /// whatever else (such as `stream_options`) it says.
    pub fn conversation_hash(&self) -> u64 {
        let raw = self.messages.or(self.input).map_or("", |r| r.get());
        fnv1a(raw.as_bytes())
    }

    /// `stream_options.include_usage` is `true`; anything else, or nothing, is false.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
            .is_some_and(|options| options.get("include_usage") == Some(&Value::Bool(true)))
    }
}

/// FNV-1a, 64 bits: tiny, stable across builds and platforms, good enough for ids.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn hash_of_the_conversation_only() {
        let a = Head::read(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let b = Head::read(
            br#"{"stream_options":{"include_usage":true},"model":"x","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert_eq!(a.conversation_hash(), b.conversation_hash());
        let spaced = Head::read(br#"{"messages":[{"role":"user", "content":"hi"}]}"#);
        assert_ne!(a.conversation_hash(), spaced.conversation_hash());
        let input = Head::read(br#"{"input":[{"role":"user","content":"hi"}]}"#);
        assert_eq!(a.conversation_hash(), input.conversation_hash());
        assert_eq!(Head::read(b"not json").conversation_hash(), fnv1a(b""));
    }

    #[test]
    fn include_usage_only_when_true() {
        assert!(Head::read(br#"{"stream_options":{"include_usage":true}}"#).include_usage());
        assert!(
            Head::read(br#"{"stream_options":{"x":1, "include_usage" : true}}"#).include_usage()
        );
        for body in [
            &br#"{}"#[..],
            br#"{"stream_options":null}"#,
            br#"{"stream_options":{}}"#,
            br#"{"stream_options":{"include_usage":false}}"#,
            br#"{"stream_options":{"include_usage":"true"}}"#,
            br#"{"stream_options":{"include_usage":1}}"#,
            br#"{"stream_options":true}"#,
            b"[",
        ] {
            assert!(
                !Head::read(body).include_usage(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
