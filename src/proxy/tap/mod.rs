//! Tap: watches a response body on its way to the client without changing a byte, and reads
//! the token usage Bedrock put in it.

pub mod body;
pub mod eventstream;

pub use body::{End, Tap, TapBody};
