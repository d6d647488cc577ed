//! Exact money: USD amounts as integers of pico-dollars (1e-12 USD, the ledger's precision) and
//! rates as micro-dollars per 1M tokens, and every way the project writes them out. A leaf.
//!
//! Integers, not a decimal crate: a rate in micro-dollars per 1M tokens times a token count is
//! already pico-dollars, so pricing is one exact integer multiply per token type on the hot path
//! and sums are plain `u128` additions; a decimal type (`rust_decimal`) would be exact too, but
//! slower and a dependency for what two integer widths already do.

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
    UsdText::new(pico).as_str().to_owned()
}

/// [`usd_trimmed`]'s text on the stack, for the cost header every call may carry.
pub struct UsdText {
    buf: [u8; 40],
    len: usize,
}

impl UsdText {
    pub fn new(pico: u64) -> UsdText {
        const PICO_PER_USD: u64 = 1_000_000_000_000;
        let (whole, mut frac) = (pico / PICO_PER_USD, pico % PICO_PER_USD);
        let mut buf = [0u8; 40];
        let mut itoa = itoa::Buffer::new();
        let digits = itoa.format(whole).as_bytes();
        buf[..digits.len()].copy_from_slice(digits);
        let mut len = digits.len();
        if frac > 0 {
            // Twelve fraction digits, trailing zeros dropped.
            let mut width = 12;
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            buf[len] = b'.';
            for i in (0..width).rev() {
                buf[len + 1 + i] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            len += 1 + width;
        }
        UsdText { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and a point are written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("0")
    }
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
mod tests;
