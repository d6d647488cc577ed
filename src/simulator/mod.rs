//! Built-in Bedrock Runtime simulator: answers the Runtime operations with deterministic usage,
//! pacing and injectable faults, chosen per request by a `[[sim ...]]` directive in the body,
//! and keeps the ground truth (what it reported) for tests to compare the meter against.
//!
//! Operations: Converse and ConverseStream, InvokeModel and InvokeModelWithResponseStream,
//! InvokeModelWithBidirectionalStream (a Nova Sonic session, `sonic.rs`),
//! CountTokens, ApplyGuardrail, and the APIs that name their model in the JSON body: Chat
//! Completions (`/openai/v1/chat/completions`) and Responses (`/openai/v1/responses`) of the
//! OpenAI-compatible API, and the Anthropic Messages API (`/anthropic/v1/messages`), each whole
//! or, with `"stream": true`, as Server-Sent Events (a Chat Completions stream carries its
//! usage only when `stream_options.include_usage` is `true`). Their answers depend only on the
//! request: fixed `created`, ids hashed from the conversation. A Converse call to a prompt
//! router ARN (`default-prompt-router/NAME`, `prompt-router/ID`) names the model the router
//! chose in `trace.promptRouter.invokedModelId`; the usage is recorded under that model.
//!
//! Directive keys: `input output cache_read cache_write cache_write_1h` (usage), `tier`,
//! `fault=throttle|validation|unknown_model|internal|unavailable|model_error|timeout|malformed|
//! drop|midstream`, `exception` (the mid-stream exception type), `after` (content frames or
//! events before a stream fault), `delay_ms ttft_ms gap_ms chunks` (pacing), `invoked` (the
//! model a prompt router chooses; ignored for other model ids). See `directives.rs`.

mod auth;
mod body;
mod call;
mod converse;
mod directives;
mod eventstream;
mod faults;
mod head;
mod invoke;
mod messages;
mod openai;
mod router;
mod sonic;
mod sse;
mod stats;
mod sts;
mod units;
mod usage;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::body::SimBody;
pub use self::stats::{AssumedRole, METER_IDENTITY, SeenRequest, SimStats};

use self::call::Call;
use self::faults::{bedrock_error, coral_error};
use self::router::Routing;
use self::stats::Recorder;
use self::usage::plan;
use crate::api::{Asked, BadBody, Operation, Route};
use crate::proxy::route::route;
use crate::server::listener::BoxError;

/// Larger bodies than any Bedrock operation accepts are refused rather than buffered.
const MAX_BODY: usize = 64 * 1024 * 1024;
const TIER_HEADER: &str = "x-amzn-bedrock-service-tier";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");

#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Tests use `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// When set, every request must carry a valid SigV4 signature by these credentials
    /// (service `bedrock`, any region, ±15 minutes), as Bedrock would insist.
    pub expect_credentials: Option<Credentials>,
    /// Lifetime of the STS sessions `AssumeRole` hands out, instead of the `DurationSeconds`
    /// asked for (tests of renewal use a short one).
    pub sts_session_lifetime: Option<std::time::Duration>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            expect_credentials: None,
            sts_session_lifetime: None,
        }
    }
}

/// A running simulator; dropping it stops accepting connections.
pub struct Simulator {
    addr: SocketAddr,
    shutdown: CancellationToken,
    shared: Arc<Shared>,
}

struct Shared {
    recorder: Arc<Recorder>,
    expect_credentials: Option<Credentials>,
    requests: AtomicU64,
    sts: sts::Sts,
}

impl Simulator {
    /// Binds `config.listen` and serves in the background of the current Tokio runtime.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            recorder: Arc::new(Recorder::default()),
            expect_credentials: config.expect_credentials,
            requests: AtomicU64::new(0),
            sts: sts::Sts::new(config.sts_session_lifetime),
        });
        let shutdown = CancellationToken::new();
        let handler_shared = shared.clone();
        let handler = move |req: Request<Incoming>, _peer: SocketAddr| {
            let shared = handler_shared.clone();
            async move { Ok(handle(shared, req).await) }
        };
        tokio::spawn(crate::server::listener::serve(
            listener,
            None,
            handler,
            shutdown.clone(),
            crate::server::listener::Limits::default(),
        ));
        Ok(Simulator {
            addr,
            shutdown,
            shared,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, for an SDK's endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> SimStats {
        self.shared.recorder.snapshot()
    }

    /// Makes STS `AssumeRole` fail (503) until called again with `false`.
    pub fn set_sts_down(&self, down: bool) {
        self.shared.sts.set_down(down);
    }

    /// Stops accepting connections; open ones get to finish.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// For the CLI: serves on `listen` until Ctrl-C.
pub async fn run(listen: SocketAddr) -> std::io::Result<()> {
    let sim = Simulator::start(SimulatorConfig {
        listen,
        ..SimulatorConfig::default()
    })
    .await?;
    tracing::info!(url = %sim.url(), "Bedrock Runtime simulator listening");
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<SimBody> {
    let seq = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let (parts, body) = req.into_parts();
    if sts::is_sts(&parts) {
        return assume_role(&shared, &parts, body).await;
    }
    let route = route(&parts.method, parts.uri.path());
    let operation = route.as_ref().map_or("Unknown", |r| r.operation.as_str());
    if let Some(r) = &route
        && r.operation == Operation::InvokeModelWithBidirectionalStream
    {
        shared.recorder.request(operation, seen(&parts, 0));
        let model = r.model_id.clone().unwrap_or_default();
        let mut response = sonic::session(&shared, &parts, body, model);
        if let Ok(id) = HeaderValue::from_str(&request_id(seq)) {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        return response;
    }
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes());
    let body_len = body.as_ref().map_or(0, Bytes::len);
    shared.recorder.request(operation, seen(&parts, body_len));

    let mut response = match body {
        Ok(body) => respond(&shared, &parts, body, route, seq).await,
        Err(e) => bedrock_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &format!("The request body could not be read: {e}"),
        ),
    };
    if let Ok(id) = HeaderValue::from_str(&request_id(seq)) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

async fn respond(
    shared: &Shared,
    parts: &Parts,
    body: Bytes,
    route: Option<Route>,
    seq: u64,
) -> Response<SimBody> {
    // A call signed by one of the sessions STS handed out is checked against that session;
    // any other, against the credentials the simulator expects (the meter's own).
    let session = auth::access_key_id(parts).and_then(|id| shared.sts.session(&id));
    let expected = session
        .as_ref()
        .map(|s| &s.credentials)
        .or(shared.expect_credentials.as_ref());
    if let Some(expected) = expected {
        let verdict = auth::check(parts, &body, expected);
        shared.recorder.signature(verdict.is_ok());
        if let Err(rejection) = verdict {
            return rejection.into_response();
        }
    }
    if route.is_some() {
        let signer = session.as_ref().map_or(METER_IDENTITY, |s| s.name.as_str());
        shared.recorder.signed_by(signer);
    }
    if let Some(route) = &route
        && let Some(refusal) = check_metadata(shared, parts, &body, route, session.as_ref())
    {
        return refusal;
    }
    let Some(route) = route else {
        return coral_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "The requested operation is not recognized by the service.",
        );
    };
    let directive = match directives::parse(&body) {
        Ok(d) => d,
        Err(e) => return faults::validation(&e.to_string()),
    };
    let operation = route.operation;
    let asked = match operation {
        Operation::ChatCompletions | Operation::Responses | Operation::AnthropicMessages => {
            match route
                .family
                .request(operation, route.model_id.as_deref(), &body)
            {
                Ok(asked) => asked,
                Err(BadBody(reason)) => return faults::validation(&reason),
            }
        }
        _ => Asked::default(),
    };
    let delay = directive.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut model = asked.model_id.or(route.model_id).unwrap_or_default();
    let mut invoked_model = None;
    if matches!(operation, Operation::Converse | Operation::ConverseStream) {
        match router::resolve(&model, directive.invoked.as_deref()) {
            Routing::Direct => {}
            Routing::Routed(id) => {
                model.clone_from(&id);
                invoked_model = Some(id);
            }
            Routing::Unknown => return faults::unknown_model(),
        }
    }
    let stream = operation.is_stream() || asked.stream;
    if let Some(response) = directive
        .fault
        .and_then(|f| faults::before_answer(f, stream))
    {
        return response;
    }

    let call = Call {
        model,
        invoked_model,
        usage: plan(&directive, body.len()),
        tier: tier(directive.tier, parts, &body, operation),
        directive,
        seq,
        recorder: shared.recorder.clone(),
    };
    let answer: Result<Response<SimBody>, BoxError> = match operation {
        Operation::Converse => Ok(converse::converse(&call)),
        Operation::ConverseStream => converse::converse_stream(&call).map_err(Into::into),
        Operation::InvokeModel => Ok(match units::per_unit(&call.model) {
            Some(units::PerUnit::Rerank) => match units::rerank(&call, &body) {
                Ok(answer) => units::json(answer),
                Err(reason) => return faults::validation(&reason),
            },
            Some(units::PerUnit::EmbeddingImage) => {
                units::input_image(&call, &body);
                invoke::invoke(&call)
            }
            Some(kind) => units::json(units::image(&call, kind, &body)),
            None => invoke::invoke(&call),
        }),
        Operation::InvokeModelWithResponseStream => {
            invoke::invoke_stream(&call).map_err(Into::into)
        }
        Operation::CountTokens => Ok(invoke::count_tokens(&call)),
        Operation::ApplyGuardrail => {
            let id = parts.uri.path().split('/').nth(2).unwrap_or_default();
            Ok(units::json(units::apply_guardrail(&call, id, body.len())))
        }
        Operation::ChatCompletions => openai::chat(&call, stream, &body).map_err(Into::into),
        Operation::Responses => openai::responses(&call, stream, &body).map_err(Into::into),
        Operation::AnthropicMessages => {
            messages::messages(&call, stream, &body).map_err(Into::into)
        }
        Operation::StartAsyncInvoke => match units::start_async(&call, &body) {
            Ok(answer) => Ok(units::json(answer)),
            Err(reason) => return faults::validation(&reason),
        },
        Operation::InvokeModelWithBidirectionalStream | Operation::Other => {
            Ok(converse::json_response(&json!({})))
        }
    };
    answer.unwrap_or_else(|e| {
        bedrock_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            &format!("The simulator could not encode its answer: {e}"),
        )
    })
}

/// The tier to echo: the directive's, else the one the request asked for (a header, or
/// `serviceTier.type` in a Converse body, or `service_tier` in a Chat Completions, Responses
/// or Messages body).
fn tier(
    directive: Option<&'static str>,
    parts: &Parts,
    body: &[u8],
    operation: Operation,
) -> Option<String> {
    if let Some(t) = directive {
        return Some(t.to_owned());
    }
    let plausible = |t: &str| {
        !t.is_empty()
            && t.len() <= 32
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if let Some(t) = parts.headers.get(TIER_HEADER).and_then(|v| v.to_str().ok())
        && plausible(t)
    {
        return Some(t.to_owned());
    }
    let (field, object) = match operation {
        Operation::Converse | Operation::ConverseStream => ("serviceTier", true),
        Operation::ChatCompletions | Operation::Responses | Operation::AnthropicMessages => {
            ("service_tier", false)
        }
        _ => return None,
    };
    // Only parse bodies that can hold the field: benchmarks push large prompts through here.
    if !body.windows(field.len()).any(|w| w == field.as_bytes()) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let value = value.get(field)?;
    let t = if object {
        value.get("type")?.as_str()?
    } else {
        value.as_str()?
    };
    plausible(t).then(|| t.to_owned())
}

fn seen(parts: &Parts, body_len: usize) -> SeenRequest {
    SeenRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_len,
    }
}

/// UUID-shaped and unique per simulator, like Bedrock's, but reproducible.
fn request_id(seq: u64) -> String {
    format!("00000000-0000-4000-8000-{seq:012x}")
}

/// STS `AssumeRole`, signed by the credentials the simulator expects when it expects some.
async fn assume_role(shared: &Shared, parts: &Parts, body: Incoming) -> Response<SimBody> {
    let Ok(body) = Limited::new(body, 64 * 1024)
        .collect()
        .await
        .map(|c| c.to_bytes())
    else {
        return sts::error(
            StatusCode::BAD_REQUEST,
            "Sender",
            "ValidationError",
            "The request body could not be read.",
        );
    };
    if let Some(expected) = &shared.expect_credentials
        && let Err(rejection) = auth::check_for(parts, &body, expected, "sts")
    {
        return rejection.into_response();
    }
    shared.sts.answer(&body, &shared.recorder)
}

/// Reads a call's request metadata (Converse's `requestMetadata`, InvokeModel's header),
/// refuses it where Bedrock would (not an object of strings), records it, and refuses a call
/// signed by a session for another app than the one its metadata names. `Some`: the refusal.
fn check_metadata(
    shared: &Shared,
    parts: &Parts,
    body: &[u8],
    route: &Route,
    session: Option<&sts::Session>,
) -> Option<Response<SimBody>> {
    type Tags = std::collections::BTreeMap<String, String>;
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "requestMetadata", default)]
        request_metadata: Option<Tags>,
    }
    let metadata = match route.operation {
        // A body that is no JSON at all gets the simulator's usual answer; one that is JSON
        // with a `requestMetadata` that is no object of strings is refused, as Bedrock does.
        Operation::Converse | Operation::ConverseStream => {
            match serde_json::from_slice::<Body>(body) {
                Ok(b) => b.request_metadata,
                Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => None,
                Err(e) => return Some(faults::validation(&format!("requestMetadata: {e}"))),
            }
        }
        Operation::InvokeModel | Operation::InvokeModelWithResponseStream => {
            match parts.headers.get("x-amzn-bedrock-request-metadata") {
                None => None,
                Some(v) => match serde_json::from_slice::<Tags>(v.as_bytes()) {
                    Ok(tags) => Some(tags),
                    Err(e) => {
                        return Some(faults::validation(&format!(
                            "X-Amzn-Bedrock-Request-Metadata: {e}"
                        )));
                    }
                },
            }
        }
        _ => return None,
    };
    let app = metadata.as_ref().and_then(|m| m.get("app")).cloned();
    shared.recorder.metadata(metadata);
    if let (Some(session), Some(app)) = (session, app)
        && session.name != crate::aws::sessions::session_name(&app)
    {
        shared.recorder.identity_mismatch();
        return Some(coral_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            &format!(
                "The call names app {app:?} in its request metadata but is signed by the session of {:?}.",
                session.name
            ),
        ));
    }
    None
}
