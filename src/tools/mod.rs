//! The offline commands: `demo`, `estimate`, `report`, `advise` and `rates import`, and the
//! Prometheus text reader the demo and tests use. `serve` never runs any of this.

pub mod advise;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod estimate;
pub mod import;
pub mod report;
pub mod scrape;
