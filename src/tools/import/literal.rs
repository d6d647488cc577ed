//! The card's rate literals as the importer names them: the rate kinds, and which table of
//! which `[[model]]` entry a rate is written in. A leaf the reader, the matcher and the editor
//! share.

use crate::pricing::units::Rates;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Input,
    Output,
    CacheRead,
    CacheWrite,
    CacheWrite1h,
}

impl Kind {
    pub(super) const ALL: [Kind; 5] = [
        Kind::Input,
        Kind::Output,
        Kind::CacheRead,
        Kind::CacheWrite,
        Kind::CacheWrite1h,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Output => "output",
            Kind::CacheRead => "cache_read",
            Kind::CacheWrite => "cache_write",
            Kind::CacheWrite1h => "cache_write_1h",
        }
    }

    pub(super) fn is_cache(self) -> bool {
        !matches!(self, Kind::Input | Kind::Output)
    }

    pub(super) fn get(self, r: &Rates) -> u64 {
        match self {
            Kind::Input => r.input,
            Kind::Output => r.output,
            Kind::CacheRead => r.cache_read,
            Kind::CacheWrite => r.cache_write,
            Kind::CacheWrite1h => r.cache_write_1h,
        }
    }
}

/// A rate of one `[[model]]` table (by its position in the file), written or to be written:
/// the entry's own, a Region override's or its long context's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Literal {
    pub model: usize,
    pub table: RateTable,
    pub kind: Kind,
}

/// In the order they come in an entry: keys, then `long_context`, then Region sub-tables.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum RateTable {
    Base,
    LongContext,
    Region(String),
}
