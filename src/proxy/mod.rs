//! The proxy's request path, in the order a request meets it: [`route`] → [`identify`] →
//! [`guard`] and [`budget`] → [`limits`] → [`forward`] → [`tap`]. [`handler`] runs the steps and answers the
//! proxy's own errors ([`errors`]).

pub mod budget;
pub mod detach;
pub mod duplex;
pub mod errors;
pub mod forward;
pub mod guard;
pub mod handler;
pub mod identify;
pub mod limits;
pub mod route;
pub mod tap;

pub use guard::ProxyBody;
pub use handler::{COST_HEADER, State, handle};
