//! The simulator's response body: a whole buffer, a stream of frames fed by a producer task
//! as it paces them, or a body that fails at once so the server cuts the connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use tokio::sync::mpsc;

use crate::server::listener::BoxError;

pub type FrameSender = mpsc::Sender<Result<Bytes, BoxError>>;

pub enum SimBody {
    Full(Full<Bytes>),
    /// Each item is one body chunk; an `Err` aborts the response mid-body. Dropping the
    /// receiver (the client went away) is how the producer learns to stop.
    Channel(mpsc::Receiver<Result<Bytes, BoxError>>),
    Fail,
}

impl SimBody {
    pub fn bytes(b: impl Into<Bytes>) -> SimBody {
        SimBody::Full(Full::new(b.into()))
    }

    /// A body for a producer task, and the sender it writes frames into. One slot, so each
    /// frame is handed to the connection as it is produced rather than queued in bulk.
    pub fn channel() -> (FrameSender, SimBody) {
        let (tx, rx) = mpsc::channel(1);
        (tx, SimBody::Channel(rx))
    }
}

impl From<Full<Bytes>> for SimBody {
    fn from(full: Full<Bytes>) -> SimBody {
        SimBody::Full(full)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("simulated connection drop")]
pub struct Dropped;

impl Body for SimBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            SimBody::Full(full) => match Pin::new(full).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            SimBody::Channel(rx) => rx
                .poll_recv(cx)
                .map(|item| item.map(|chunk| chunk.map(Frame::data))),
            SimBody::Fail => Poll::Ready(Some(Err(Box::new(Dropped)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            SimBody::Full(full) => full.is_end_stream(),
            SimBody::Channel(_) | SimBody::Fail => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(full) => full.size_hint(),
            SimBody::Channel(_) | SimBody::Fail => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn channel_yields_chunks_then_errors() {
        let (tx, mut body) = SimBody::channel();
        tokio::spawn(async move {
            tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
            tx.send(Err(Box::new(Dropped))).await.unwrap();
        });
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "a");
        let second = body.frame().await.unwrap().unwrap_err();
        assert_eq!(second.to_string(), "simulated connection drop");
    }

    #[tokio::test]
    async fn full_and_fail() {
        let body = SimBody::bytes("xyz");
        assert_eq!(body.size_hint().exact(), Some(3));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "xyz");
        assert!(SimBody::Fail.collect().await.is_err());
    }
}
