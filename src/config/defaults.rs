//! The defaults and bounds of the proxy's settings that the command line shows in its help and
//! checks its values against. A leaf, so `cli` can use it without depending on `config`.

/// Requests in flight before the proxy answers 429 itself.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
/// The largest `--max-in-flight`: what a semaphore can count.
pub const MAX_IN_FLIGHT: usize = tokio::sync::Semaphore::MAX_PERMITS;

/// Bedrock's own request size limit.
pub const DEFAULT_MAX_BODY: usize = 25 * 1024 * 1024;
