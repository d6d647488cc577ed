//! End-to-end tests: the simulator on a loopback port, driven over HTTP by a plain hyper
//! client, raw TCP, and the real `aws-sdk-bedrockruntime` client.

use std::time::{Duration, Instant, SystemTime};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const NOVA: &str = "amazon.nova-micro-v1%3A0";
const CLAUDE: &str = "us.anthropic.claude-3-5-haiku-20241022-v1%3A0";
const BEDROCK_NS: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";
const CORAL_NS: &str = "http://internal.amazon.com/coral/com.amazon.coral.service/";

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn sim() -> Simulator {
    Simulator::start(SimulatorConfig::default()).await.unwrap()
}

fn prompt(text: &str) -> String {
    json!({"messages": [{"role": "user", "content": [{"text": text}]}]}).to_string()
}

async fn send(sim: &Simulator, path: &str, body: &str) -> Response<Incoming> {
    let req = Request::post(format!("{}{path}", sim.url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    client().request(req).await.unwrap()
}

async fn post(sim: &Simulator, path: &str, body: &str) -> (StatusCode, HeaderMap, Bytes) {
    let r = send(sim, path, body).await;
    let (parts, body) = r.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

async fn post_json(sim: &Simulator, path: &str, body: &str) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, body) = post(sim, path, body).await;
    (status, headers, serde_json::from_slice(&body).unwrap())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// Decodes event-stream frames as body chunks arrive, noting when each body chunk came.
struct Frames {
    messages: Vec<Message>,
    chunk_times: Vec<Duration>,
    error: Option<String>,
}

async fn read_frames(response: Response<Incoming>, started: Instant) -> Frames {
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    let mut decoder = MessageFrameDecoder::new();
    let mut out = Frames {
        messages: Vec::new(),
        chunk_times: Vec::new(),
        error: None,
    };
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                out.error = Some(format!("body: {e}"));
                break;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                out.chunk_times.push(started.elapsed());
                buf.extend_from_slice(&data);
                loop {
                    match decoder.decode_frame(&mut buf) {
                        Ok(DecodedFrame::Complete(m)) => out.messages.push(m),
                        Ok(DecodedFrame::Incomplete) => break,
                        Err(e) => {
                            out.error = Some(format!("decode: {e}"));
                            return out;
                        }
                    }
                }
            }
        }
    }
    out
}

fn h(m: &Message, name: &str) -> String {
    m.headers()
        .iter()
        .find(|x| x.name().as_str() == name)
        .map(|x| x.value().as_string().unwrap().as_str().to_owned())
        .unwrap_or_default()
}

fn payload(m: &Message) -> Value {
    serde_json::from_slice(m.payload()).unwrap()
}

fn chunk_json(m: &Message) -> Value {
    let p = payload(m);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(p["bytes"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn tokens(stats: &SimStats) -> Vec<(String, &'static str, u64)> {
    stats
        .tokens
        .iter()
        .map(|((m, k), n)| (m.clone(), *k, *n))
        .collect()
}

mod auth;
mod converse;
mod faults;
mod invoke;
mod messages;
mod openai;
mod sdk;
