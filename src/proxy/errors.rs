//! The proxy's own errors: what it answers itself, in AWS's error shape, when it refuses a
//! request or cannot get Bedrock's answer. Each one is recorded with the request. Upstream
//! errors pass through untouched.

use std::time::Duration;

use http::{Response, StatusCode};
use http_body_util::BodyExt;

use super::guard::ProxyBody;
use crate::api::Missing;
use crate::aws::error::aws_error;
use crate::meter::Pending;
use crate::pricing::Usage;
use crate::proxy::identify::AuthFailure;
use crate::proxy::limits::Refused;

/// The errors the proxy itself answers with (listed in docs/errors.md); upstream errors pass
/// through.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    Auth(AuthFailure),
    #[error("{0} is not a Bedrock Runtime operation")]
    UnknownOperation(String),
    #[error("request body is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(Duration),
    #[error("too many requests in flight through bedrock-meter (limit {0}); retry with backoff")]
    Busy(usize),
    #[error(
        "bedrock-meter holds its limit of {0} bytes of request and response bodies (--max-buffered-bytes); retry with backoff"
    )]
    BuffersFull(usize),
    #[error(
        "cannot tell which AWS Region to call: sign the request with SigV4 or start bedrock-meter with --region"
    )]
    NoRegion,
    #[error("{0}")]
    BadRegion(String),
    #[error("bedrock-meter cannot sign the request: {0}")]
    Signing(String),
    #[error("the upstream Bedrock endpoint is unreachable: {0}")]
    Unreachable(String),
    #[error("the upstream Bedrock endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the upstream Bedrock endpoint broke off its answer: {0}")]
    BrokenBody(String),
    /// A body a family must read (the model is named in it) and cannot.
    #[error("{0}")]
    BadBody(String),
    /// The call would pass one of its app's limits (`--limits`).
    #[error("{message}")]
    Limited { message: String, retry_after: u64 },
    /// The limits store (Redis) does not answer and the meter fails closed.
    #[error(
        "bedrock-meter cannot check this app's limits: the limits store does not answer (--limits-fail-closed); retry with backoff"
    )]
    LimitsUnavailable,
}

impl From<Refused> for ProxyError {
    fn from(refused: Refused) -> ProxyError {
        match refused {
            Refused::Over {
                message,
                retry_after,
            } => ProxyError::Limited {
                message,
                retry_after,
            },
            Refused::Unavailable => ProxyError::LimitsUnavailable,
        }
    }
}

impl ProxyError {
    pub fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            ProxyError::Auth(failure) => failure.status_and_type(),
            ProxyError::UnknownOperation(_) => (StatusCode::NOT_FOUND, "UnknownOperationException"),
            ProxyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "ValidationException"),
            ProxyError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "RequestTimeoutException"),
            ProxyError::Busy(_) | ProxyError::Limited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException")
            }
            ProxyError::BuffersFull(_) | ProxyError::LimitsUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
            ),
            ProxyError::BodyRead(_)
            | ProxyError::NoRegion
            | ProxyError::BadRegion(_)
            | ProxyError::BadBody(_) => (StatusCode::BAD_REQUEST, "ValidationException"),
            ProxyError::Signing(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException")
            }
            ProxyError::Unreachable(_) | ProxyError::BrokenBody(_) => {
                (StatusCode::BAD_GATEWAY, "InternalServerException")
            }
            ProxyError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "ModelTimeoutException"),
        }
    }

    pub fn respond(self, pending: Pending) -> Response<ProxyBody> {
        self.respond_with(pending, None)
    }

    /// For a call Bedrock answered with success whose answer could not be read: the usage is
    /// counted missing as well.
    pub fn respond_missing(self, pending: Pending) -> Response<ProxyBody> {
        self.respond_with(pending, Some(Err(Missing::UpstreamError)))
    }

    fn respond_with(
        self,
        pending: Pending,
        outcome: Option<Result<Usage, Missing>>,
    ) -> Response<ProxyBody> {
        let (status, error_type) = self.status_and_type();
        if status.is_server_error() {
            tracing::warn!(%status, error = %self, "request failed");
        } else {
            tracing::debug!(%status, error = %self, "request refused");
        }
        pending.finish(status, outcome);
        let mut response = aws_error(status, error_type, &self.to_string())
            .map(|b| b.map_err(|never| match never {}).boxed_unsync());
        if let ProxyError::Limited { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, (*retry_after).into());
        }
        response
    }
}
