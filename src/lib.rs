//! bedrock-meter: a live usage-metering proxy for Amazon Bedrock Runtime.
//!
//! The request's path through the modules, in order: [`listener`] → [`route`] → [`identify`]
//! → [`proxy`] (guard) → [`forward`] (re-sign, upstream) → [`tap`] → [`meter`] (with
//! [`pricing`] and [`labels`]) → [`metrics`], exposed by [`admin`]. See ARCHITECTURE.md.

#![forbid(unsafe_code)]

pub mod admin;
pub mod aws_error;
pub mod budget;
pub mod civil;
pub mod cli;
pub mod demo;
pub mod estimate;
pub mod forward;
pub mod guard;
pub mod identify;
pub mod labels;
pub mod ledger;
pub mod listener;
pub mod meter;
pub mod metrics;
pub mod pricing;
pub mod proxy;
pub mod reload;
pub mod report;
pub mod route;
pub mod scrape;
pub mod server;
pub mod sigv4;
pub mod simulator;
pub mod tap;
