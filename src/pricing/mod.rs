//! Pricing: the rate card (what each model costs, by Region, profile, tier, latency mode, context
//! length and date), how a call resolves to its entry, and the pure function that prices a
//! request. Costs are exact integers (pico-dollars); see `docs/rate-card.md`.

pub mod billing_units;
pub mod card;
pub mod date;
pub mod entry;
pub mod model_id;
pub mod price;
pub mod resolve;
pub mod units;

pub use card::{ArnMapping, CardError, CardErrors, LoadedCard, RateCard, STALE_AFTER_DAYS};
pub use date::{CardDate, utc_date};
pub use entry::{Adjust, LongContext, ModelPrice, Profiles, RegionPrice, Tiers};
pub use model_id::split_profile;
pub use price::price;
pub use resolve::{Quote, Resolved};
pub use units::{Call, Cost, Multiplier, PerType, Rates, Scope, Tier, TokenType, Tokens, Usage};
