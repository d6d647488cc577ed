//! What a request body says besides its model, read for the ledger and the limits: the output
//! ceiling it sets, and its stable prefix — the part a prompt cache could serve.
//!
//! One deserializer reads every request shape (Converse, InvokeModel's model-native bodies,
//! Anthropic Messages, OpenAI Chat Completions and Responses): it names the fields each of
//! them uses and skips the rest without building it; the prefix's pieces are borrowed as raw
//! JSON, never copied or re-serialized.
//!
//! **The stable prefix** is the system prompt (`system`, and OpenAI's leading `system` or
//! `developer` messages), the tool definitions (`toolConfig`, `tools`), and the leading
//! messages: up to and including the first one that holds a cache point (`cachePoint`,
//! `cache_control`), or, without one, those before the first user message. Its fingerprint is
//! a keyed SHA-256 of those bytes, so equal prefixes match and the text cannot be guessed from
//! it; only the fingerprint and the byte length are kept.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// The output ceiling a request sets, and its stable prefix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub max_tokens: Option<u64>,
    pub prefix: Option<Prefix>,
}

/// A request's stable prefix, as kept: a keyed fingerprint and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub fingerprint: u64,
    pub bytes: u64,
}

/// The key of prefix fingerprints. Replicas that share one see each other's prefixes as the
/// same; a fingerprint tells nothing about the text to anyone without it.
#[derive(Clone)]
pub struct FingerprintKey([u8; 32]);

impl FingerprintKey {
    /// A key derived from a secret (`--fingerprint-key`).
    pub fn from_secret(secret: &str) -> FingerprintKey {
        FingerprintKey(Sha256::digest(secret.as_bytes()).into())
    }

    /// A key of this process alone: fingerprints match within one run of one replica.
    pub fn random() -> FingerprintKey {
        use std::hash::{BuildHasher, Hasher};
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        FingerprintKey(key)
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(…)")
    }
}

#[derive(Deserialize, Default)]
struct Body<'a> {
    #[serde(rename = "inferenceConfig")]
    inference_config: Option<InferenceConfig>,
    #[serde(rename = "textGenerationConfig")]
    text_generation_config: Option<TextGenerationConfig>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    max_gen_len: Option<u64>,
    max_tokens_to_sample: Option<u64>,
    #[serde(borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow, rename = "toolConfig")]
    tool_config: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize, Default)]
struct InferenceConfig {
    #[serde(rename = "maxTokens")]
    max_tokens: Option<u64>,
    max_new_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TextGenerationConfig {
    #[serde(rename = "maxTokenCount")]
    max_token_count: Option<u64>,
}

#[derive(Deserialize)]
struct Role<'a> {
    #[serde(borrow)]
    role: Option<std::borrow::Cow<'a, str>>,
}

impl Body<'_> {
    fn max_tokens(&self) -> Option<u64> {
        let inference = self.inference_config.as_ref();
        inference
            .and_then(|i| i.max_tokens.or(i.max_new_tokens))
            .or(self.max_tokens)
            .or(self.max_completion_tokens)
            .or(self.max_output_tokens)
            .or(self
                .text_generation_config
                .as_ref()
                .and_then(|t| t.max_token_count))
            .or(self.max_gen_len)
            .or(self.max_tokens_to_sample)
    }
}

/// The output ceiling a request sets, if it sets one in a field this knows.
pub fn output_ceiling(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Body<'_>>(body)
        .ok()
        .and_then(|b| b.max_tokens())
}

/// The output ceiling and the stable prefix of a request body; nothing for a body that is not
/// a JSON object.
pub fn facts(body: &[u8], key: &FingerprintKey) -> Facts {
    let Ok(b) = serde_json::from_slice::<Body<'_>>(body) else {
        return Facts::default();
    };
    Facts {
        max_tokens: b.max_tokens(),
        prefix: prefix(&b, key),
    }
}

fn prefix(b: &Body<'_>, key: &FingerprintKey) -> Option<Prefix> {
    let messages = b.messages.as_deref().unwrap_or_default();
    let cached_to = messages.iter().position(|m| has_cache_point(m.get()));
    let leading = match cached_to {
        Some(i) => i + 1,
        None => messages
            .iter()
            .position(|m| {
                serde_json::from_str::<Role<'_>>(m.get())
                    .ok()
                    .and_then(|r| r.role)
                    .is_none_or(|role| !matches!(&*role, "system" | "developer"))
            })
            .unwrap_or(messages.len()),
    };
    let parts = [b.system, b.tool_config, b.tools]
        .into_iter()
        .flatten()
        .chain(messages[..leading].iter().copied());
    let mut hash = Sha256::new();
    hash.update(key.0);
    let mut bytes = 0u64;
    for part in parts {
        let raw = part.get().as_bytes();
        // Length-prefixed, so moving bytes from one part to the next changes the fingerprint.
        hash.update((raw.len() as u64).to_le_bytes());
        hash.update(raw);
        bytes += raw.len() as u64;
    }
    if bytes == 0 {
        return None;
    }
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Some(Prefix {
        fingerprint: u64::from_be_bytes(first),
        bytes,
    })
}

/// Whether a message's raw JSON holds a cache point as a key (Converse's `cachePoint` block,
/// Anthropic's `cache_control`), not merely as text inside a string (which would be escaped).
fn has_cache_point(raw: &str) -> bool {
    ["\"cachePoint\"", "\"cache_control\""]
        .iter()
        .any(|needle| {
            raw.match_indices(needle)
                .any(|(i, _)| i == 0 || raw.as_bytes()[i - 1] != b'\\')
        })
}

#[cfg(test)]
mod tests;
