//! The AWS protocol pieces the proxy and the simulator share: SigV4 signing and verification,
//! the AWS error shape, and the proxy's own AWS credentials.

pub mod credentials;
pub mod error;
pub mod sessions;
pub mod sigv4;
