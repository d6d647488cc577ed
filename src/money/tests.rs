//! Tests of `money`.

use super::*;

fn p(s: &str) -> Pico {
    Pico::parse_usd(s).unwrap_or_else(|| panic!("should parse: {s}"))
}

#[test]
fn parses_exact_decimals() {
    assert_eq!(p("0.009735000000"), Pico(9_735_000_000));
    assert_eq!(p("0.000000000001"), Pico(1));
    assert_eq!(p("1"), Pico(PER_USD));
    assert_eq!(p("12.5"), Pico(12_500_000_000_000));
    assert_eq!(p("0.0000105"), Pico(10_500_000));
    assert_eq!(p("007.000000000000000"), Pico(7 * PER_USD));
    assert_eq!(p("0"), Pico(0));
}

#[test]
fn rejects_non_decimals() {
    for bad in [
        "",
        ".",
        ".5",
        "5.",
        "-1",
        "+1",
        "1e3",
        " 1",
        "1 ",
        "1.2.3",
        "0x10",
        "NaN",
        "0.0000000000001",
        "1,5",
        "١",
    ] {
        assert_eq!(Pico::parse_usd(bad), None, "accepted {bad:?}");
    }
}

#[test]
fn rejects_overflow_without_panicking() {
    let huge = "9".repeat(40);
    assert_eq!(Pico::parse_usd(&huge), None);
    assert_eq!(Pico::parse_usd(&format!("{huge}.5")), None);
    // u128::MAX pico-dollars is about 3.4e26 USD.
    assert_eq!(
        Pico::parse_usd("340282366920938463463374607.431768211455"),
        Some(Pico(u128::MAX))
    );
    assert_eq!(
        Pico::parse_usd("340282366920938463463374607.431768211456"),
        None
    );
}

#[test]
fn many_picodollars_sum_exactly() {
    // 0.1 + 0.2 style drift would show here if floating point were involved.
    let one = p("0.000000000001");
    let total = (0..1_000_000).fold(Pico(0), |acc, _| Pico(acc.0 + one.0));
    assert_eq!(total.to_string(), "0.000001000000");
    let tenth = p("0.1");
    let total = (0..10).fold(Pico(0), |acc, _| Pico(acc.0 + tenth.0));
    assert_eq!(total.to_string(), "1.000000000000");
}

#[test]
fn displays_exactly() {
    assert_eq!(Pico(0).to_string(), "0.000000000000");
    assert_eq!(Pico(1).to_string(), "0.000000000001");
    assert_eq!(Pico(123 * PER_USD + 45).to_string(), "123.000000000045");
    assert_eq!(Pico(u128::MAX).to_string().len(), 40);
}

#[test]
fn rounds_half_up_for_display() {
    assert_eq!(p("0.0000175").usd_rounded(6), "0.000018");
    assert_eq!(p("0.0000174999").usd_rounded(6), "0.000017");
    assert_eq!(p("0.9999995").usd_rounded(6), "1.000000");
    assert_eq!(p("2.5").usd_rounded(0), "3");
    assert_eq!(p("0.123456789012").usd_rounded(12), "0.123456789012");
    assert_eq!(p("0.123456789012").usd_rounded(40), "0.123456789012");
    assert_eq!(
        Pico(u128::MAX).usd_rounded(2),
        "340282366920938463463374607.43"
    );
}

#[test]
fn shares_in_hundredths_of_a_percent() {
    assert_eq!(Pico(5).share_of(Pico(8)), Some(6_250));
    assert_eq!(Pico(1).share_of(Pico(3)), Some(3_333));
    assert_eq!(Pico(2).share_of(Pico(3)), Some(6_667));
    assert_eq!(Pico(0).share_of(Pico(3)), Some(0));
    assert_eq!(Pico(3).share_of(Pico(3)), Some(10_000));
    assert_eq!(Pico(0).share_of(Pico(0)), None);
    assert_eq!(Pico(u128::MAX).share_of(Pico(u128::MAX)), Some(10_000));
    assert_eq!(Pico(u128::MAX).share_of(Pico(1)), None);
    assert_eq!(percent(6_250), "62.50");
    assert_eq!(percent(5), "0.05");
}

#[test]
fn exact_strings() {
    assert_eq!(usd(12_345_000), "0.000012345000");
    assert_eq!(usd(0), "0.000000000000");
    assert_eq!(usd(1), "0.000000000001");
    assert_eq!(usd(1_500_000_000_000), "1.500000000000");
    assert_eq!(usd(u64::MAX), "18446744.073709551615");
    assert_eq!(usd_trimmed(63_000_000), "0.000063");
    assert_eq!(usd_trimmed(1_500_000_000_000), "1.5");
    assert_eq!(usd_trimmed(0), "0");
    assert_eq!(usd_trimmed(10_000_000_000_000), "10");
    assert_eq!(usd_trimmed(1), "0.000000000001");
    assert_eq!(usd_trimmed(u64::MAX), "18446744.073709551615");
    for pico in [
        0,
        1,
        9,
        10,
        999_999,
        63_000_000,
        1_000_000_000_001,
        123_456_789_012_345,
    ] {
        let full = usd(pico);
        let expected = full.trim_end_matches('0').trim_end_matches('.');
        assert_eq!(usd_trimmed(pico), expected, "{pico}");
    }
    assert_eq!(pico_to_usd(875_000_000), 0.000875);
}

#[test]
fn rate_strings() {
    assert_eq!(micros_to_usd_string(3_000_000), "3.00");
    assert_eq!(micros_to_usd_string(3_300_000), "3.30");
    assert_eq!(micros_to_usd_string(35_000), "0.035");
    assert_eq!(micros_to_usd_string(8_750), "0.00875");
    assert_eq!(micros_to_usd_string(4_125_000), "4.125");
    assert_eq!(micros_to_usd_string(0), "0.00");
    assert_eq!(micros_to_usd_string(546_875), "0.546875");
}
