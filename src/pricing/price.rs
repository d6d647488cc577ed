//! The price of one request: a pure function of its token usage and its model's rates.
//!
//! Costs are exact integers in pico-dollars (1e-12 USD): a rate is held in micro-dollars per
//! 1M tokens, so `tokens × rate` is already pico-dollars. Floating point appears only when a
//! total is handed to Prometheus.

use super::units::{Cost, Rates, Usage};

/// Prices `usage` at `rates`. Saturates rather than wraps: a usage count near `u64::MAX` is a
/// lie from upstream, and a saturated cost is easier to spot than a wrapped small one.
///
/// This is the arithmetic only; [`Resolved::quote`](super::Resolved::quote) chooses the rates
/// (tier, Region, profile, long context) and applies the model's caching rules first.
pub fn price(usage: &Usage, rates: &Rates) -> Cost {
    let (five_minute, one_hour) = usage.cache_writes_by_ttl();
    Cost {
        input: usage.input.saturating_mul(rates.input),
        output: usage.output.saturating_mul(rates.output),
        cache_read: usage.cache_read.saturating_mul(rates.cache_read),
        cache_write: five_minute
            .saturating_mul(rates.cache_write)
            .saturating_add(one_hour.saturating_mul(rates.cache_write_1h)),
    }
}

#[cfg(test)]
mod tests;
