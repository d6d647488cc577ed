//! Tests of `directives`.

use super::*;
use crate::pricing::Tokens;

#[test]
fn no_directive_is_all_defaults() {
    let d = parse(br#"{"messages":[{"content":[{"text":"hello [[simple]]"}]}]}"#).unwrap();
    assert_eq!(d, Directive::default());
    assert_eq!(d.chunks(), 4);
    assert_eq!(d.after(), 1);
    assert_eq!(d.delay(), Duration::ZERO);
}

#[test]
fn all_keys() {
    let body = br#"{"text":"x [[sim input=10 output=20 cache_read=3 cache_write=7 cache_write_1h=2 tier=priority fault=midstream exception=throttlingException after=2 delay_ms=5 ttft_ms=6 gap_ms=7 chunks=9 invoked=arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0 images=3 content_policy=4 automated_reasoning_policy=1 stop=max_tokens]] y"}"#;
    let d = parse(body).unwrap();
    assert_eq!(
        d,
        Directive {
            tokens: Tokens {
                input: Some(10),
                output: Some(20),
                cache_read: Some(3),
                cache_write: Some(7),
                cache_write_1h: Some(2),
            },
            tier: Some("priority"),
            fault: Some(Fault::Midstream),
            exception: Some("throttlingException"),
            after: Some(2),
            delay_ms: Some(5),
            ttft_ms: Some(6),
            gap_ms: Some(7),
            chunks: Some(9),
            invoked: Some(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"
                    .to_owned()
            ),
            images: Some(3),
            guardrail: [None, Some(4), None, None, None, None, None, Some(1)],
            stop: Some("max_tokens"),
        }
    );
    assert_eq!(d.gap(), Duration::from_millis(7));
    assert!(parse(b"[[sim images=101]]").is_err());
    assert!(parse(b"[[sim content_policy=1 content_policy=2]]").is_err());
}

#[test]
fn empty_directive_and_first_wins() {
    assert_eq!(parse(b"[[sim]]").unwrap(), Directive::default());
    let d = parse(b"[[sim output=1]] [[sim output=2]]").unwrap();
    assert_eq!(d.tokens.output, Some(1));
}

#[test]
fn after_is_clamped_to_chunks() {
    let d = parse(b"[[sim chunks=2 after=5]]").unwrap();
    assert_eq!(d.after(), 2);
}

#[test]
fn every_fault_name() {
    for (name, fault) in [
        ("throttle", Fault::Throttle),
        ("validation", Fault::Validation),
        ("unknown_model", Fault::UnknownModel),
        ("internal", Fault::Internal),
        ("unavailable", Fault::Unavailable),
        ("model_error", Fault::ModelError),
        ("timeout", Fault::Timeout),
        ("malformed", Fault::Malformed),
        ("drop", Fault::Drop),
        ("midstream", Fault::Midstream),
    ] {
        let d = parse(format!("[[sim fault={name}]]").as_bytes()).unwrap();
        assert_eq!(d.fault, Some(fault), "{name}");
    }
}

#[test]
fn errors_name_the_key() {
    let cases: [(&[u8], &str); 13] = [
        (b"[[sim input=abc]]", "input"),
        (b"[[sim output=-1]]", "output"),
        (b"[[sim bogus=1]]", "bogus"),
        (b"[[sim fault=explode]]", "fault"),
        (b"[[sim tier=gold]]", "tier"),
        (b"[[sim exception=nope]]", "exception"),
        (b"[[sim lonely]]", "lonely"),
        (b"[[sim input=1 input=2]]", "input"),
        (b"[[sim input=1", "sim"),
        (b"[[sim cache_write=1 cache_write_1h=2]]", "cache_write_1h"),
        (b"[[sim invoked=]]", "invoked"),
        (b"[[sim invoked=a invoked=b]]", "invoked"),
        ("[[sim invoked=a\u{a0}b]]".as_bytes(), "invoked"),
    ];
    for (body, key) in cases {
        let e = parse(body).unwrap_err();
        assert_eq!(e.key, key, "{}", String::from_utf8_lossy(body));
        assert!(e.to_string().contains(&format!("`{key}`")), "{e}");
    }
    assert_eq!(
        parse(b"[[sim chunks=100001]]").unwrap_err().to_string(),
        "invalid simulator directive key `chunks`: 100001 is more than 100000"
    );
    assert_eq!(
        parse(b"[[sim delay_ms=86400001]]").unwrap_err().key,
        "delay_ms"
    );
    let longest = format!("[[sim invoked={}]]", "m".repeat(2048));
    assert_eq!(
        parse(longest.as_bytes()).unwrap().invoked.unwrap().len(),
        2048
    );
    let too_long = format!("[[sim invoked={}]]", "m".repeat(2049));
    assert_eq!(
        parse(too_long.as_bytes()).unwrap_err().to_string(),
        "invalid simulator directive key `invoked`: is 2049 bytes, more than 2048"
    );
}

#[test]
fn binary_bodies_are_fine() {
    let mut body = vec![0xff, 0x00, 0xfe];
    body.extend_from_slice(b"[[sim output=3]]");
    body.push(0x80);
    assert_eq!(parse(&body).unwrap().tokens.output, Some(3));
    assert_eq!(parse(&[0xff; 10]).unwrap(), Directive::default());
    assert_eq!(parse(b"[[sim input=\xff]]").unwrap_err().key, "sim");
}
