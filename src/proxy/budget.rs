//! The byte budget (`--max-buffered-bytes`): one limit on the request and response bodies the
//! proxy holds in memory at once, across all requests.
//!
//! `--max-body` bounds one request and `--max-in-flight` bounds how many there are, but their
//! product (4,096 × 25 MiB with the defaults, plus a Converse answer each) is far more memory
//! than any machine has: a few clients sending large bodies at once could exhaust it. So every
//! buffered byte is taken from this budget first.
//!
//! - A request body is taken before it is read: its declared `Content-Length` at once, or
//!   chunk by chunk when it has none. Past the budget the request is refused (503) before it
//!   costs anything upstream.
//! - A Converse answer is read whole for its usage. Bedrock has already billed it, so it is
//!   never refused: its bytes are taken by force, which can overdraw the budget, and new
//!   requests are refused until it has been handed to its client.
//!
//! A plain counter rather than a semaphore: a semaphore cannot be overdrawn, and the answers
//! must be.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use prometheus::IntGauge;

/// The default `--max-buffered-bytes`: room for twenty 25 MiB requests (Bedrock's own limit)
/// or many thousands of ordinary ones.
pub const DEFAULT_MAX_BUFFERED: usize = 512 * 1024 * 1024;

/// Bytes of bodies held in memory, against a limit.
pub struct ByteBudget {
    /// 0: no limit (the bytes are still counted).
    limit: usize,
    used: AtomicUsize,
    /// `bedrock_proxy_buffered_bytes`, kept equal to `used`.
    gauge: IntGauge,
}

impl ByteBudget {
    pub fn new(limit: usize, gauge: IntGauge) -> Arc<Self> {
        Arc::new(ByteBudget {
            limit,
            used: AtomicUsize::new(0),
            gauge,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `bytes` if they fit under the limit.
    pub fn try_take(self: &Arc<Self>, bytes: usize) -> Option<Held> {
        let mut held = Held {
            budget: self.clone(),
            bytes: 0,
        };
        held.try_grow(bytes).then_some(held)
    }

    /// Nothing held yet; grows with [`Held::try_grow`] or [`Held::force_grow`].
    pub fn empty(self: &Arc<Self>) -> Held {
        Held {
            budget: self.clone(),
            bytes: 0,
        }
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            self.gauge.sub(gauge_value(bytes));
        }
    }
}

fn gauge_value(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Bytes taken from a [`ByteBudget`], given back when dropped.
pub struct Held {
    budget: Arc<ByteBudget>,
    bytes: usize,
}

impl Held {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `more` bytes if they fit under the limit; false (and nothing taken) if not.
    pub fn try_grow(&mut self, more: usize) -> bool {
        if more == 0 {
            return true;
        }
        let b = &self.budget;
        let taken = b
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                let after = used.checked_add(more)?;
                (b.limit == 0 || after <= b.limit).then_some(after)
            })
            .is_ok();
        if taken {
            self.bytes += more;
            b.gauge.add(gauge_value(more));
        }
        taken
    }

    /// Takes `more` bytes whatever the limit (an answer Bedrock has billed).
    pub fn force_grow(&mut self, more: usize) {
        if more > 0 {
            self.budget.used.fetch_add(more, Ordering::Relaxed);
            self.budget.gauge.add(gauge_value(more));
            self.bytes += more;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

pin_project! {
    /// A body that holds its bytes' share of the budget until it is dropped (written out, or
    /// its client gone).
    pub struct HeldBody<B> {
        #[pin]
        inner: B,
        _held: Held,
    }
}

impl<B> HeldBody<B> {
    pub fn new(inner: B, held: Held) -> Self {
        HeldBody { inner, _held: held }
    }
}

impl<B: Body> Body for HeldBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
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

    fn budget(limit: usize) -> (Arc<ByteBudget>, IntGauge) {
        let gauge = IntGauge::new("g", "g").unwrap();
        (ByteBudget::new(limit, gauge.clone()), gauge)
    }

    #[test]
    fn takes_up_to_the_limit_and_gives_back_on_drop() {
        let (b, gauge) = budget(100);
        let first = b.try_take(60).unwrap();
        assert!(b.try_take(41).is_none());
        let mut second = b.try_take(40).unwrap();
        assert_eq!(gauge.get(), 100);
        assert!(!second.try_grow(1));
        assert_eq!(second.bytes(), 40);
        drop(first);
        assert_eq!(gauge.get(), 40);
        assert!(second.try_grow(60));
        assert_eq!(second.bytes(), 100);
        drop(second);
        assert_eq!(gauge.get(), 0);
        assert!(b.try_take(100).is_some());
    }

    #[test]
    fn answers_overdraw_and_hold_new_requests_off() {
        let (b, gauge) = budget(100);
        let mut answer = b.empty();
        answer.force_grow(150);
        assert_eq!(gauge.get(), 150);
        assert!(b.try_take(1).is_none());
        drop(answer);
        assert_eq!(gauge.get(), 0);
        assert!(b.try_take(100).is_some());
    }

    #[test]
    fn zero_is_no_limit_but_still_counted() {
        let (b, gauge) = budget(0);
        let held = b.try_take(usize::MAX / 2).unwrap();
        assert_eq!(gauge.get(), i64::try_from(usize::MAX / 2).unwrap());
        assert!(b.try_take(usize::MAX).is_none(), "overflow is refused");
        drop(held);
        assert_eq!(gauge.get(), 0);
    }
}
