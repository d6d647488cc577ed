//! Exact money: USD amounts as integers of pico-dollars (1e-12 USD, the ledger's precision) and
//! rates as micro-dollars per 1M tokens, and every way the project writes them out. A leaf.

use std::fmt;

/// An exact amount of USD in pico-dollars. Sums of ledger amounts never go through floating
/// point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pico(pub u128);

const PER_USD: u128 = 1_000_000_000_000;
const FRACTION_DIGITS: usize = 12;

impl Pico {
    /// Parses a plain decimal USD string such as `"0.009735000000"` or `"12"`.
    ///
    /// Digits, with at most one `.` that has digits on both sides; no sign, exponent or
    /// spaces. Fraction digits past the twelfth must be zeros (anything finer than a
    /// pico-dollar would have to be rounded). `None` if the value does not fit.
    pub fn parse_usd(s: &str) -> Option<Pico> {
        let (int, frac) = match s.split_once('.') {
            Some((int, frac)) => (int, frac),
            None => (s, ""),
        };
        let all_digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) || s.ends_with('.') {
            return None;
        }
        let (kept, beyond) = frac.split_at(frac.len().min(FRACTION_DIGITS));
        if beyond.bytes().any(|c| c != b'0') {
            return None;
        }
        let mut value: u128 = 0;
        for c in int.bytes().chain(kept.bytes()) {
            value = value.checked_mul(10)?.checked_add(u128::from(c - b'0'))?;
        }
        for _ in kept.len()..FRACTION_DIGITS {
            value = value.checked_mul(10)?;
        }
        Some(Pico(value))
    }

    /// The amount rounded half up to `decimals` (at most 12) fraction digits, e.g. `0.009735`.
    pub fn usd_rounded(self, decimals: u32) -> String {
        let decimals = decimals.min(FRACTION_DIGITS as u32);
        let unit = 10u128.pow(FRACTION_DIGITS as u32 - decimals);
        let scaled = self.0 / unit + u128::from(self.0 % unit >= unit.div_ceil(2) && unit > 1);
        let one = 10u128.pow(decimals);
        if decimals == 0 {
            return scaled.to_string();
        }
        format!(
            "{}.{:0width$}",
            scaled / one,
            scaled % one,
            width = decimals as usize
        )
    }

    /// `self` as a percentage of `whole`, in hundredths of a percent, rounded half up (62.50 %
    /// is 6250). `None` when `whole` is zero.
    pub fn share_of(self, whole: Pico) -> Option<u128> {
        let (mut part, mut whole) = (self.0, whole.0);
        // Keep part × 20,000 within u128; only absurd amounts lose low bits here.
        while part > u128::MAX / 20_000 {
            part >>= 1;
            whole >>= 1;
        }
        if whole == 0 {
            return None;
        }
        Some((part * 20_000 + whole) / (2 * whole))
    }
}

/// Exact, with all 12 fraction digits: `0.009735000000`, the ledger's own format.
impl fmt::Display for Pico {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:012}", self.0 / PER_USD, self.0 % PER_USD)
    }
}

/// Hundredths of a percent as a decimal string with two fraction digits: 6250 → `62.50`.
pub fn percent(hundredths: u128) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Pico-dollars as USD, for Prometheus and people: the one place money becomes a float.
pub fn pico_to_usd(pico: u128) -> f64 {
    pico as f64 / 1e12
}

/// Pico-dollars as an exact decimal USD string with all 12 fraction digits, the ledger's format:
/// `12_345_000` → `"0.000012345000"`.
pub fn usd(pico: u64) -> String {
    Pico(u128::from(pico)).to_string()
}

/// Pico-dollars as the shortest exact decimal USD string: `0.000063`, `1.5`, `0`.
pub fn usd_trimmed(pico: u64) -> String {
    let full = usd(pico);
    full.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Micro-dollars per 1M tokens as a decimal USD string, trailing zeros trimmed to at least two
/// decimals: 3_000_000 → "3.00", 35_000 → "0.035", 8_750 → "0.00875".
pub fn micros_to_usd_string(micros: u64) -> String {
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    let digits = format!("{frac:06}");
    let trimmed = digits.trim_end_matches('0');
    let frac = if trimmed.len() < 2 {
        &digits[..2]
    } else {
        trimmed
    };
    format!("{whole}.{frac}")
}

#[cfg(test)]
mod tests {
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
}
