//! The plain types at the bottom of pricing, used by everything above it: the token types, a
//! request's usage and cost, a model's rates, and what is known of a call (its service tier,
//! scope and model id). They depend on nothing else of the crate.

use std::fmt;
use std::time::SystemTime;

/// The four token types Bedrock reports, in the order of the `type` metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    Input,
    Output,
    CacheRead,
    CacheWrite,
}

impl TokenType {
    pub const ALL: [TokenType; 4] = [
        TokenType::Input,
        TokenType::Output,
        TokenType::CacheRead,
        TokenType::CacheWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Input => "input",
            TokenType::Output => "output",
            TokenType::CacheRead => "cache_read",
            TokenType::CacheWrite => "cache_write",
        }
    }
}

/// One value per kind of token Bedrock reports: input, output, cache reads, cache writes, and
/// the part of those writes made with the 1-hour TTL. The shape of a request's [`Usage`] and of
/// every record and sum of usages (the ledger's `tokens`, the report's totals, the simulator's
/// plan). `input` excludes cache tokens, as Bedrock's `inputTokens` does; `cache_write` counts
/// every cache write whatever its TTL, and `cache_write_1h` the 1-hour part of it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Tokens<T> {
    pub input: T,
    pub output: T,
    pub cache_read: T,
    pub cache_write: T,
    pub cache_write_1h: T,
}

impl<T> Tokens<T> {
    /// The same shape with `f` applied to every value.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Tokens<U> {
        Tokens {
            input: f(self.input),
            output: f(self.output),
            cache_read: f(self.cache_read),
            cache_write: f(self.cache_write),
            cache_write_1h: f(self.cache_write_1h),
        }
    }
}

/// Token usage of one request. A `cache_write_1h` above `cache_write` counts as `cache_write`.
pub type Usage = Tokens<u64>;

impl Tokens<u64> {
    pub fn get(&self, t: TokenType) -> u64 {
        match t {
            TokenType::Input => self.input,
            TokenType::Output => self.output,
            TokenType::CacheRead => self.cache_read,
            TokenType::CacheWrite => self.cache_write,
        }
    }

    /// All prompt-side tokens: input plus cache reads and writes.
    pub fn prompt_total(&self) -> u64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }

    /// Cache writes split by TTL: (5-minute, 1-hour).
    pub fn cache_writes_by_ttl(&self) -> (u64, u64) {
        let one_hour = self.cache_write_1h.min(self.cache_write);
        (self.cache_write - one_hour, one_hour)
    }
}

/// One value per billed token type, in the order of the `type` metric label: the shape of a
/// request's [`Cost`] and of every record and sum of costs (the ledger's `cost_usd_by_type`,
/// the report's totals). `cache_write` covers both TTLs.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PerType<T> {
    pub input: T,
    pub output: T,
    pub cache_read: T,
    pub cache_write: T,
}

impl<T> PerType<T> {
    /// The same shape with `f` applied to every value.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerType<U> {
        PerType {
            input: f(self.input),
            output: f(self.output),
            cache_read: f(self.cache_read),
            cache_write: f(self.cache_write),
        }
    }
}

impl<T: Copy> PerType<T> {
    pub fn get(&self, t: TokenType) -> T {
        match t {
            TokenType::Input => self.input,
            TokenType::Output => self.output,
            TokenType::CacheRead => self.cache_read,
            TokenType::CacheWrite => self.cache_write,
        }
    }
}

/// Cost of one request by token type, in pico-dollars.
pub type Cost = PerType<u64>;

impl PerType<u64> {
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }
}

/// Per-1M-token rates in micro-dollars (USD × 1e6), so prices with up to six decimals are exact.
///
/// Its own type, not a [`Tokens`]: a rate is not a count (here `cache_write` is the 5-minute
/// rate, not all writes), and `price(&usage, &rates)` must not compile with the two swapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    /// Cache writes with the default (5-minute) TTL.
    pub cache_write: u64,
    /// Cache writes with the 1-hour TTL.
    pub cache_write_1h: u64,
}

impl Rates {
    /// Every rate times `m`, each rounded half up to a micro-dollar.
    pub fn scaled(self, m: Multiplier) -> Rates {
        Rates {
            input: m.apply(self.input),
            output: m.apply(self.output),
            cache_read: m.apply(self.cache_read),
            cache_write: m.apply(self.cache_write),
            cache_write_1h: m.apply(self.cache_write_1h),
        }
    }
}

/// Bedrock service tier of a request (`serviceTier.type`, `X-Amzn-Bedrock-Service-Tier`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Standard, on-demand.
    #[default]
    Default,
    Priority,
    Flex,
    /// Reserved capacity: billed per month, not per token.
    Reserved,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Default, Tier::Priority, Tier::Flex, Tier::Reserved];

    /// Case-insensitive; `standard` and `default` are the default tier.
    pub fn parse(s: &str) -> Option<Tier> {
        let s = s.trim();
        let is = |name: &str| s.eq_ignore_ascii_case(name);
        if is("default") || is("standard") {
            Some(Tier::Default)
        } else if is("priority") {
            Some(Tier::Priority)
        } else if is("flex") {
            Some(Tier::Flex)
        } else if is("reserved") {
            Some(Tier::Reserved)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Default => "default",
            Tier::Priority => "priority",
            Tier::Flex => "flex",
            Tier::Reserved => "reserved",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a model was called: in-Region by its bare id, or through a cross-region profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The bare model id (`anthropic.claude-…`), served in the Region called.
    InRegion,
    /// A geographic profile: `us.`, `eu.`, `apac.`, `jp.`, `au.`, `ca.`.
    Geo,
    /// `us-gov.`
    UsGov,
    /// `global.`
    Global,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::InRegion => "in-region",
            Scope::Geo => "geo",
            Scope::UsGov => "us-gov",
            Scope::Global => "global",
        }
    }
}

/// What the pricing needs to know about a request before its usage is known.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The model id as called: a model or profile id, or an ARN.
    pub model_id: &'a str,
    /// The Region the request was signed for (`None`: take it from the ARN, if any).
    pub region: Option<&'a str>,
    /// `performanceConfig.latency = optimized` — as served, if the response says.
    pub latency_optimized: bool,
    /// When the request was made; chooses between entries with `effective_from` dates.
    pub at: SystemTime,
}

/// A non-negative multiplier with at most four decimals, held as ten-thousandths (1.75 → 17500).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Multiplier(u32);

impl Multiplier {
    pub const ONE: Multiplier = Multiplier(SCALE);

    /// From ten-thousandths: `Multiplier::from_ten_thousandths(11_000)` is 1.1.
    pub const fn from_ten_thousandths(n: u32) -> Multiplier {
        Multiplier(n)
    }

    /// A card value: finite, 0 to 1000, at most four decimals.
    pub(crate) fn from_f64(v: f64) -> Result<Multiplier, &'static str> {
        if !v.is_finite() || v < 0.0 {
            return Err("must be a non-negative number");
        }
        if v > 1000.0 {
            return Err("is over 1000; is it a price rather than a multiplier?");
        }
        let scaled = v * f64::from(SCALE);
        let rounded = scaled.round();
        if (scaled - rounded).abs() > 1e-6 * scaled.max(1.0) {
            return Err("has more than 4 decimal places");
        }
        Ok(Multiplier(rounded as u32))
    }

    /// `micros × self`, rounded half up; saturates at `u64::MAX`.
    pub fn apply(self, micros: u64) -> u64 {
        if self == Multiplier::ONE {
            return micros;
        }
        let product = u128::from(micros) * u128::from(self.0) + u128::from(SCALE / 2);
        u64::try_from(product / u128::from(SCALE)).unwrap_or(u64::MAX)
    }
}

const SCALE: u32 = 10_000;

impl fmt::Display for Multiplier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / SCALE, self.0 % SCALE);
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:04}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}
