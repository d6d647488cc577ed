//! Pricing: the rate card (what each model costs) and the pure function that prices a request.

pub mod card;
pub mod price;

pub use card::{CardError, LoadedCard, ModelPrice, RateCard, Rates};
pub use price::{Cost, TokenType, Usage, price};
