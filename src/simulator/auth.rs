//! Checking a request's SigV4 signature against the credentials the simulator expects,
//! answering with the errors AWS's front end uses when it does not hold up.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use http::request::Parts;
use http::{Response, StatusCode, header};

use super::body::SimBody;
use super::faults::coral_error;
use crate::aws::sigv4::{self, SigV4Error};

/// AWS accepts requests signed up to 15 minutes either side of its clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

const UNRECOGNIZED: &str = "The security token included in the request is invalid.";
const MISMATCH: &str = "The request signature we calculated does not match the signature you \
                        provided. Check your AWS Secret Access Key and signing method. Consult \
                        the service documentation for details.";

/// Why a request's signature was refused.
#[derive(Debug)]
pub struct Rejection {
    error_type: &'static str,
    message: String,
}

impl Rejection {
    pub fn into_response(self) -> Response<SimBody> {
        coral_error(StatusCode::FORBIDDEN, self.error_type, &self.message)
    }
}

fn unrecognized() -> Rejection {
    Rejection {
        error_type: "UnrecognizedClientException",
        message: UNRECOGNIZED.to_owned(),
    }
}

fn invalid(message: &str) -> Rejection {
    Rejection {
        error_type: "InvalidSignatureException",
        message: message.to_owned(),
    }
}

/// The key id a SigV4 request is signed with, if it is one.
pub fn access_key_id(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    sigv4::parse_authorization(value)
        .ok()
        .map(|auth| auth.access_key_id.to_owned())
}

/// Checks a Bedrock Runtime request's signature (service `bedrock`).
pub fn check(parts: &Parts, body: &[u8], expected: &Credentials) -> Result<(), Rejection> {
    check_for(parts, body, expected, sigv4::SERVICE)
}

/// Checks a request's signature by `expected`, scoped to `service`.
pub fn check_for(
    parts: &Parts,
    body: &[u8],
    expected: &Credentials,
    service: &str,
) -> Result<(), Rejection> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(unrecognized());
    };
    let Ok(value) = value.to_str() else {
        return Err(invalid("Authorization header is not ASCII."));
    };
    // A Bedrock API key: the simulator knows none, so it is as unknown as a foreign key id.
    if value.starts_with("Bearer ") {
        return Err(unrecognized());
    }
    let auth = sigv4::parse_authorization(value).map_err(|e| invalid(&e.to_string()))?;
    if auth.access_key_id != expected.access_key_id() {
        return Err(unrecognized());
    }
    if auth.service != service {
        return Err(invalid(&format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    match sigv4::verify(parts, body, expected, SystemTime::now(), MAX_SKEW) {
        Ok(()) => Ok(()),
        Err(SigV4Error::Mismatch) => Err(invalid(MISMATCH)),
        Err(SigV4Error::Missing) => Err(unrecognized()),
        Err(e) => Err(invalid(&e.to_string())),
    }
}
