use super::*;
use crate::api::MAX_MODEL_ID_LEN;

fn chat(body: &str) -> Asked {
    OpenAi
        .request(Operation::ChatCompletions, None, body.as_bytes())
        .unwrap()
}

fn rewritten(body: &str) -> String {
    String::from_utf8(chat(body).rewrite.unwrap().to_vec()).unwrap()
}

#[test]
fn routes_by_path_and_model_by_body() {
    let r = crate::proxy::route::route(&Method::POST, "/openai/v1/chat/completions").unwrap();
    assert_eq!(
        (r.operation, r.model_id),
        (Operation::ChatCompletions, None)
    );
    let r = crate::proxy::route::route(&Method::POST, "/openai/v1/responses").unwrap();
    assert_eq!(r.operation, Operation::Responses);
    assert!(crate::proxy::route::route(&Method::GET, "/openai/v1/responses").is_none());
    assert!(crate::proxy::route::route(&Method::POST, "/openai/v1/models").is_none());

    let asked = chat(r#"{"model":"openai.gpt-oss-20b-1:0","messages":[]}"#);
    assert_eq!(
        asked,
        Asked {
            model_id: Some("openai.gpt-oss-20b-1:0".into()),
            ..Asked::default()
        }
    );
    for bad in [
        "",
        "{",
        "[]",
        r#"{"messages":[]}"#,
        r#"{"model":"","messages":[]}"#,
        r#"{"model":7}"#,
        r#"{"model":"m","stream":"yes"}"#,
    ] {
        assert!(
            OpenAi
                .request(Operation::ChatCompletions, None, bad.as_bytes())
                .is_err(),
            "{bad}"
        );
    }
    let long = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_MODEL_ID_LEN + 1));
    assert!(
        OpenAi
            .request(Operation::Responses, None, long.as_bytes())
            .is_err()
    );
}

#[test]
fn a_stream_without_usage_is_asked_for_it_by_splicing() {
    assert_eq!(
        rewritten(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
        r#"{"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
    );
    assert_eq!(
        rewritten("  {\n \"model\": \"m\", \"stream\": true, \"stream_options\": null }"),
        "  {\n \"model\": \"m\", \"stream\": true, \"stream_options\": {\"include_usage\":true} }"
    );
    assert_eq!(
        rewritten(
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1},"n":1}"#
        ),
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true,"x":1},"n":1}"#
    );
    let asked = chat(r#"{"model":"m","stream":true,"messages":[]}"#);
    assert!(asked.stream && asked.strip_usage);
    // Asked for by the client: the body goes as it is and nothing is stripped.
    let asked = chat(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#);
    assert!(asked.stream && !asked.strip_usage && asked.rewrite.is_none());
    // Not a stream, or Responses (which always reports usage): nothing to ask for.
    assert_eq!(chat(r#"{"model":"m","stream":false}"#).rewrite, None);
    let asked = OpenAi
        .request(
            Operation::Responses,
            None,
            br#"{"model":"m","stream":true}"#,
        )
        .unwrap();
    assert!(asked.stream && asked.rewrite.is_none());
}

#[test]
fn what_asking_for_usage_added_is_taken_out() {
    let strip = |s: &str| strip_chunk(s.as_bytes());
    assert_eq!(
        strip(
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
        ),
        Strip::Drop
    );
    let chunk = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#;
    let Strip::Cut(cut) = strip(chunk) else {
        panic!("not cut")
    };
    let mut kept = chunk.to_owned();
    kept.replace_range(cut, "");
    assert_eq!(
        kept,
        r#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}"#
    );
    let first = r#"{ "usage" : null , "id":"c","choices":[]}"#;
    let Strip::Cut(cut) = strip(first) else {
        panic!("not cut")
    };
    let mut kept = first.to_owned();
    kept.replace_range(cut, "");
    assert_eq!(kept, r#"{ "id":"c","choices":[]}"#);
    for keep in [
        "[DONE]",
        r#"{"id":"c","choices":[{"index":0}]}"#,
        r#"{"choices":[{"index":0}],"usage":{"prompt_tokens":1}}"#,
        r#"{"choices":[],"x":{"usage":null}}"#,
        "not json",
    ] {
        assert_eq!(strip(keep), Strip::Keep, "{keep}");
    }
}

#[test]
fn cached_tokens_move_out_of_the_prompt_total() {
    let body = br#"{"id":"c","object":"chat.completion","choices":[],
        "usage":{"prompt_tokens":120,"completion_tokens":40,"total_tokens":160,
                 "prompt_tokens_details":{"cached_tokens":100},
                 "completion_tokens_details":{"reasoning_tokens":30}},
        "service_tier":"flex"}"#;
    let found = read_chat(body).unwrap();
    assert_eq!(
        found.usage,
        Some(Usage {
            input: 20,
            output: 40,
            cache_read: 100,
            ..Usage::default()
        })
    );
    assert_eq!(found.served.and_then(|s| s.tier), Some(Tier::Flex));
    assert_eq!(found.stop_reason, None);
    let cut = br#"{"choices":[{"index":0,"finish_reason":"length","message":{}}],
        "usage":{"prompt_tokens":5,"completion_tokens":64}}"#;
    assert_eq!(
        read_chat(cut).unwrap().stop_reason,
        Some(StopReason::MaxTokens)
    );
    let incomplete =
        br#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},
        "usage":{"input_tokens":5,"output_tokens":64}}"#;
    assert_eq!(
        read_response(incomplete).unwrap().stop_reason,
        Some(StopReason::MaxTokens)
    );
    let done = br#"{"status":"completed","usage":{"input_tokens":5,"output_tokens":6}}"#;
    assert_eq!(
        read_response(done).unwrap().stop_reason,
        Some(StopReason::EndTurn)
    );
    let lie = br#"{"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}}}"#;
    assert_eq!(
        read_chat(lie).unwrap().usage,
        Some(Usage {
            input: 0,
            output: 1,
            cache_read: 5,
            ..Usage::default()
        })
    );
    let response = br#"{"id":"r","object":"response","output":[],
        "usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":10},
                 "output_tokens":7,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":57}}"#;
    assert_eq!(
        read_response(response).unwrap().usage,
        Some(Usage {
            input: 40,
            output: 7,
            cache_read: 10,
            ..Usage::default()
        })
    );
    for bad in [
        &b""[..],
        b"{}",
        br#"{"usage":null}"#,
        br#"{"usage":{"prompt_tokens":-1}}"#,
    ] {
        assert_eq!(read_chat(bad), Err(Missing::Unparseable));
        assert_eq!(read_response(bad), Err(Missing::Unparseable));
    }
}

#[test]
fn stream_events() {
    assert_eq!(read_chat_event("", b"[DONE]"), Ok(None));
    assert_eq!(
        read_chat_event(
            "",
            br#"{"choices":[{"delta":{"content":"x"}}],"usage":null}"#
        ),
        Ok(None)
    );
    assert_eq!(
        read_chat_event(
            "",
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#
        ),
        Ok(Some(SseFound::counts(
            Usage {
                input: 3,
                output: 4,
                ..Usage::default()
            }
            .map(Some)
        )))
    );
    assert_eq!(read_chat_event("", br#"{"usage":{"#), Err(Unreadable));
    // The chunk that ends the choice says why; a broken one is skipped, not unreadable.
    let last = br#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}"#;
    assert_eq!(
        read_chat_event("", last).unwrap().and_then(|f| f.stop),
        Some(StopReason::MaxTokens)
    );
    assert_eq!(read_chat_event("", br#"{"finish_reason":"stop""#), Ok(None));
    let cut = br#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":8,"output_tokens":64}}}"#;
    assert_eq!(
        read_response_event("response.incomplete", cut)
            .unwrap()
            .and_then(|f| f.stop),
        Some(StopReason::MaxTokens)
    );
    let completed = br#"{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":8,"output_tokens":2,"input_tokens_details":{"cached_tokens":0}}}}"#;
    assert_eq!(
        read_response_event("response.completed", completed),
        Ok(Some(SseFound::counts(
            Usage {
                input: 8,
                output: 2,
                ..Usage::default()
            }
            .map(Some)
        )))
    );
    assert!(read_response_event("", completed).unwrap().is_some());
    assert_eq!(
        read_response_event(
            "response.output_text.delta",
            br#"{"type":"response.output_text.delta","delta":"usage"}"#
        ),
        Ok(None)
    );
    assert_eq!(
        read_response_event(
            "response.created",
            br#"{"type":"response.created","response":{"usage":null}}"#
        ),
        Ok(None)
    );
}
