//! Guard: the limits that keep the proxy whole under load and faults, as body wrappers around
//! the response.
//!
//! - [`Idle`] fails an upstream body that sends nothing for too long, so a hung stream ends
//!   (and is recorded) instead of holding a connection forever.
//! - [`Guarded`] carries the request's in-flight permit until its response body is done and,
//!   when the client leaves early, keeps reading the upstream body for a short grace period so
//!   the tap still sees a usage event Bedrock already sent: a call Bedrock bills is counted
//!   even if nobody was left to read its end.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use pin_project_lite::pin_project;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::server::listener::BoxError;

/// The response body as the client gets it, whatever the proxy wrapped around Bedrock's.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The upstream sent nothing for longer than the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("the upstream sent nothing for {0:?}")]
pub struct IdleTimeout(pub Duration);

pin_project! {
    /// A body that fails with [`IdleTimeout`] when no frame arrives within `limit`.
    pub struct Idle<B> {
        #[pin]
        inner: B,
        limit: Duration,
        // Boxed so the wrapper stays `Unpin` when its body is: [`Guarded`] moves the body it
        // drains into a task of its own.
        timer: Pin<Box<Sleep>>,
    }
}

impl<B> Idle<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        Idle {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<B> Body for Idle<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = Instant::now() + *this.limit;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimeout(*this.limit))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body as the client gets it: unchanged, holding the in-flight permit, and
/// drained for `grace` if dropped before its end.
pub struct Guarded<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    inner: Option<B>,
    permit: Option<OwnedSemaphorePermit>,
    grace: Duration,
    ended: bool,
}

impl<B> Guarded<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    pub fn new(inner: B, permit: Option<OwnedSemaphorePermit>, grace: Duration) -> Self {
        Guarded {
            inner: Some(inner),
            permit,
            grace,
            ended: false,
        }
    }
}

impl<B> Body for Guarded<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.ended = true;
                Poll::Ready(Some(Err(e.into())))
            }
            other => other.map(|f| f.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl<B> Drop for Guarded<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else {
            return;
        };
        if self.ended || inner.is_end_stream() || self.grace.is_zero() {
            return;
        }
        // Outside a runtime (never in the proxy) there is nothing to drain with.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let permit = self.permit.take();
        let grace = self.grace;
        runtime.spawn(async move {
            let drain = async {
                while let Some(frame) = inner.frame().await {
                    if frame.is_err() {
                        break;
                    }
                }
            };
            // Past the grace the upstream is dropped: whatever Bedrock has not sent yet, it
            // will not generate either.
            let _ = tokio::time::timeout(grace, drain).await;
            drop(inner);
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use std::sync::Arc;

    // The timers here are tokio's, and nothing else runs: with the clock paused, time moves
    // only when every task waits on a timer, straight to the next deadline. The assertions are
    // on exact virtual durations, whatever the load on the machine.

    #[tokio::test(start_paused = true)]
    async fn idle_fails_a_silent_body_and_resets_on_frames() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let stream = tokio_stream_from(rx);
        let mut body = Idle::new(StreamBody::new(stream), Duration::from_millis(100));
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // 60 ms of silence, within the limit; then a frame, which restarts the limit.
        tokio::time::sleep(Duration::from_millis(60)).await;
        tx.send(Ok(Frame::data(Bytes::from_static(b"b"))))
            .await
            .unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let last_frame = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<IdleTimeout>(), "{err}");
        assert_eq!(err.to_string(), "the upstream sent nothing for 100ms");
        // Exactly the limit after the last frame, not after the first.
        assert_eq!(last_frame.elapsed(), Duration::from_millis(100));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_body_is_drained_then_releases_its_permit() {
        let permits = Arc::new(tokio::sync::Semaphore::new(1));
        let permit = permits.clone().try_acquire_owned().unwrap();
        // Room for one frame: the second send completes only once the drain has read the first.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let body = Guarded::new(
            StreamBody::new(tokio_stream_from(rx)),
            Some(permit),
            Duration::from_secs(5),
        );
        drop(body);
        assert_eq!(permits.available_permits(), 0, "held while draining");
        let dropped = Instant::now();
        for frame in [&b"frames"[..], b"usage"] {
            tx.send(Ok(Frame::data(Bytes::from_static(frame))))
                .await
                .unwrap();
        }
        drop(tx);
        let _released = permits.acquire().await.unwrap();
        // Released when the body ended, with no time passing: not at the grace.
        assert_eq!(dropped.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_body_that_never_ends_is_let_go_after_the_grace() {
        let permits = Arc::new(tokio::sync::Semaphore::new(1));
        let permit = permits.clone().try_acquire_owned().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let body = Guarded::new(
            StreamBody::new(tokio_stream_from(rx)),
            Some(permit),
            Duration::from_secs(5),
        );
        drop(body);
        let dropped = Instant::now();
        let _released = permits.acquire().await.unwrap();
        assert_eq!(dropped.elapsed(), Duration::from_secs(5));
        // The upstream body was dropped with it.
        assert!(tx.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_read_to_its_end_is_not_drained() {
        let permits = Arc::new(tokio::sync::Semaphore::new(1));
        let permit = permits.clone().try_acquire_owned().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let mut body = Guarded::new(
            StreamBody::new(tokio_stream_from(rx)),
            Some(permit),
            Duration::from_secs(5),
        );
        drop(tx);
        assert!(body.frame().await.is_none());
        drop(body);
        assert_eq!(permits.available_permits(), 1, "released on drop");
    }

    /// An mpsc receiver as a `Stream`.
    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Unpin {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
