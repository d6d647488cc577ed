//! The rate card lookup with arbitrary calls: any model id (ids, profiles, ARNs, junk), Region,
//! latency mode, time, tier and usage. No panic, and the quote keeps its promises.
//!
//! Input: byte 0 (bit 0: latency-optimized, bits 1-2: tier, bit 3: no Region, bits 4-7: the
//! request time in steps of about 8.5 years from 1970), then UTF-8 lines: the model id, the
//! Region, and up to five token counts (input, output, cache read, cache write, 1-hour cache
//! write) separated by spaces.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use bedrock_meter::pricing::{Call, RateCard, Tier, Usage};
use libfuzzer_sys::fuzz_target;

/// The shipped card, as the proxy loads it.
fn card() -> &'static RateCard {
    static CARD: OnceLock<RateCard> = OnceLock::new();
    CARD.get_or_init(|| {
        RateCard::parse(
            include_str!("../../rates/bedrock.toml"),
            "rates/bedrock.toml",
        )
        .unwrap()
        .card
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let model_id = lines.next().unwrap_or("");
    let region = lines.next().filter(|_| flags & 8 == 0);
    let mut counts = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .map(|n| n.parse::<u64>().unwrap_or(0));
    let mut next = || counts.next().unwrap_or(0);
    let usage = Usage {
        input: next(),
        output: next(),
        cache_read: next(),
        cache_write: next(),
        cache_write_1h: next(),
    };
    let tier = Tier::ALL[usize::from(flags >> 1) & 3];
    let call = Call {
        model_id,
        region,
        latency_optimized: flags & 1 != 0,
        at: UNIX_EPOCH + Duration::from_secs(u64::from(flags >> 4) << 28),
    };

    let card = card();
    let Some(resolved) = card.resolve(&call) else {
        return;
    };
    let quote = resolved.quote(&usage, tier);
    // Pure: the same call and usage always cost the same.
    assert_eq!(
        card.resolve(&call).map(|r| r.quote(&usage, tier)),
        Some(quote)
    );
    // Reserved capacity and provisioned throughput never get a per-token price.
    if tier == Tier::Reserved || resolved.is_provisioned() {
        assert_eq!(quote.cost, None, "{call:?} at {tier}");
    }
    assert_eq!(quote.cost.is_some(), quote.rates.is_some(), "{quote:?}");
    // No tokens, no cost.
    if let Some(zero) = resolved.quote(&Usage::default(), tier).cost {
        assert_eq!(zero.total(), 0);
    }
    if let Some(cost) = quote.cost {
        for part in [cost.input, cost.output, cost.cache_read, cost.cache_write] {
            assert!(cost.total() >= part);
        }
    }
});
