use super::*;

fn key() -> FingerprintKey {
    FingerprintKey::from_secret("test")
}

fn prefix_of(body: &str) -> Option<Prefix> {
    facts(body.as_bytes(), &key()).prefix
}

#[test]
fn converse_prefix_is_system_and_tools_and_ignores_the_question() {
    let system = r#"[{"text":"You are a support agent for Example Corp."}]"#;
    let tools = r#"{"tools":[{"toolSpec":{"name":"lookup","inputSchema":{"json":{}}}}]}"#;
    let a = format!(
        r#"{{"system":{system},"toolConfig":{tools},"messages":[{{"role":"user","content":[{{"text":"Where is my order?"}}]}}],"inferenceConfig":{{"maxTokens":512}}}}"#
    );
    let b = format!(
        r#"{{"messages":[{{"role":"user","content":[{{"text":"Cancel it."}}]}}],"system":{system},"toolConfig":{tools}}}"#
    );
    let (pa, pb) = (prefix_of(&a).unwrap(), prefix_of(&b).unwrap());
    assert_eq!(pa, pb, "the same system and tools, in any field order");
    assert_eq!(pa.bytes, (system.len() + tools.len()) as u64);
    assert_eq!(facts(a.as_bytes(), &key()).max_tokens, Some(512));
    // Another key: another fingerprint for the same prefix.
    let other = facts(a.as_bytes(), &FingerprintKey::from_secret("other")).prefix;
    assert_ne!(other.map(|p| p.fingerprint), Some(pa.fingerprint));
    // A different system prompt: a different fingerprint.
    let c = a.replace("Example Corp", "Example Inc");
    assert_ne!(prefix_of(&c).unwrap().fingerprint, pa.fingerprint);
}

#[test]
fn leading_messages_count_up_to_a_cache_point() {
    let doc = r#"{"role":"user","content":[{"text":"<a long document>"},{"cachePoint":{"type":"default"}}]}"#;
    let body = format!(
        r#"{{"messages":[{doc},{{"role":"assistant","content":[{{"text":"ok"}}]}},{{"role":"user","content":[{{"text":"q1"}}]}}]}}"#
    );
    assert_eq!(prefix_of(&body).unwrap().bytes, doc.len() as u64);
    // The words inside a string are not a cache point.
    let text = r#"{"messages":[{"role":"user","content":[{"text":"what is \"cachePoint\"?"}]}]}"#;
    assert_eq!(prefix_of(text), None);
    // Anthropic's cache_control in the system prompt: the whole system is the prefix.
    let anthropic = r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":300,"system":[{"type":"text","text":"rules","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}]}"#;
    let f = facts(anthropic.as_bytes(), &key());
    assert_eq!(f.max_tokens, Some(300));
    assert_eq!(
        f.prefix.map(|p| p.bytes),
        Some(
            r#"[{"type":"text","text":"rules","cache_control":{"type":"ephemeral"}}]"#.len() as u64
        )
    );
}

#[test]
fn openai_leading_system_messages_are_the_prefix() {
    let sys = r#"{"role":"system","content":"Classify the ticket."}"#;
    let body = format!(
        r#"{{"model":"openai.gpt-oss-20b-1:0","messages":[{sys},{{"role":"user","content":"printer on fire"}}],"max_completion_tokens":8}}"#
    );
    let f = facts(body.as_bytes(), &key());
    assert_eq!(f.max_tokens, Some(8));
    assert_eq!(f.prefix.map(|p| p.bytes), Some(sys.len() as u64));
    // No system, no tools, a user question only: no prefix.
    assert_eq!(
        prefix_of(r#"{"messages":[{"role":"user","content":"hi"}]}"#),
        None
    );
    assert_eq!(facts(b"not json", &key()), Facts::default());
}
