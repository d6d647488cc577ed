//! How source keys and per-token prices are read, and profile ratios.

use super::new_entry::ratio;
use super::source::{SourceRates, normalize_key, per_token_to_micros};
use super::*;

#[test]
fn keys() {
    let k = |s: &str| normalize_key(s).map(|(id, r, _)| (id, r));
    assert_eq!(
        k("anthropic.claude-x-v1:0"),
        Some(("anthropic.claude-x-v1:0".into(), None))
    );
    assert_eq!(
        k("bedrock/converse/amazon.nova-lite-v1:0"),
        Some(("amazon.nova-lite-v1:0".into(), None))
    );
    assert_eq!(
        k("bedrock/eu-west-1/meta.llama3-70b-instruct-v1:0"),
        Some((
            "meta.llama3-70b-instruct-v1:0".into(),
            Some("eu-west-1".into())
        ))
    );
    assert_eq!(
        k("bedrock/us-east-1/1-month-commitment/anthropic.claude-v2:1"),
        None
    );
    assert_eq!(
        k("1024-x-1024/50-steps/bedrock/amazon.nova-canvas-v1:0"),
        None
    );
    assert_eq!(k("anthropic.claude-haiku-4-5@20251001"), None);
    assert_eq!(k("gpt-4o"), None);
    // global. beats bare beats bedrock/-routed.
    let rank = |s: &str| normalize_key(s).map(|(_, _, r)| r);
    assert!(rank("global.a.b") < rank("a.b"));
    assert!(rank("a.b") < rank("bedrock/a.b"));
}

#[test]
fn per_token_prices() {
    assert_eq!(per_token_to_micros(3e-06), Some((3_000_000, true)));
    assert_eq!(per_token_to_micros(3.3e-07), Some((330_000, true)));
    assert_eq!(per_token_to_micros(5.46875e-07), Some((546_875, true)));
    assert_eq!(per_token_to_micros(8.75e-09), Some((8_750, true)));
    assert_eq!(per_token_to_micros(1.23456789e-07), Some((123_457, false)));
    assert_eq!(per_token_to_micros(-1.0), None);
}

#[test]
fn ratios() {
    let r = |i, o, cr| SourceRates {
        input: i,
        output: o,
        cache_read: cr,
        ..Default::default()
    };
    assert_eq!(
        ratio(
            &r(300_000, 2_500_000, Some(75_000)),
            &r(330_000, 2_750_000, Some(82_500))
        ),
        Some(Multiplier::from_ten_thousandths(11_000))
    );
    assert_eq!(
        ratio(&r(300_000, 2_500_000, None), &r(330_000, 2_800_000, None)),
        None
    );
    assert_eq!(ratio(&r(0, 1, None), &r(0, 1, None)), None);
}
