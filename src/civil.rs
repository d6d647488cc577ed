//! The calendar conversions under their former path, for the callers still importing them from
//! here (`aws::sigv4`, `bench/proxy_bench.rs`); they live in [`crate::time`].

pub use crate::time::{civil_from_days, days_from_civil, is_leap};
