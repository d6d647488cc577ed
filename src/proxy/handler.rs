//! The request handler: route → identify → guard → re-sign → upstream → tap → meter.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, header, request::Parts};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::Operation;
use crate::api::request::{self, Facts, FingerprintKey};
use crate::api::stop_scan::StopScan;
use crate::api::{Answer, Asked, BadBody, BodyReader, Family, MetadataSlot, Missing};
use aws_credential_types::Credentials;

use crate::aws::credentials::CredentialCache;
use crate::aws::error::error_chain;
use crate::aws::sessions::Sessions;
use crate::aws::sigv4::{self, PayloadHash};
use crate::meter::prefixes::{BYTES_PER_TOKEN, MIN_CACHE_TOKENS};
use crate::meter::{Meter, Pending, Source};
use crate::money::UsdText;
use crate::pricing::RateCard;
use crate::pricing::Usage;
use crate::proxy::budget::{ByteBudget, Held, HeldBody};
use crate::proxy::detach::Detach;
use crate::proxy::duplex::{self, DuplexClient};
use crate::proxy::errors::ProxyError;
use crate::proxy::forward;
use crate::proxy::forward::upstream::{Upstream, UpstreamClient};
use crate::proxy::forward::{strip_hop_by_hop, upstream_request};
use crate::proxy::guard::ProxyBody;
use crate::proxy::guard::{Guarded, Idle};
use crate::proxy::identify::{
    self, AuthFailure, ClientCertificate, KeyStore, UNAUTHENTICATED, Verdict,
};
use crate::proxy::limits::{Limiter, Worst, worst_case};
use crate::proxy::route::route;
use crate::proxy::tap::TapBody;
use crate::proxy::tap::eventstream::StreamTap;
use crate::proxy::tap::sse::{SseStrip, SseTap};
use crate::server::listener::BoxError;

/// Response header telling a metered non-streaming call's cost (`--cost-header`).
/// The largest JSON answer read whole for its usage; a larger one passes unmetered.
pub const MAX_JSON_COPY: usize = 16 * 1024 * 1024;

pub const COST_HEADER: &str = "x-bedrock-meter-cost-usd";
const REQUEST_ID: &str = "x-amzn-requestid";

/// Everything a request needs, shared by all of them.
pub struct State {
    pub meter: Arc<Meter>,
    pub rates: ArcSwap<RateCard>,
    pub credentials: Arc<CredentialCache>,
    /// Keys mode when set: only requests proven with a virtual key are forwarded.
    pub keys: Option<Arc<KeyStore>>,
    pub client: UpstreamClient,
    /// The HTTP/2 client of bidirectional streams.
    pub duplex: DuplexClient,
    pub upstream: Upstream,
    /// Region used when the client's signature names none.
    pub region: Option<String>,
    pub max_body: usize,
    /// Bodies held in memory at once, across requests (`--max-buffered-bytes`).
    pub buffers: Arc<ByteBudget>,
    /// Longest wait for the upstream's response headers.
    pub upstream_timeout: Duration,
    /// Add `x-bedrock-meter-cost-usd` to metered non-streaming responses.
    pub cost_header: bool,
    /// Requests allowed in flight at once (`--max-in-flight`); past it, 429.
    pub in_flight: Option<Arc<Semaphore>>,
    pub max_in_flight: usize,
    /// Longest silence from the upstream while its response body is being read.
    pub upstream_idle_timeout: Duration,
    /// Longest time to receive a client's whole request body.
    pub client_body_timeout: Duration,
    /// How long a response whose client left is still read, to catch its usage.
    pub abandoned_grace: Duration,
    /// The request metadata key that names the app in each forwarded call (`None`: off).
    pub metadata_key: Option<Box<str>>,
    /// Each app's own STS session to sign with (`--assume-role`).
    pub sessions: Option<Arc<Sessions>>,
    /// Budgets and rate limits per app (`--limits`), checked before a call is forwarded.
    pub limits: Option<Arc<Limiter>>,
    /// The key of the prefix fingerprints (`--fingerprint-key`); `None` when request bodies
    /// are not read for their facts (`--request-facts false`).
    pub fingerprint_key: Option<FingerprintKey>,
}

impl State {
    /// Waits until every ledger line recorded so far is written (bounded).
    pub async fn flush_ledger(self: &Arc<Self>) {
        let state = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(ledger) = &state.meter.ledger {
                ledger.flush(Duration::from_secs(5));
            }
        })
        .await;
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
        Some(store) => match parts
            .extensions
            .get::<ClientCertificate>()
            .and_then(|cert| store.by_certificate(cert))
        {
            Some(verdict) => Ok(Some(verdict)),
            None => store.precheck(&parts.headers, SystemTime::now()).map(Some),
        },
    };
    let app = match &verdict {
        Ok(None) => identify::open::app_name(&parts.headers),
        Ok(Some(
            Verdict::Bearer { app, .. }
            | Verdict::Certificate { app, .. }
            | Verdict::Signed { app, .. },
        )) => Some(&**app),
        Err(_) => Some(UNAUTHENTICATED),
    };
    let mut pending = state.meter.begin(app, op, start, state.rates.load_full());
    // The cap bounds memory: a request is refused before its body is read.
    let permit = match &state.in_flight {
        None => None,
        Some(permits) => match permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                state.meter.metrics.proxy_throttled();
                return ProxyError::Busy(state.max_in_flight).respond(pending);
            }
        },
    };
    let verdict = match verdict {
        Ok(v) => v,
        Err(failure) => return refuse(&state, failure, pending),
    };
    let Some(route) = route else {
        return ProxyError::UnknownOperation(format!("{} {}", parts.method, parts.uri.path()))
            .respond(pending);
    };
    let family = route.family;
    pending.set_model(route.model_id);
    if op == Operation::InvokeModelWithBidirectionalStream {
        // Boxed: its future is several KB, and inline it would size every call's future.
        return Box::pin(duplex::forward(
            state, family, pending, parts, body, verdict, permit,
        ))
        .await;
    }

    // The proxy's own time: everything but the waits for the client's body and the upstream.
    let mut overhead = start.elapsed();
    let (body, held) = match read_body(&parts, body, &state).await {
        Ok(b) => b,
        Err(e) => {
            if matches!(e, ProxyError::BuffersFull(_)) {
                state.meter.metrics.buffer_full();
            }
            return e.respond(pending);
        }
    };
    let body_started = Instant::now();
    // The client's signature (keys mode) covers the body as it came; the proxy signs the body
    // it sends. Hashed once when the two are the same.
    let mut payload = None;
    if let Some(Verdict::Signed { credentials, .. }) = &verdict {
        let hash = PayloadHash::of(&body);
        if let Err(failure) =
            identify::verify_payload(&parts, &hash, credentials, SystemTime::now())
        {
            pending.set_app(UNAUTHENTICATED);
            return refuse(&state, failure, pending);
        }
        payload = Some(hash);
    }
    // Families that name the model in the body (or ask Bedrock for more than the client did)
    // read it now; the client's signature above covered the body as the client sent it.
    let mut asked = match family.request(op, pending.model_id(), &body) {
        Ok(asked) => asked,
        Err(BadBody(reason)) => return ProxyError::BadBody(reason).respond(pending),
    };
    if asked.model_id.is_some() {
        pending.set_model(asked.model_id.take());
    }
    // What the savings levers need (the ledger's facts, the live prefix reuse): the body as
    // the client sent it. Without a ledger only a prefix big enough to cache is counted, and
    // a body smaller than that holds none: it is not read.
    let facts = match &state.fingerprint_key {
        Some(key)
            if state.meter.ledger.is_some()
                || body.len() as u64 >= MIN_CACHE_TOKENS * BYTES_PER_TOKEN =>
        {
            request::facts(&body, key)
        }
        _ => Facts::default(),
    };
    pending.set_request(facts, asked.stream);
    pending.add_units(asked.units);
    if let Some(limiter) = &state.limits {
        // The worst case is worked out from the body as the client sent it, before anything
        // the meter adds.
        let app = pending.app();
        let admitted = limiter
            .admit(&app, pending.model_id(), |file| {
                let output = worst_case::output_ceiling(&body).unwrap_or(file.default_max_tokens);
                let input = worst_case::input_estimate(body.len(), file.bytes_per_token);
                Worst {
                    tokens: input.saturating_add(output),
                    pico: pending.worst_case(input, output),
                }
            })
            .await;
        match admitted {
            Ok(Some(reservation)) => pending.hold(reservation),
            Ok(None) => {}
            Err(refused) => return ProxyError::from(refused).respond(pending),
        }
    }
    let mut body = match asked.rewrite.take() {
        Some(rewritten) => {
            payload = None;
            rewritten
        }
        None => body,
    };
    let mut metadata = None;
    if let Some(key) = &state.metadata_key {
        let app = pending.app();
        match family.metadata(op) {
            MetadataSlot::None => {}
            MetadataSlot::Body => match forward::metadata::body(&body, key, &app) {
                Ok(Some(tagged)) => {
                    body = tagged;
                    payload = None;
                }
                Ok(None) => {}
                Err(BadBody(reason)) => return ProxyError::BadBody(reason).respond(pending),
            },
            MetadataSlot::Header => {
                let sent = parts.headers.get(forward::metadata::HEADER);
                match forward::metadata::header(sent, key, &app) {
                    Ok(value) => metadata = Some(value),
                    Err(BadBody(reason)) => return ProxyError::BadBody(reason).respond(pending),
                }
            }
        }
    }
    let payload = payload.unwrap_or_else(|| PayloadHash::of(&body));
    let key_region = match &verdict {
        Some(Verdict::Bearer { region, .. } | Verdict::Certificate { region, .. }) => {
            region.as_deref()
        }
        _ => None,
    };
    let request = match prepare(
        &state,
        &parts,
        key_region,
        body,
        &payload,
        metadata,
        &mut pending,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return e.respond(pending),
    };
    overhead += body_started.elapsed();
    pending.add_overhead(overhead);

    // From here on the call is Bedrock's to bill: it runs to completion and is metered even if
    // the client leaves meanwhile (hyper drops this future then, and the exchange detaches).
    Detach::new(exchange(
        state, pending, family, asked, request, held, permit,
    ))
    .await
}

/// Sends the signed request upstream and hands back the response, tapped for metering.
async fn exchange(
    state: Arc<State>,
    mut pending: Pending,
    family: &'static dyn Family,
    asked: Asked,
    request: Request<Full<Bytes>>,
    request_held: Held,
    permit: Option<OwnedSemaphorePermit>,
) -> Response<ProxyBody> {
    let response =
        match tokio::time::timeout(state.upstream_timeout, state.client.request(request)).await {
            Err(_) => return ProxyError::Timeout(state.upstream_timeout).respond(pending),
            Ok(Err(e)) => return ProxyError::Unreachable(error_chain(&e)).respond(pending),
            Ok(Ok(r)) => r,
        };
    // The request body has been sent: its bytes are no longer held.
    drop(request_held);
    let received = Instant::now();
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    pending.set_request_id(head.headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()));
    let op = pending.operation();
    if let Some(served) = family.served(op, &head.headers) {
        pending.set_served(served);
    }
    let answer = if head.status.is_success() {
        asked.answer.unwrap_or_else(|| family.answer(op, &asked))
    } else {
        Answer::Unmetered
    };
    let source = match answer {
        Answer::JsonBody(read) => {
            pending.add_overhead(received.elapsed());
            return json_whole(&state, pending, head, body, permit, read).await;
        }
        Answer::Headers(read) => Source::Headers(read(&head.headers), StopScan::default()),
        Answer::Accepted => Source::Known(Ok(Usage::default())),
        Answer::EventStream(reader) => Source::Stream(Box::new(StreamTap::new(reader))),
        Answer::Sse(reader) => Source::Sse(Box::new(SseTap::new(reader))),
        Answer::Unmetered => Source::None,
    };
    // Usage the client did not ask for is taken out again: the body's length changes.
    let strip = asked.strip_usage && matches!(source, Source::Sse(_));
    if strip {
        head.headers.remove(header::CONTENT_LENGTH);
    }
    if let Source::Known(Ok(usage)) | Source::Headers(Ok(usage), _) = &source {
        add_cost_header(&state, &pending, usage, &mut head.headers);
    }
    pending.add_overhead(received.elapsed());
    let tap = pending.tap(head.status, source);
    let tapped = TapBody::new(Idle::new(body, state.upstream_idle_timeout), tap);
    let body = if strip {
        guard(&state, SseStrip::new(tapped, family), permit)
    } else {
        guard(&state, tapped, permit)
    };
    Response::from_parts(head, body)
}

/// A JSON answer (Converse) arrives whole right after its headers (the model has finished), so
/// it is read whole: the usage in it is then known before the client gets the headers, and can
/// be told in `x-bedrock-meter-cost-usd`. Bounded by [`MAX_JSON_COPY`]; a larger body is passed
/// on as it comes, without the header. The upstream idle timeout applies between pieces, as
/// for every response body: a slow but live answer is read to its end.
async fn json_whole(
    state: &State,
    mut pending: Pending,
    mut head: http::response::Parts,
    mut body: Incoming,
    permit: Option<OwnedSemaphorePermit>,
    read_usage: BodyReader,
) -> Response<ProxyBody> {
    let idle = state.upstream_idle_timeout;
    let mut buf = BytesMut::new();
    // Billed already, so never refused: its bytes overdraw the budget if they must.
    let mut held = state.buffers.empty();
    let read = async {
        loop {
            // A deadline per piece (not one for the whole read), without boxing a timer.
            // `Err(None)`: the upstream went silent; `Err(Some(_))`: its body broke.
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Err(None::<hyper::Error>),
                Ok(None) => return Ok(true),
                Ok(Some(frame)) => frame.map_err(Some)?,
            };
            if let Ok(data) = frame.into_data() {
                held.force_grow(data.len());
                buf.extend_from_slice(&data);
                if buf.len() > MAX_JSON_COPY {
                    return Ok(false);
                }
            }
        }
    }
    .await;
    let parsed = Instant::now();
    match read {
        Ok(true) => {
            let bytes = buf.freeze();
            let outcome = read_usage(&bytes).and_then(|found| {
                if let Some(served) = found.served {
                    pending.set_served(served);
                }
                if let Some(invoked) = &found.invoked_model {
                    pending.set_invoked_model(invoked);
                }
                pending.add_units(found.units);
                pending.set_stop_reason(found.stop_reason);
                found.usage.ok_or(Missing::Unparseable)
            });
            if let Ok(usage) = &outcome {
                add_cost_header(state, &pending, usage, &mut head.headers);
            }
            pending.add_overhead(parsed.elapsed());
            pending.finish(head.status, Some(outcome));
            Response::from_parts(
                head,
                HeldBody::new(Full::new(bytes), held)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
        }
        Ok(false) => {
            let tap = pending.tap(head.status, Source::Known(Err(Missing::TooLarge)));
            let body = Prefixed {
                prefix: Some(buf.freeze()),
                rest: body,
            };
            let body = TapBody::new(HeldBody::new(Idle::new(body, idle), held), tap);
            Response::from_parts(head, guard(state, body, permit))
        }
        Err(None) => ProxyError::Timeout(idle).respond_missing(pending),
        Err(Some(e)) => ProxyError::BrokenBody(error_chain(&e)).respond_missing(pending),
    }
}

/// The response body as the client gets it: holding the in-flight permit, drained briefly if
/// the client leaves early.
pub(super) fn guard<B>(state: &State, body: B, permit: Option<OwnedSemaphorePermit>) -> ProxyBody
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    Guarded::new(body, permit, state.abandoned_grace).boxed_unsync()
}

fn add_cost_header(state: &State, pending: &Pending, usage: &Usage, headers: &mut http::HeaderMap) {
    if !state.cost_header {
        return;
    }
    if let Some(cost) = pending.quote(usage)
        && let Ok(value) = HeaderValue::from_bytes(UsdText::new(cost.total()).as_bytes())
    {
        headers.insert(COST_HEADER, value);
    }
}

pin_project_lite::pin_project! {
    /// A body that yields `prefix` first, then the rest of an upstream body.
    struct Prefixed<B> {
        prefix: Option<Bytes>,
        #[pin]
        rest: B,
    }
}

impl<B> hyper::body::Body for Prefixed<B>
where
    B: hyper::body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, B::Error>>> {
        let this = self.project();
        if let Some(prefix) = this.prefix.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(prefix))));
        }
        this.rest.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }
}

pub(super) fn refuse(state: &State, failure: AuthFailure, pending: Pending) -> Response<ProxyBody> {
    state.meter.metrics.auth_failure(failure.reason());
    ProxyError::Auth(failure).respond(pending)
}

/// Reads the whole request body (it must be hashed for the signature), within `--max-body`,
/// `--client-body-timeout` and the byte budget. The declared length is taken from the budget
/// before a byte is read, so a request that cannot fit is refused at once.
async fn read_body(
    parts: &Parts,
    mut body: Incoming,
    state: &State,
) -> Result<(Bytes, Held), ProxyError> {
    let max = state.max_body;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ProxyError::TooLarge(max));
    }
    let declared = declared.map_or(0, |n| usize::try_from(n).unwrap_or(max));
    let full = || ProxyError::BuffersFull(state.buffers.limit());
    let mut held = state.buffers.try_take(declared).ok_or_else(full)?;
    let read = async {
        // A body in one piece (the usual case) is kept as it came, without a copy.
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        let mut len = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ProxyError::BodyRead(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            len += data.len();
            if len > max {
                return Err(ProxyError::TooLarge(max));
            }
            if len > held.bytes() && !held.try_grow(len - held.bytes()) {
                return Err(full());
            }
            match first.take() {
                None if rest.is_empty() => first = Some(data),
                previous => {
                    if let Some(p) = previous {
                        rest.reserve(declared.max(len).saturating_sub(p.len()));
                        rest.extend_from_slice(&p);
                    }
                    rest.extend_from_slice(&data);
                }
            }
        }
        Ok(first.unwrap_or_else(|| rest.freeze()))
    };
    let bytes = tokio::time::timeout(state.client_body_timeout, read)
        .await
        .map_err(|_| ProxyError::BodyTimeout(state.client_body_timeout))??;
    Ok((bytes, held))
}

/// Works out where the request goes and signs it for there.
async fn prepare(
    state: &State,
    parts: &Parts,
    key_region: Option<&str>,
    body: Bytes,
    payload: &PayloadHash,
    metadata: Option<HeaderValue>,
    pending: &mut Pending,
) -> Result<Request<http_body_util::Full<Bytes>>, ProxyError> {
    let (uri, region, credentials) = destination(state, parts, key_region, pending).await?;
    upstream_request(parts, uri, body, payload, &credentials, region, metadata)
        .map_err(|e| ProxyError::Signing(e.to_string()))
}

/// Where the request goes (its Region: the client's SigV4 scope, else the key's, else
/// `--region`) and the credentials to sign it with there.
pub(super) async fn destination<'a>(
    state: &'a State,
    parts: &'a Parts,
    key_region: Option<&'a str>,
    pending: &mut Pending,
) -> Result<(http::Uri, &'a str, Arc<Credentials>), ProxyError> {
    let region = sigv4::region_of(&parts.headers)
        .or(key_region)
        .or(state.region.as_deref())
        .ok_or(ProxyError::NoRegion)?;
    pending.set_region(region);
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = state
        .upstream
        .uri(region, path_and_query)
        .map_err(|e| ProxyError::BadRegion(e.to_string()))?;
    let credentials = match session(state, pending).await {
        Some(c) => c,
        None => state
            .credentials
            .get()
            .await
            .map_err(|e| ProxyError::Signing(e.to_string()))?,
    };
    Ok((uri, region, credentials))
}

/// The app's own session credentials (`--assume-role`); `None` signs with the meter's own,
/// counted when it is because the session could not be had.
async fn session(state: &State, pending: &Pending) -> Option<Arc<Credentials>> {
    let sessions = state.sessions.as_ref()?;
    let app = pending.app();
    let tags = || {
        state
            .keys
            .as_ref()
            .and_then(|keys| keys.tags(&app))
            .map(|tags| tags.to_vec())
            .unwrap_or_default()
    };
    // Boxed: the session cache's future is several KB and only `--assume-role` awaits it;
    // inline it would size every call's future (which hyper moves and keeps a slot for).
    match Box::pin(sessions.get(&app, tags)).await {
        Ok(c) => Some(c),
        Err(_) => {
            state.meter.metrics.assume_role_failure(&app);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    /// hyper moves every request's future into place and keeps a slot of its size on every
    /// open connection (1,000 open streams hold 1,000 of them), so the rare paths' big
    /// futures (the bidirectional stream, the `--assume-role` session fetch) stay boxed.
    #[test]
    fn a_calls_future_stays_small() {
        fn returned<A, B, F>(_: impl Fn(A, B) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let size = returned(super::handle);
        assert!(size <= 4096, "handle's future is {size} bytes");
    }
}
