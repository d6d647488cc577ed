//! The request side of a bidirectional stream on its way upstream: the client's event-stream
//! frames, each passed on as soon as it is whole, re-signed with the meter's credentials.
//!
//! A client frame is either signed (headers `:date` and `:chunk-signature` around the encoded
//! message, as the SDKs send it) or the message itself. Either way its message goes upstream
//! in a frame the meter signs, chained from the meter's own request signature. A client proven
//! by its SigV4 signature (keys mode) must sign every frame, and each is checked in the client's
//! chain first; one that is unsigned or does not check ends the stream. Memory: at most one incomplete frame,
//! bounded by [`MAX_FRAME`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use aws_smithy_eventstream::frame::read_message_from;
use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use crate::aws::sigv4::event::{DATE, FrameChain, SIGNATURE, date_of};
use crate::proxy::tap::eventstream::MAX_FRAME;
use crate::server::listener::BoxError;

/// Prelude (total length, headers length, CRC) plus the message CRC.
const MIN_FRAME: usize = 16;

/// Why the request stream was cut.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("a request event-stream frame is malformed")]
    Malformed,
    #[error("a request event-stream frame is larger than {MAX_FRAME} bytes")]
    TooLarge,
    #[error("a request event-stream frame's signature does not match")]
    BadSignature,
    #[error("the request event stream ended inside a frame")]
    Truncated,
}

impl FrameError {
    /// Low-cardinality name, for the auth-failure metric.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::BadSignature => "frame_signature",
            _ => "frame_malformed",
        }
    }
}

/// What the body tells its owner about the frames it saw.
pub trait FrameWatch: Send + 'static {
    /// A frame was refused; the stream ends here.
    fn refused(&mut self, error: &FrameError);
}

pub struct Resigned<B, W> {
    inner: B,
    buf: BytesMut,
    ours: FrameChain,
    /// The client's chain, when its frames are to be checked.
    theirs: Option<FrameChain>,
    watch: W,
    /// The client's body ended (or failed): nothing more is read from it.
    done: bool,
}

impl<B, W> Resigned<B, W> {
    pub fn new(inner: B, ours: FrameChain, theirs: Option<FrameChain>, watch: W) -> Self {
        Resigned {
            inner,
            buf: BytesMut::new(),
            ours,
            theirs,
            watch,
            done: false,
        }
    }
}

impl<B, W: FrameWatch> Resigned<B, W> {
    /// The next whole frame in the buffer, re-signed; `None` until one is whole.
    fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(prelude) = self.buf.get(..4) else {
            return Ok(None);
        };
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
        if total > MAX_FRAME {
            return Err(FrameError::TooLarge);
        }
        if total < MIN_FRAME {
            return Err(FrameError::Malformed);
        }
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let raw = self.buf.split_to(total).freeze();
        let message = read_message_from(raw.clone()).map_err(|_| FrameError::Malformed)?;
        let (mut date, mut signature) = (None, None);
        for header in message.headers() {
            match header.name().as_str() {
                DATE => date = date_of(header.value()),
                SIGNATURE => signature = header.value().as_byte_array().ok(),
                _ => {}
            }
        }
        let payload = match (signature, date) {
            (Some(signature), Some(date)) => {
                if let Some(chain) = &mut self.theirs
                    && !chain.check(message.payload(), date, signature)
                {
                    return Err(FrameError::BadSignature);
                }
                message.payload().clone()
            }
            // A client that signed the head signs its frames (every SDK does): one that does not
            // is not the client that proved the key.
            (None, _) if self.theirs.is_some() => return Err(FrameError::BadSignature),
            // An unsigned frame is the message itself.
            (None, _) => raw,
            (Some(_), None) => return Err(FrameError::Malformed),
        };
        Ok(Some(self.ours.frame(payload, SystemTime::now())))
    }

    fn fail(&mut self, error: FrameError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.watch.refused(&error);
        self.done = true;
        self.buf.clear();
        Poll::Ready(Some(Err(error.into())))
    }
}

impl<B, W> Body for Resigned<B, W>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    W: FrameWatch + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match this.next_frame() {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(Frame::data(frame)))),
                Ok(None) => {}
                Err(e) => return this.fail(e),
            }
            if this.done {
                if this.buf.has_remaining() {
                    return this.fail(FrameError::Truncated);
                }
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(None) => this.done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.buf.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests;
