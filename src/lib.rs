//! bedrock-meter: a live usage-metering proxy for Amazon Bedrock Runtime.
//!
//! The modules in the order a request meets them: [`server`] (listeners, admin endpoints,
//! reloads) → [`proxy`] (route → identify → guard → forward → tap) → [`meter`] (labels, price,
//! ledger) with [`pricing`] → [`metrics`]. [`api`] says, per API family, which paths are its own
//! and where an answer's usage is; [`aws`] holds the AWS protocol pieces (SigV4, the error
//! shape, credentials). The offline commands live in [`tools`] and the Bedrock simulator in
//! `simulator` (cargo feature `simulator`, on by default); `serve` uses neither. See ARCHITECTURE.md.

#![forbid(unsafe_code)]

pub mod api;
pub mod aws;
pub mod cli;
pub mod config;
pub mod file_error;
pub mod meter;
pub mod metrics;
pub mod money;
pub mod names;
pub mod pricing;
pub mod proxy;
pub mod server;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod time;
pub mod tools;
