//! An exchange that outlives its client: it runs inside the connection's own task while the
//! client waits, and moves to a task of its own only if the client leaves first.
//!
//! A call Bedrock bills must run to completion and be metered even when hyper drops the
//! handler's future (the client went away). Spawning every exchange would guarantee that at
//! the price of a second task, a cross-task wake-up and a join handle per call; detaching on
//! drop gives the same guarantee and spawns only for the calls whose client left.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Response, StatusCode};
use http_body_util::BodyExt;

use crate::aws::error::aws_error;
use crate::proxy::guard::ProxyBody;

type Exchange = Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send + 'static>>;

/// Polls the exchange in place; dropped unfinished, hands it to a task of its own, which
/// drives it to the end (its response is then dropped, which drains and records it as any
/// abandoned response is).
pub struct Detach {
    exchange: Option<Exchange>,
}

impl Detach {
    pub fn new(exchange: impl Future<Output = Response<ProxyBody>> + Send + 'static) -> Self {
        Detach {
            exchange: Some(Box::pin(exchange)),
        }
    }
}

impl Future for Detach {
    type Output = Response<ProxyBody>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(exchange) = self.exchange.as_mut() else {
            return Poll::Ready(failed());
        };
        // A panic is a bug, but it must not take the client's connection (and the other calls
        // on it) down: it is answered 500, as a panicked task was. Its `Pending`, dropped on the
        // way, records the call.
        match std::panic::catch_unwind(AssertUnwindSafe(|| exchange.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(response)) => {
                self.exchange = None;
                Poll::Ready(response)
            }
            Err(_) => {
                tracing::warn!("exchange panicked");
                self.exchange = None;
                Poll::Ready(failed())
            }
        }
    }
}

impl Drop for Detach {
    fn drop(&mut self) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    drop(exchange.await);
                });
            }
            // No runtime (it is shutting down): dropping records the call as cut short.
            Err(_) => drop(exchange),
        }
    }
}

fn failed() -> Response<ProxyBody> {
    aws_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerException",
        "bedrock-meter failed while handling the request",
    )
    .map(|b| b.map_err(|never| match never {}).boxed_unsync())
}
