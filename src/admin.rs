//! Admin listener: `/metrics` (Prometheus text format), `/healthz`, `/readyz`, and `/rates`
//! (the rate card in use, as JSON).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::aws_error::aws_error;
use crate::proxy::State;

pub struct Admin {
    pub state: Arc<State>,
    /// Cleared when shutdown starts, so load balancers stop sending traffic first.
    pub ready: AtomicBool,
}

pub async fn handle(admin: Arc<Admin>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return aws_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "ValidationException",
            "the admin endpoints only answer GET",
        );
    }
    match req.uri().path() {
        // Rendering thousands of series is CPU work: it runs on the blocking pool so a scrape
        // never holds up a worker that is forwarding requests.
        "/metrics" => match tokio::task::spawn_blocking({
            let admin = admin.clone();
            move || {
                admin
                    .state
                    .meter
                    .metrics
                    .render()
                    .map_err(|e| e.to_string())
            }
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        {
            Ok(text) => with_type(
                Response::new(Full::new(Bytes::from(text))),
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            Err(e) => aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                &format!("cannot render metrics: {e}"),
            ),
        },
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if admin.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        "/rates" => {
            let card = admin.state.rates.load();
            let models: Vec<_> = card
                .models()
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "id": m.id,
                        "name": m.name,
                        "input": micros(m.rates.input),
                        "output": micros(m.rates.output),
                        "cache_read": micros(m.rates.cache_read),
                        "cache_write": micros(m.rates.cache_write),
                        "caching": m.caching,
                    })
                })
                .collect();
            let body = serde_json::json!({
                "version": card.version,
                "currency": "USD",
                "unit": "USD per 1M tokens",
                "models": models,
            });
            with_type(
                Response::new(Full::new(Bytes::from(body.to_string()))),
                "application/json",
            )
        }
        other => aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            &format!("{other} is not an admin endpoint (try /metrics, /healthz, /readyz, /rates)"),
        ),
    }
}

/// Micro-dollars per 1M tokens as a JSON number of USD.
fn micros(v: u64) -> serde_json::Value {
    serde_json::Value::from(v as f64 / 1e6)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = with_type(
        Response::new(Full::new(Bytes::from_static(body.as_bytes()))),
        "text/plain",
    );
    *r.status_mut() = status;
    r
}

fn with_type(mut r: Response<Full<Bytes>>, content_type: &'static str) -> Response<Full<Bytes>> {
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
