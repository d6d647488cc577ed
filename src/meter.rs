//! Meter: records each finished request exactly once — prices its usage with the rate card
//! snapshot taken when it arrived, and updates the counters and histograms.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use prometheus::IntGauge;

use crate::labels::{LabelGuard, UNKNOWN_APP};
use crate::metrics::Metrics;
use crate::pricing::{ModelPrice, Usage, price};
use crate::route::Operation;
use crate::tap::eventstream::{StreamEnd, StreamTap};
use crate::tap::usage::{self, Missing};
use crate::tap::{End, Tap};

/// The largest Converse body the meter keeps a copy of to read `usage` from.
pub const MAX_JSON_COPY: usize = 16 * 1024 * 1024;

pub struct Meter {
    pub metrics: Metrics,
    pub labels: LabelGuard,
}

impl Meter {
    /// Starts metering a request: counts it in flight until it is recorded.
    pub fn begin(self: &Arc<Self>, app: Option<&str>, op: Operation, start: Instant) -> Pending {
        let gauge = self.metrics.in_flight(op).clone();
        gauge.inc();
        Pending {
            app: self.labels.app(app.unwrap_or(UNKNOWN_APP), &self.metrics),
            meter: self.clone(),
            op,
            model_id: None,
            price: None,
            start,
            in_flight: InFlight(gauge),
        }
    }
}

struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A request on its way; consumed by exactly one of [`Pending::finish`] or [`Pending::tap`].
pub struct Pending {
    meter: Arc<Meter>,
    app: Arc<str>,
    op: Operation,
    model_id: Option<String>,
    price: Option<Arc<ModelPrice>>,
    start: Instant,
    in_flight: InFlight,
}

/// Where the usage of a response is to be found.
pub enum Source {
    /// Not a metered response (an error status, or an operation without token usage).
    None,
    /// Already known from the response headers (InvokeModel).
    Known(Result<Usage, Missing>),
    /// In the JSON body (Converse): keep a copy of the body as it passes.
    JsonBody,
    /// In the last event of an event stream, decoded on the side frame by frame.
    Stream(Box<StreamTap>),
}

/// What a stream showed besides its usage.
#[derive(Default)]
struct StreamFacts {
    /// Seconds from the request's arrival to the first event frame.
    first_event: Option<f64>,
    /// The `:exception-type` of a modeled exception frame that ended the stream.
    exception: Option<String>,
}

impl Pending {
    pub fn operation(&self) -> Operation {
        self.op
    }

    /// Re-attributes the request (a signature that turned out not to check).
    pub fn set_app(&mut self, app: &str) {
        self.app = self.meter.labels.app(app, &self.meter.metrics);
    }

    pub fn set_model(&mut self, model_id: Option<String>, price: Option<Arc<ModelPrice>>) {
        self.model_id = model_id;
        self.price = price;
    }

    /// Records a request that ends here, with no response body to watch.
    pub fn finish(self, status: StatusCode, outcome: Option<Result<Usage, Missing>>) {
        self.record(status, outcome, StreamFacts::default());
    }

    fn record(
        self,
        status: StatusCode,
        outcome: Option<Result<Usage, Missing>>,
        stream: StreamFacts,
    ) {
        let Pending {
            meter,
            app,
            op,
            model_id,
            price: model_price,
            start,
            in_flight,
        } = self;
        let m = &meter.metrics;
        let vouched = status.is_success() || model_price.is_some();
        let model = meter.labels.model(model_id.as_deref(), vouched, m);
        m.request(
            &app,
            &model,
            op,
            status.as_u16(),
            start.elapsed().as_secs_f64(),
        );
        if let Some(seconds) = stream.first_event {
            m.time_to_first_token(&model, op, seconds);
        }
        if let Some(exception) = &stream.exception {
            m.stream_exception(&model, op, exception);
        }
        match outcome {
            Some(Ok(u)) => {
                let series = m.series(&app, &model);
                let cost = model_price.as_ref().map(|p| price(&u, &p.rates));
                m.usage(&series, &u, cost.as_ref());
                if cost.is_none() {
                    m.unpriced(&model);
                }
            }
            Some(Err(missing)) => m.usage_missing(op, missing.as_str()),
            None => {}
        }
        drop(in_flight);
    }

    /// A tap that records the request when its response body ends.
    pub fn tap(self, status: StatusCode, source: Source) -> Box<dyn Tap> {
        Box::new(Recorder {
            pending: self,
            status,
            source,
            copy: BytesMut::new(),
            too_large: false,
            first_event: None,
        })
    }
}

struct Recorder {
    pending: Pending,
    status: StatusCode,
    source: Source,
    copy: BytesMut,
    too_large: bool,
    first_event: Option<f64>,
}

impl Tap for Recorder {
    fn on_data(&mut self, chunk: &Bytes) {
        match &mut self.source {
            Source::JsonBody => {
                if self.too_large || self.copy.len() + chunk.len() > MAX_JSON_COPY {
                    self.too_large = true;
                    self.copy = BytesMut::new();
                } else {
                    self.copy.extend_from_slice(chunk);
                }
            }
            Source::Stream(stream) => {
                if stream.push(chunk) && self.first_event.is_none() {
                    self.first_event = Some(self.pending.start.elapsed().as_secs_f64());
                }
            }
            Source::None | Source::Known(_) => {}
        }
    }

    fn finish(self: Box<Self>, end: End) {
        let Recorder {
            pending,
            status,
            source,
            copy,
            too_large,
            first_event,
        } = *self;
        let mut facts = StreamFacts {
            first_event,
            exception: None,
        };
        let outcome = match (source, end) {
            (Source::None, _) => None,
            (Source::Known(usage), _) => Some(usage),
            (Source::JsonBody, End::Complete) if too_large => Some(Err(Missing::TooLarge)),
            (Source::JsonBody, End::Complete) => Some(usage::converse(&copy)),
            (Source::JsonBody, End::UpstreamError) => Some(Err(Missing::UpstreamError)),
            (Source::JsonBody, End::ClientGone) => Some(Err(Missing::ClientGone)),
            (Source::Stream(stream), end) => {
                Some(stream_outcome(stream.outcome(), end, &mut facts))
            }
        };
        pending.record(status, outcome, facts);
    }
}

/// A stream's usage, or why there is none. Usage seen before the end is metered whatever cut
/// the stream; nothing is guessed.
fn stream_outcome(seen: StreamEnd, end: End, facts: &mut StreamFacts) -> Result<Usage, Missing> {
    match seen {
        StreamEnd::Usage(u) => Ok(u),
        StreamEnd::Exception {
            exception_type,
            usage,
        } => {
            facts.exception = Some(exception_type);
            usage.ok_or(Missing::StreamException)
        }
        StreamEnd::Undecodable => Err(Missing::Undecodable),
        StreamEnd::NoUsage => Err(match end {
            End::Complete => Missing::NoUsage,
            End::UpstreamError => Missing::UpstreamError,
            End::ClientGone => Missing::ClientGone,
        }),
    }
}
