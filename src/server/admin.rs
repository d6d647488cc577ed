//! Admin listener: `/metrics` (Prometheus text format), `/healthz`, `/readyz`, and `/rates`
//! (the rate card in use, as JSON).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::aws::error::aws_error;
use crate::metrics::Exposition;
use crate::proxy::State;
use crate::server::listener::BoxError;

pub struct Admin {
    pub state: Arc<State>,
    /// Cleared when shutdown starts, so load balancers stop sending traffic first.
    pub ready: AtomicBool,
}

pub type AdminBody = UnsyncBoxBody<Bytes, BoxError>;

pub async fn handle(admin: Arc<Admin>, req: Request<Incoming>) -> Response<AdminBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return boxed(aws_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "ValidationException",
            "the admin endpoints only answer GET",
        ));
    }
    boxed(match req.uri().path() {
        "/metrics" => return metrics(&admin),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if admin.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        "/rates" => {
            let card = admin.state.rates.load();
            let models: Vec<_> = card
                .models()
                .iter()
                .map(|m| {
                    let mut entry = serde_json::json!({
                        "id": m.id,
                        "name": m.name,
                    });
                    if let serde_json::Value::Object(map) = &mut entry {
                        if m.per_token {
                            for (key, rate) in [
                                ("input", m.rates.input),
                                ("output", m.rates.output),
                                ("cache_read", m.rates.cache_read),
                                ("cache_write", m.rates.cache_write),
                            ] {
                                map.insert(key.into(), micros(rate));
                            }
                            map.insert("caching".into(), m.caching.into());
                        }
                        // Unit prices are USD per unit (an image, a second, a search unit).
                        if !m.units.images.is_empty() {
                            let bands: Vec<_> = m
                                .units
                                .images
                                .iter()
                                .map(|b| {
                                    serde_json::json!({
                                        "quality": b.quality.as_str(),
                                        "max_pixels": b.max_pixels,
                                        "usd": micros(b.price),
                                    })
                                })
                                .collect();
                            map.insert("per_image".into(), bands.into());
                        }
                        if let Some(p) = m.units.video_second {
                            map.insert("per_video_second".into(), micros(p));
                        }
                        if let Some(p) = m.units.search_unit {
                            map.insert("per_search_unit".into(), micros(p));
                        }
                    }
                    entry
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
    })
}

fn boxed(r: Response<Full<Bytes>>) -> Response<AdminBody> {
    r.map(|b| b.map_err(|never| match never {}).boxed_unsync())
}

/// `/metrics`. Rendering thousands of series is CPU work: it is written out a piece at a time,
/// yielding between pieces, so a scrape never holds up the requests being forwarded (on one
/// core as on many).
fn metrics(admin: &Arc<Admin>) -> Response<AdminBody> {
    let body = MetricsBody {
        admin: admin.clone(),
        exposition: admin.state.meter.metrics.exposition(),
        pause: None,
        done: false,
    };
    let mut r = Response::new(body.boxed_unsync());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// About this much text per piece of a scrape: some tens of microseconds of rendering.
const PIECE_BYTES: usize = 32 * 1024;

struct MetricsBody {
    admin: Arc<Admin>,
    exposition: Exposition,
    /// Set after each piece: the other tasks' turn before the next one.
    pause: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    done: bool,
}

impl Body for MetricsBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(pause) = this.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.pause = None;
        }
        if this.done {
            return Poll::Ready(None);
        }
        let mut piece = String::with_capacity(PIECE_BYTES + 4096);
        let metrics = &this.admin.state.meter.metrics;
        match this.exposition.next_piece(metrics, &mut piece, PIECE_BYTES) {
            Ok(more) => {
                this.done = !more;
                // `yield_now` lets the worker poll for I/O before coming back here, so
                // requests that arrived meanwhile go first.
                this.pause = Some(Box::pin(tokio::task::yield_now()));
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(piece)))))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot render metrics");
                this.done = true;
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pause.is_none()
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
