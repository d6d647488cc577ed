//! Tests of `price`.

use super::*;

fn rates(i: u64, o: u64, cr: u64, cw: u64) -> Rates {
    Rates {
        input: i,
        output: o,
        cache_read: cr,
        cache_write: cw,
        cache_write_1h: cw,
    }
}

#[test]
fn table() {
    // (usage, rates in micro-USD per 1M tokens, expected pico-USD total)
    let cases = [
        // Claude 3 Haiku: 1000 in × $0.25/M + 500 out × $1.25/M = $0.000875
        (
            Usage {
                input: 1000,
                output: 500,
                ..Default::default()
            },
            rates(250_000, 1_250_000, 250_000, 250_000),
            875_000_000,
        ),
        // Nova Micro cache read at $0.00875/M: 4 tokens = $0.000000035
        (
            Usage {
                cache_read: 4,
                ..Default::default()
            },
            rates(35_000, 140_000, 8_750, 35_000),
            35_000,
        ),
        // Sonnet 4.5 (us.): 1M in × 3.30 + 1M out × 16.50 + 1M cw × 4.125 + 1M cr × 0.33
        (
            Usage {
                input: 1_000_000,
                output: 1_000_000,
                cache_read: 1_000_000,
                cache_write: 1_000_000,
                cache_write_1h: 0,
            },
            rates(3_300_000, 16_500_000, 330_000, 4_125_000),
            24_255_000_000_000,
        ),
        (Usage::default(), rates(1, 1, 1, 1), 0),
    ];
    for (usage, r, want) in cases {
        assert_eq!(price(&usage, &r).total(), want, "{usage:?}");
    }
}

#[test]
fn by_type_and_saturation() {
    let c = price(
        &Usage {
            input: 3,
            output: 5,
            cache_read: 7,
            cache_write: 11,
            cache_write_1h: 0,
        },
        &rates(2, 3, 4, 5),
    );
    assert_eq!(
        (c.input, c.output, c.cache_read, c.cache_write),
        (6, 15, 28, 55)
    );
    let c = price(
        &Usage {
            input: u64::MAX,
            ..Default::default()
        },
        &rates(2, 0, 0, 0),
    );
    assert_eq!(c.total(), u64::MAX);
}

#[test]
fn one_hour_cache_writes() {
    let r = Rates {
        cache_write: 3_750_000,
        cache_write_1h: 6_000_000,
        ..Default::default()
    };
    let u = Usage {
        cache_write: 1000,
        cache_write_1h: 400,
        ..Default::default()
    };
    assert_eq!(price(&u, &r).cache_write, 600 * 3_750_000 + 400 * 6_000_000);
    // More 1-hour writes than writes: all of them are 1-hour writes.
    let u = Usage {
        cache_write: 10,
        cache_write_1h: 99,
        ..Default::default()
    };
    assert_eq!(u.cache_writes_by_ttl(), (0, 10));
    assert_eq!(price(&u, &r).cache_write, 10 * 6_000_000);
}
