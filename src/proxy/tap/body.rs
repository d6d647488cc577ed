//! A pass-through `http_body::Body` wrapper: hands every frame on unchanged and unbuffered,
//! shows each data frame to a [`Tap`], and finishes the tap exactly once — at the end of the
//! stream, on an upstream error, or from `Drop` when the client goes away.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// How a response body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte reached the client.
    Complete,
    /// The upstream body failed (connection reset, timeout) before its end.
    UpstreamError,
    /// The client went away before the end.
    ClientGone,
}

/// What watches a body. `finish` is called exactly once.
pub trait Tap: Send + 'static {
    fn on_data(&mut self, chunk: &Bytes);
    fn finish(self: Box<Self>, end: End);
}

pin_project! {
    /// The tapped body: the inner body's frames and errors pass through as they are.
    pub struct TapBody<B: Body> {
        #[pin]
        inner: B,
        tap: Option<Box<dyn Tap>>,
    }

    impl<B: Body> PinnedDrop for TapBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // hyper may drop a body it knows is finished (`is_end_stream`) without polling it
            // to the end; that is a complete response, not an abandoned one.
            let end = if this.inner.is_end_stream() {
                End::Complete
            } else {
                End::ClientGone
            };
            finish(this.tap, end);
        }
    }
}

impl<B: Body> TapBody<B> {
    pub fn new(inner: B, tap: Box<dyn Tap>) -> Self {
        TapBody {
            inner,
            tap: Some(tap),
        }
    }
}

fn finish(tap: &mut Option<Box<dyn Tap>>, end: End) {
    if let Some(tap) = tap.take() {
        tap.finish(end);
    }
}

impl<B> Body for TapBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(tap)) = (frame.data_ref(), this.tap.as_mut()) {
                    tap.on_data(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                finish(this.tap, End::UpstreamError);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                finish(this.tap, End::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::listener::BoxError;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Log {
        seen: Vec<u8>,
        ends: Vec<End>,
    }

    struct Recording(Arc<Mutex<Log>>);

    impl Tap for Recording {
        fn on_data(&mut self, chunk: &Bytes) {
            self.0.lock().unwrap().seen.extend_from_slice(chunk);
        }
        fn finish(self: Box<Self>, end: End) {
            self.0.lock().unwrap().ends.push(end);
        }
    }

    type Script = Vec<Result<Frame<Bytes>, BoxError>>;

    fn scripted(items: Script) -> impl Body<Data = Bytes, Error = BoxError> + Unpin {
        StreamBody::new(futures_util::stream::iter(items))
    }

    fn tapped<B: Body>(body: B) -> (TapBody<B>, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        (TapBody::new(body, Box::new(Recording(log.clone()))), log)
    }

    fn data(s: &'static str) -> Result<Frame<Bytes>, BoxError> {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    #[tokio::test]
    async fn passes_bytes_and_finishes_once_on_end() {
        let (body, log) = tapped(scripted(vec![data("ab"), data("cd")]));
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"abcd");
        let log = log.lock().unwrap();
        assert_eq!(log.seen, b"abcd");
        assert_eq!(log.ends, vec![End::Complete]);
    }

    #[tokio::test]
    async fn upstream_error_finishes_once() {
        let (mut body, log) = tapped(scripted(vec![data("ab"), Err("reset".into()), data("x")]));
        assert!(body.frame().await.unwrap().is_ok());
        assert!(body.frame().await.unwrap().is_err());
        drop(body);
        let log = log.lock().unwrap();
        assert_eq!(log.seen, b"ab");
        assert_eq!(log.ends, vec![End::UpstreamError]);
    }

    #[tokio::test]
    async fn dropped_half_way_is_client_gone() {
        let (mut body, log) = tapped(scripted(vec![data("ab"), data("cd")]));
        assert!(body.frame().await.unwrap().is_ok());
        drop(body);
        assert_eq!(log.lock().unwrap().ends, vec![End::ClientGone]);
    }

    #[tokio::test]
    async fn dropped_when_already_at_end_is_complete() {
        let (body, log) = tapped(Full::new(Bytes::new()));
        assert!(body.is_end_stream());
        drop(body);
        assert_eq!(log.lock().unwrap().ends, vec![End::Complete]);
    }
}
