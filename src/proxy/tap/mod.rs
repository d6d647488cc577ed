//! Tap: watches a response body on its way to the client without changing a byte. `body.rs`
//! shows each chunk to the meter's recorder and finishes it exactly once; `eventstream.rs`
//! decodes event-stream frames on the side and hands each event to the API family's reader.

pub mod body;
pub mod eventstream;
pub mod sse;

pub use body::{End, Tap, TapBody};
