//! The token usage a simulated answer reports, rendered in each of the shapes Bedrock uses
//! (Converse `usage`, Anthropic `usage`, `amazon-bedrock-invocationMetrics`, OpenAI's).

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::directives::Directive;

/// Output tokens reported when the directive does not say.
const DEFAULT_OUTPUT: u64 = 25;

/// The usage a simulated answer reports: the meter's own per-token-type shape.
pub use crate::pricing::Usage;

/// The directive's numbers, else a rough four-bytes-per-token estimate of the body.
pub fn plan(d: &Directive, body_len: usize) -> Usage {
    let estimate = (body_len as u64).div_ceil(4).max(1);
    let t = d.tokens;
    Usage {
        input: t.input.unwrap_or(estimate),
        output: t.output.unwrap_or(DEFAULT_OUTPUT),
        ..t.map(|n| n.unwrap_or(0))
    }
}

/// A usage written out in Bedrock's shapes.
pub trait Render {
    fn total(&self) -> u64;
    fn converse_json(&self) -> Value;
    fn anthropic_json(&self, output: u64) -> Value;
    fn invocation_metrics_json(&self, latency_ms: u64, first_byte_ms: u64) -> Value;
}

impl Render for Usage {
    /// Bedrock's `totalTokens` counts cache reads and writes as well.
    fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }

    /// Converse / ConverseStream `usage`: cache fields only when caching happened.
    fn converse_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("inputTokens".into(), self.input.into());
        m.insert("outputTokens".into(), self.output.into());
        m.insert("totalTokens".into(), self.total().into());
        if self.cache_read > 0 {
            m.insert("cacheReadInputTokens".into(), self.cache_read.into());
        }
        if self.cache_write > 0 {
            m.insert("cacheWriteInputTokens".into(), self.cache_write.into());
            let five_minutes = self.cache_write.saturating_sub(self.cache_write_1h);
            let details: Vec<Value> = [("5m", five_minutes), ("1h", self.cache_write_1h)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(ttl, n)| json!({"ttl": ttl, "inputTokens": n}))
                .collect();
            m.insert("cacheDetails".into(), Value::Array(details));
        }
        Value::Object(m)
    }

    /// Anthropic Messages `usage`, which always carries both cache counters.
    fn anthropic_json(&self, output: u64) -> Value {
        json!({
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": output,
        })
    }

    /// What InvokeModelWithResponseStream puts in the decoded JSON of its last chunk.
    fn invocation_metrics_json(&self, latency_ms: u64, first_byte_ms: u64) -> Value {
        json!({
            "inputTokenCount": self.input,
            "outputTokenCount": self.output,
            "invocationLatency": latency_ms,
            "firstByteLatency": first_byte_ms,
            "cacheReadInputTokenCount": self.cache_read,
            "cacheWriteInputTokenCount": self.cache_write,
        })
    }
}

/// The Anthropic Messages API's `usage` (the `/anthropic/v1/messages` answers), members in
/// Anthropic's order: both cache counters always, and the cache writes split by TTL.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AnthropicUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
    cache_creation: CacheCreation,
}

#[derive(Clone, Copy, Debug, Serialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: u64,
    ephemeral_1h_input_tokens: u64,
}

impl AnthropicUsage {
    /// `u`, reporting `output` output tokens (a stream's `message_start` reports 1).
    pub fn new(u: &Usage, output: u64) -> AnthropicUsage {
        let (five_minutes, one_hour) = u.cache_writes_by_ttl();
        AnthropicUsage {
            input_tokens: u.input,
            cache_creation_input_tokens: u.cache_write,
            cache_read_input_tokens: u.cache_read,
            output_tokens: output,
            cache_creation: CacheCreation {
                ephemeral_5m_input_tokens: five_minutes,
                ephemeral_1h_input_tokens: one_hour,
            },
        }
    }
}

/// OpenAI's Chat Completions `usage`: the prompt total counts cached tokens (they are the
/// cache reads; cache writes count as prompt tokens too).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ChatUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
}

#[derive(Clone, Copy, Debug, Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

impl ChatUsage {
    pub fn new(u: &Usage) -> ChatUsage {
        let prompt = u.prompt_total();
        ChatUsage {
            prompt_tokens: prompt,
            completion_tokens: u.output,
            total_tokens: prompt.saturating_add(u.output),
            prompt_tokens_details: CachedTokens {
                cached_tokens: u.cache_read,
            },
        }
    }
}

/// OpenAI's Responses `usage`, counted as [`ChatUsage`] is.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ResponseUsage {
    input_tokens: u64,
    input_tokens_details: CachedTokens,
    output_tokens: u64,
    output_tokens_details: ReasoningTokens,
    total_tokens: u64,
}

#[derive(Clone, Copy, Debug, Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

impl ResponseUsage {
    pub fn new(u: &Usage) -> ResponseUsage {
        let prompt = u.prompt_total();
        ResponseUsage {
            input_tokens: prompt,
            input_tokens_details: CachedTokens {
                cached_tokens: u.cache_read,
            },
            output_tokens: u.output,
            output_tokens_details: ReasoningTokens {
                reasoning_tokens: 0,
            },
            total_tokens: prompt.saturating_add(u.output),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::directives::parse;

    #[test]
    fn defaults_estimate_input_from_body_length() {
        let d = Directive::default();
        assert_eq!(plan(&d, 0).input, 1);
        assert_eq!(plan(&d, 8).input, 2);
        assert_eq!(plan(&d, 9).input, 3);
        assert_eq!(plan(&d, 9).output, 25);
        assert_eq!(plan(&d, 9).cache_read, 0);
    }

    #[test]
    fn converse_usage_without_cache() {
        let u = plan(&parse(b"[[sim input=10 output=5]]").unwrap(), 999);
        assert_eq!(
            u.converse_json(),
            json!({"inputTokens": 10, "outputTokens": 5, "totalTokens": 15})
        );
    }

    #[test]
    fn converse_usage_with_cache_details() {
        let d = parse(b"[[sim input=10 output=5 cache_read=100 cache_write=30 cache_write_1h=12]]")
            .unwrap();
        let u = plan(&d, 0);
        assert_eq!(
            u.converse_json(),
            json!({
                "inputTokens": 10, "outputTokens": 5, "totalTokens": 145,
                "cacheReadInputTokens": 100, "cacheWriteInputTokens": 30,
                "cacheDetails": [{"ttl": "5m", "inputTokens": 18}, {"ttl": "1h", "inputTokens": 12}],
            })
        );
        let only_1h = plan(
            &parse(b"[[sim cache_write=4 cache_write_1h=4]]").unwrap(),
            0,
        );
        assert_eq!(
            only_1h.converse_json()["cacheDetails"],
            json!([{"ttl": "1h", "inputTokens": 4}])
        );
    }

    #[test]
    fn totals_saturate() {
        let d = parse(b"[[sim input=18446744073709551615 output=1]]").unwrap();
        assert_eq!(plan(&d, 0).total(), u64::MAX);
    }

    #[test]
    fn json_api_usages_in_order() {
        let d = parse(b"[[sim input=10 output=5 cache_read=100 cache_write=30 cache_write_1h=12]]")
            .unwrap();
        let u = plan(&d, 0);
        assert_eq!(
            serde_json::to_string(&AnthropicUsage::new(&u, 1)).unwrap(),
            r#"{"input_tokens":10,"cache_creation_input_tokens":30,"cache_read_input_tokens":100,"output_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":18,"ephemeral_1h_input_tokens":12}}"#
        );
        assert_eq!(
            serde_json::to_string(&ChatUsage::new(&u)).unwrap(),
            r#"{"prompt_tokens":140,"completion_tokens":5,"total_tokens":145,"prompt_tokens_details":{"cached_tokens":100}}"#
        );
        assert_eq!(
            serde_json::to_string(&ResponseUsage::new(&u)).unwrap(),
            r#"{"input_tokens":140,"input_tokens_details":{"cached_tokens":100},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":145}"#
        );
    }
}
