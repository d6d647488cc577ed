//! The worst a call can use, worked out from its request before it is forwarded: its input
//! tokens estimated from the body's size, its output at the ceiling the request sets.
//!
//! The ceiling is read from the fields every Bedrock request shape uses for it — Converse's
//! `inferenceConfig.maxTokens`, Anthropic's and OpenAI's `max_tokens`,
//! `max_completion_tokens`, `max_output_tokens`, Nova's `inferenceConfig.max_new_tokens`,
//! Titan's `textGenerationConfig.maxTokenCount`, Llama's `max_gen_len`, Claude 2's
//! `max_tokens_to_sample` — by [`crate::api::request`]'s deserializer, which skips everything
//! else without building it; a request that sets none gets the limits file's
//! `default_max_tokens`.

pub use crate::api::request::output_ceiling;

/// The input tokens a body of `len` bytes can hold at `bytes_per_token`, rounded up.
pub fn input_estimate(len: usize, bytes_per_token: u64) -> u64 {
    (len as u64).div_ceil(bytes_per_token.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_of_every_shape() {
        let cases: [(&str, Option<u64>); 10] = [
            (
                r#"{"messages":[],"inferenceConfig":{"maxTokens":300}}"#,
                Some(300),
            ),
            (
                r#"{"anthropic_version":"x","max_tokens":1024,"messages":[]}"#,
                Some(1024),
            ),
            (r#"{"model":"m","max_completion_tokens":77}"#, Some(77)),
            (
                r#"{"model":"m","input":"hi","max_output_tokens":55}"#,
                Some(55),
            ),
            (
                r#"{"messages":[],"inferenceConfig":{"max_new_tokens":9}}"#,
                Some(9),
            ),
            (
                r#"{"inputText":"x","textGenerationConfig":{"maxTokenCount":512}}"#,
                Some(512),
            ),
            (r#"{"prompt":"x","max_gen_len":128}"#, Some(128)),
            (r#"{"prompt":"x","max_tokens_to_sample":200}"#, Some(200)),
            (
                r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#,
                None,
            ),
            (r#"{"max_tokens":"many"}"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(output_ceiling(body.as_bytes()), want, "{body}");
        }
        assert_eq!(output_ceiling(b"not json"), None);
        assert_eq!(input_estimate(10, 3), 4);
        assert_eq!(input_estimate(0, 3), 0);
    }
}
