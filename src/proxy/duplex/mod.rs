//! Duplex: `InvokeModelWithBidirectionalStream` (Nova Sonic speech to speech), an event stream
//! each way at once over HTTP/2. Nothing is buffered: the client's frames go upstream as each
//! is whole, re-signed with the meter's credentials ([`resign`]), and Bedrock's frames come
//! back as they arrive, tapped for the usage events on the side like any response stream.
//!
//! The call is recorded once, when the response stream ends however it ends (Bedrock's own
//! end, an exception such as the session limit's `modelTimeoutException`, the upstream cut,
//! the client gone), with the last running totals Bedrock reported.
//!
//! Keys mode: the client's SigV4 signature over the request head is checked (its payload hash
//! is the streaming one the SDK chose: the empty body's, `UNSIGNED-PAYLOAD` or
//! `STREAMING-AWS4-HMAC-SHA256-EVENTS`); then every signed frame is checked in the client's own
//! chain, seeded with that signature.

pub mod resign;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{Request, Response, header, request::Parts};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::OwnedSemaphorePermit;

use self::resign::{FrameError, FrameWatch, Resigned};
use crate::api::request::Facts;
use crate::api::{Answer, Asked, Family};
use crate::aws::error::error_chain;
use crate::aws::sigv4::event::FrameChain;
use crate::aws::sigv4::{self, PayloadHash, STREAMING_EVENTS, UNSIGNED_PAYLOAD};
use crate::meter::{Meter, Pending, Source};
use crate::proxy::detach::Detach;
use crate::proxy::errors::ProxyError;
use crate::proxy::forward::{strip_hop_by_hop, upstream_head};
use crate::proxy::guard::{Idle, ProxyBody};
use crate::proxy::handler::{State, destination, guard, refuse};
use crate::proxy::identify::{AuthFailure, UNAUTHENTICATED, Verdict};
use crate::proxy::limits::Worst;
use crate::proxy::tap::TapBody;
use crate::proxy::tap::eventstream::StreamTap;

/// The request body as it goes upstream.
pub type DuplexBody = Resigned<Incoming, Refusals>;
/// The HTTP/2 upstream client of bidirectional streams.
pub type DuplexClient = Client<HttpsConnector<HttpConnector>, DuplexBody>;

/// Counts the frames refused mid-stream, as the auth failures they are.
pub struct Refusals(Arc<Meter>);

impl FrameWatch for Refusals {
    fn refused(&mut self, error: &FrameError) {
        tracing::warn!("bidirectional stream cut: {error}");
        self.0.metrics.auth_failure(error.reason());
    }
}

/// Forwards one bidirectional stream and hands back its response, tapped.
pub async fn forward(
    state: Arc<State>,
    family: &'static dyn Family,
    mut pending: Pending,
    parts: Parts,
    body: Incoming,
    verdict: Option<Verdict>,
    permit: Option<OwnedSemaphorePermit>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    // A session streams both ways; its body is never read for request facts.
    pending.set_request(Facts::default(), true);
    let theirs = match &verdict {
        Some(Verdict::Signed { credentials, .. }) => match client_chain(&parts, credentials) {
            Ok(chain) => Some(chain),
            Err(failure) => {
                pending.set_app(UNAUTHENTICATED);
                return refuse(&state, failure, pending);
            }
        },
        _ => None,
    };
    if let Some(limiter) = &state.limits {
        // A session's size is not known before it ends: it is admitted while its app's
        // counters have room, and settled with what it used.
        let app = pending.app();
        match limiter
            .admit(&app, pending.model_id(), |_| Worst {
                tokens: 0,
                pico: Some(0),
            })
            .await
        {
            Ok(Some(reservation)) => pending.hold(reservation),
            Ok(None) => {}
            Err(refused) => return ProxyError::from(refused).respond(pending),
        }
    }
    let key_region = match &verdict {
        Some(Verdict::Bearer { region, .. } | Verdict::Certificate { region, .. }) => {
            region.as_deref()
        }
        _ => None,
    };
    let (uri, region, credentials) =
        match destination(&state, &parts, key_region, &mut pending).await {
            Ok(d) => d,
            Err(e) => return e.respond(pending),
        };
    // Signed as the Rust SDK signs it: over the empty body's hash, the frames signed on their own.
    let head = match upstream_head(
        &parts,
        uri,
        None,
        &PayloadHash::of(b""),
        &credentials,
        region,
        None,
    ) {
        Ok(head) => head,
        Err(e) => return ProxyError::Signing(e.to_string()).respond(pending),
    };
    let Some(seed) = head
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| sigv4::parse_authorization(v).ok())
        .map(|a| a.signature.to_owned())
    else {
        return ProxyError::Signing("no signature on the upstream request".into()).respond(pending);
    };
    let ours = FrameChain::new(&credentials, region, &seed);
    let body = Resigned::new(body, ours, theirs, Refusals(state.meter.clone()));
    let request = Request::from_parts(head, body);
    pending.add_overhead(started.elapsed());

    let answer = family.answer(pending.operation(), &Asked::default());
    Detach::new(exchange(state, pending, request, answer, permit)).await
}

async fn exchange(
    state: Arc<State>,
    mut pending: Pending,
    request: Request<DuplexBody>,
    answer: Answer,
    permit: Option<OwnedSemaphorePermit>,
) -> Response<ProxyBody> {
    let response =
        match tokio::time::timeout(state.upstream_timeout, state.duplex.request(request)).await {
            Err(_) => return ProxyError::Timeout(state.upstream_timeout).respond(pending),
            Ok(Err(e)) => return ProxyError::Unreachable(error_chain(&e)).respond(pending),
            Ok(Ok(r)) => r,
        };
    let received = Instant::now();
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    pending.set_request_id(
        head.headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok()),
    );
    let source = match (head.status.is_success(), answer) {
        (true, Answer::EventStream(reader)) => Source::Stream(Box::new(StreamTap::new(reader))),
        _ => Source::None,
    };
    pending.add_overhead(received.elapsed());
    let tap = pending.tap(head.status, source);
    let tapped = TapBody::new(Idle::new(body, state.upstream_idle_timeout), tap);
    Response::from_parts(head, guard(&state, tapped, permit))
}

/// Checks the client's signature over the request head and starts the chain its frames are
/// signed in. The payload hash is whichever streaming one the client signed with.
fn client_chain(
    parts: &Parts,
    credentials: &aws_credential_types::Credentials,
) -> Result<FrameChain, AuthFailure> {
    let now = SystemTime::now();
    let sent = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok());
    let candidates = match sent {
        Some(named) => vec![PayloadHash::named(named)],
        None => vec![
            Some(PayloadHash::of(b"")),
            PayloadHash::named(UNSIGNED_PAYLOAD),
            PayloadHash::named(STREAMING_EVENTS),
        ],
    };
    let mut last = AuthFailure::BadSignature;
    for payload in candidates.into_iter().flatten() {
        match crate::proxy::identify::verify_payload(parts, &payload, credentials, now) {
            Ok(()) => {
                let auth = parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| sigv4::parse_authorization(v).ok())
                    .ok_or(AuthFailure::Missing)?;
                return Ok(FrameChain::new(credentials, auth.region, auth.signature));
            }
            Err(failure) => last = failure,
        }
    }
    Err(last)
}
