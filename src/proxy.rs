//! The request handler: route → identify → guard → re-sign → upstream → tap → meter.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header, request::Parts};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::aws_error::{aws_error, error_chain};
use crate::forward::credentials::CredentialCache;
use crate::forward::upstream::{Upstream, UpstreamClient};
use crate::forward::{strip_hop_by_hop, upstream_request};
use crate::identify::{self, AuthFailure, KeyStore, UNAUTHENTICATED, Verdict};
use crate::listener::BoxError;
use crate::meter::{Meter, Pending, Source};
use crate::pricing::RateCard;
use crate::route::{Operation, route};
use crate::sigv4;
use crate::tap::TapBody;
use crate::tap::eventstream::{StreamKind, StreamTap};
use crate::tap::usage;

pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Everything a request needs, shared by all of them.
pub struct State {
    pub meter: Arc<Meter>,
    pub rates: ArcSwap<RateCard>,
    pub credentials: Arc<CredentialCache>,
    /// Keys mode when set: only requests proven with a virtual key are forwarded.
    pub keys: Option<Arc<KeyStore>>,
    pub client: UpstreamClient,
    pub upstream: Upstream,
    /// Region used when the client's signature names none.
    pub region: Option<String>,
    pub max_body: usize,
    /// Longest wait for the upstream's response headers.
    pub upstream_timeout: Duration,
}

/// The errors the proxy itself answers with (DESIGN §3.5); upstream errors pass through.
#[derive(Debug, thiserror::Error)]
enum ProxyError {
    #[error("{0}")]
    Auth(AuthFailure),
    #[error("{0} is not a Bedrock Runtime operation")]
    UnknownOperation(String),
    #[error("request body is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("request body could not be read: {0}")]
    BodyRead(String),
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
}

impl ProxyError {
    fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            ProxyError::Auth(failure) => failure.status_and_type(),
            ProxyError::UnknownOperation(_) => (StatusCode::NOT_FOUND, "UnknownOperationException"),
            ProxyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "ValidationException"),
            ProxyError::BodyRead(_) | ProxyError::NoRegion | ProxyError::BadRegion(_) => {
                (StatusCode::BAD_REQUEST, "ValidationException")
            }
            ProxyError::Signing(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException")
            }
            ProxyError::Unreachable(_) => (StatusCode::BAD_GATEWAY, "InternalServerException"),
            ProxyError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "ModelTimeoutException"),
        }
    }

    fn respond(self, pending: Pending) -> Response<ProxyBody> {
        let (status, error_type) = self.status_and_type();
        tracing::debug!(%status, error = %self, "request refused");
        pending.finish(status, None);
        aws_error(status, error_type, &self.to_string())
            .map(|b| b.map_err(|never| match never {}).boxed_unsync())
    }
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<ProxyBody> {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let route = route(&parts.method, parts.uri.path());
    let op = route.as_ref().map_or(Operation::Other, |r| r.operation);

    // Keys mode decides from the headers alone whatever it can, so most refusals read no body.
    let verdict = match &state.keys {
        None => Ok(None),
        Some(store) => store.precheck(&parts.headers, SystemTime::now()).map(Some),
    };
    let app = match &verdict {
        Ok(None) => identify::open::app_name(&parts.headers),
        Ok(Some(Verdict::Bearer { app, .. } | Verdict::Signed { app, .. })) => Some(&**app),
        Err(_) => Some(UNAUTHENTICATED),
    };
    let mut pending = state.meter.begin(app, op, start);
    let verdict = match verdict {
        Ok(v) => v,
        Err(failure) => return refuse(&state, failure, pending),
    };
    let Some(route) = route else {
        return ProxyError::UnknownOperation(format!("{} {}", parts.method, parts.uri.path()))
            .respond(pending);
    };
    let price = route
        .model_id
        .as_deref()
        .and_then(|m| state.rates.load().lookup(m));
    pending.set_model(route.model_id, price);

    let body = match read_body(&parts, body, state.max_body).await {
        Ok(b) => b,
        Err(e) => return e.respond(pending),
    };
    if let Some(Verdict::Signed { credentials, .. }) = &verdict
        && let Err(failure) = identify::verify_body(&parts, &body, credentials, SystemTime::now())
    {
        pending.set_app(UNAUTHENTICATED);
        return refuse(&state, failure, pending);
    }
    let prepared = Instant::now();
    let key_region = match &verdict {
        Some(Verdict::Bearer { region, .. }) => region.as_deref(),
        _ => None,
    };
    let request = match prepare(&state, &parts, key_region, body).await {
        Ok(r) => r,
        Err(e) => return e.respond(pending),
    };
    let mut overhead = prepared.elapsed();

    let response =
        match tokio::time::timeout(state.upstream_timeout, state.client.request(request)).await {
            Err(_) => return ProxyError::Timeout(state.upstream_timeout).respond(pending),
            Ok(Err(e)) => return ProxyError::Unreachable(error_chain(&e)).respond(pending),
            Ok(Ok(r)) => r,
        };
    let received = Instant::now();
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let op = pending.operation();
    let source = if !head.status.is_success() {
        Source::None
    } else {
        match op {
            Operation::Converse => Source::JsonBody,
            Operation::InvokeModel => Source::Known(usage::invoke_headers(&head.headers)),
            Operation::ConverseStream => {
                Source::Stream(Box::new(StreamTap::new(StreamKind::ConverseStream)))
            }
            Operation::InvokeModelWithResponseStream => Source::Stream(Box::new(StreamTap::new(
                StreamKind::InvokeModelWithResponseStream,
            ))),
            _ => Source::None,
        }
    };
    let tap = pending.tap(head.status, source);
    let body = TapBody::new(body, tap).boxed_unsync();
    overhead += received.elapsed();
    state
        .meter
        .metrics
        .proxy_overhead(op, overhead.as_secs_f64());
    Response::from_parts(head, body)
}

fn refuse(state: &State, failure: AuthFailure, pending: Pending) -> Response<ProxyBody> {
    state.meter.metrics.auth_failure(failure.reason());
    ProxyError::Auth(failure).respond(pending)
}

/// Reads the whole request body (it must be hashed for the signature), within the limit.
async fn read_body(parts: &Parts, body: Incoming, max: usize) -> Result<Bytes, ProxyError> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ProxyError::TooLarge(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ProxyError::TooLarge(max)),
        Err(e) => Err(ProxyError::BodyRead(e.to_string())),
    }
}

/// Works out where the request goes and signs it for there.
async fn prepare(
    state: &State,
    parts: &Parts,
    key_region: Option<&str>,
    body: Bytes,
) -> Result<Request<http_body_util::Full<Bytes>>, ProxyError> {
    let region = sigv4::region_of(&parts.headers)
        .or(key_region)
        .or(state.region.as_deref())
        .ok_or(ProxyError::NoRegion)?;
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = state
        .upstream
        .uri(region, path_and_query)
        .map_err(|e| ProxyError::BadRegion(e.to_string()))?;
    let credentials = state
        .credentials
        .get()
        .await
        .map_err(|e| ProxyError::Signing(e.to_string()))?;
    upstream_request(parts, uri, body, &credentials, region)
        .map_err(|e| ProxyError::Signing(e.to_string()))
}
