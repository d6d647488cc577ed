//! Meter: records each finished request exactly once — prices its usage with the rate card
//! snapshot taken when it arrived, and updates the counters and histograms.

pub mod labels;
pub mod ledger;
pub mod prefixes;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use prometheus::IntGauge;

use crate::api::Operation;
use crate::api::request::Facts;
use crate::api::stop_scan::StopScan;
use crate::api::{Missing, Served, StopReason};
use crate::meter::labels::{LabelGuard, UNKNOWN_APP};
use crate::meter::ledger::{Ledger, Record};
use crate::metrics::Metrics;
use crate::pricing::billing_units::{Units, price_units};
use crate::pricing::model_id::Arn;
use crate::pricing::{Call, Cost, RateCard, Resolved, Tier, Usage};
use crate::proxy::limits::{Actual, Reservation};
use crate::proxy::tap::eventstream::{StreamEnd, StreamTap};
use crate::proxy::tap::sse::SseTap;
use crate::proxy::tap::{End, Tap};
use prefixes::{BYTES_PER_TOKEN, MIN_CACHE_TOKENS, RecentPrefixes};

pub struct Meter {
    pub metrics: Metrics,
    pub labels: LabelGuard,
    /// One JSON line per recorded request, when `--ledger` is given.
    pub ledger: Option<Ledger>,
    /// The prompt prefixes seen lately, for `bedrock_prefix_reused_total`.
    pub prefixes: RecentPrefixes,
}

/// The status recorded for a request whose client left before the proxy answered (nginx's
/// convention; no response was sent, so no real status exists).
pub const CLIENT_CLOSED: u16 = 499;

impl Meter {
    /// Starts metering a request: counts it in flight until it is recorded. `card` is the rate
    /// card snapshot this request will be priced with, whatever reloads meanwhile.
    pub fn begin(
        self: &Arc<Self>,
        app: Option<&str>,
        op: Operation,
        start: Instant,
        card: Arc<RateCard>,
    ) -> Pending {
        let gauge = self.metrics.in_flight(op).clone();
        gauge.inc();
        Pending {
            inner: Some(Inner {
                app: self.labels.app(app.unwrap_or(UNKNOWN_APP), &self.metrics),
                meter: self.clone(),
                op,
                model_id: None,
                router: None,
                units: Units::default(),
                card,
                known: false,
                region: None,
                served: Served::default(),
                start,
                wall: SystemTime::now(),
                request_id: None,
                overhead: None,
                reservation: None,
                stop_reason: None,
                stream: op.is_stream(),
                facts: Facts::default(),
                in_flight: InFlight(gauge),
            }),
        }
    }
}

struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A request on its way, recorded exactly once: by [`Pending::finish`], by the tap
/// [`Pending::tap`] hands the response body, or — if it is dropped unrecorded because the
/// client left while the proxy was still working — as status 499 (500 when a panic dropped
/// it).
pub struct Pending {
    inner: Option<Inner>,
}

struct Inner {
    meter: Arc<Meter>,
    app: Arc<str>,
    op: Operation,
    model_id: Option<String>,
    /// The prompt router called, when the call went through one (`model_id` is then the model
    /// it chose).
    router: Option<String>,
    /// What the call is billed in besides tokens, from the request and the answer.
    units: Units,
    card: Arc<RateCard>,
    /// The card prices this model id (so it may become a label before Bedrock vouches for it).
    known: bool,
    /// The Region the call was signed for, which some prices depend on.
    region: Option<Box<str>>,
    served: Served,
    start: Instant,
    wall: SystemTime,
    request_id: Option<Box<str>>,
    /// The proxy's own time spent on a forwarded call so far (`None`: not forwarded); observed
    /// in `bedrock_proxy_overhead_seconds` when the request is recorded, recording included.
    overhead: Option<Duration>,
    /// What the call reserved against its app's limits, settled with what it used.
    reservation: Option<Reservation>,
    /// Why the model stopped, where the answer said (for the ledger).
    stop_reason: Option<StopReason>,
    /// The client asked for a streamed answer.
    stream: bool,
    /// What the request body says (output ceiling, stable prefix), read when the ledger is on.
    facts: Facts,
    in_flight: InFlight,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            // Dropped by a panic unwinding the task that held it: the handler answers the
            // client 500 for a panicked exchange, so that is what is recorded. Otherwise
            // the client left before any answer.
            let status = if std::thread::panicking() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST)
            };
            inner.record(status, None, StreamFacts::default());
        }
    }
}

/// Where the usage of a response is to be found.
pub enum Source {
    /// Not a metered response (an error status, or an operation without token usage).
    None,
    /// Already known (a JSON body read whole, or nothing to read).
    Known(Result<Usage, Missing>),
    /// Known from the response headers (InvokeModel); the body passing by says why the model
    /// stopped.
    Headers(Result<Usage, Missing>, StopScan),
    /// In the last event of an event stream, decoded on the side frame by frame.
    Stream(Box<StreamTap>),
    /// In the events of a Server-Sent Events stream, read on the side event by event.
    Sse(Box<SseTap>),
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
    fn inner(&self) -> Option<&Inner> {
        self.inner.as_ref()
    }

    pub fn operation(&self) -> Operation {
        self.inner().map_or(Operation::Other, |i| i.op)
    }

    /// The app the request is metered under, as its label says.
    pub fn app(&self) -> Arc<str> {
        self.inner()
            .map_or_else(|| Arc::from(""), |i| i.app.clone())
    }

    /// Re-attributes the request (a signature that turned out not to check).
    pub fn set_app(&mut self, app: &str) {
        if let Some(i) = self.inner.as_mut() {
            i.app = i.meter.labels.app(app, &i.meter.metrics);
        }
    }

    /// The model id as called (or as a prompt router chose it).
    pub fn model_id(&self) -> Option<&str> {
        self.inner()?.model_id.as_deref()
    }

    /// The model called; its price comes from this request's rate card snapshot.
    pub fn set_model(&mut self, model_id: Option<String>) {
        if let Some(i) = self.inner.as_mut() {
            i.model_id = model_id;
            i.known = i.resolve().is_some();
        }
    }

    /// The model a prompt router chose for this call, as its answer names it: from here on the
    /// call is priced and labelled as that model, and the router is kept apart. Ignored unless
    /// the model called is a prompt router.
    pub fn set_invoked_model(&mut self, invoked: &str) {
        let Some(i) = self.inner.as_mut() else {
            return;
        };
        if i.router.is_some() || !i.model_id.as_deref().is_some_and(is_prompt_router) {
            return;
        }
        i.router = i.model_id.take();
        i.model_id = Some(model_label(invoked).to_owned());
        i.known = i.resolve().is_some();
    }

    /// Adds what the request or the answer says the call used besides tokens.
    pub fn add_units(&mut self, units: Units) {
        if let Some(i) = self.inner.as_mut() {
            i.units = i.units.and(units);
        }
    }

    /// The Region the request is forwarded to (and priced in).
    pub fn set_region(&mut self, region: &str) {
        if let Some(i) = self.inner.as_mut() {
            i.region = Some(region.into());
        }
    }

    /// How Bedrock says it served the call (tier, latency-optimized).
    pub fn set_served(&mut self, served: Served) {
        if let Some(i) = self.inner.as_mut() {
            i.served = served;
        }
    }

    /// What the request body says, and whether it asked for a stream.
    pub fn set_request(&mut self, facts: Facts, stream: bool) {
        if let Some(i) = self.inner.as_mut() {
            i.facts = facts;
            i.stream |= stream;
        }
    }

    /// Why the model stopped, where the answer said.
    pub fn set_stop_reason(&mut self, stop: Option<StopReason>) {
        if let (Some(i), Some(stop)) = (self.inner.as_mut(), stop) {
            i.stop_reason = Some(stop);
        }
    }

    /// Bedrock's request id (`x-amzn-RequestId`), for the ledger.
    pub fn set_request_id(&mut self, id: Option<&str>) {
        if let Some(i) = self.inner.as_mut() {
            i.request_id = id.map(Box::from);
        }
    }

    /// Adds time the proxy itself spent on this forwarded call (no waiting on the client or
    /// the upstream in it).
    pub fn add_overhead(&mut self, spent: Duration) {
        if let Some(i) = self.inner.as_mut() {
            i.overhead = Some(i.overhead.unwrap_or_default() + spent);
        }
    }

    /// Holds the call's limit reservations until it is recorded, when they are settled with
    /// what it used.
    pub fn hold(&mut self, reservation: Reservation) {
        if let Some(i) = self.inner.as_mut() {
            i.reservation = Some(reservation);
        }
    }

    /// The most `input` tokens in and `output` out can cost this call, in pico-dollars: at
    /// the dearest tier the card prices, with the input possibly written to the cache at its
    /// 1-hour rate, plus the units the request asks for. `None`: the model has no price.
    pub fn worst_case(&self, input: u64, output: u64) -> Option<u64> {
        let i = self.inner()?;
        let resolved = i.resolve()?;
        let entry = resolved.model();
        let mut pico = 0u64;
        if entry.per_token {
            let plain = Usage {
                input,
                output,
                ..Usage::default()
            };
            let cached = Usage {
                input: 0,
                output,
                cache_read: 0,
                cache_write: input,
                cache_write_1h: input,
            };
            for tier in Tier::ALL {
                for usage in [&plain, &cached] {
                    if let Some(cost) = resolved.quote(usage, tier).cost {
                        pico = pico.max(cost.total());
                    }
                }
            }
        }
        if !i.units.is_empty() {
            let q = price_units(&i.units, Some(&entry.units), i.card.guardrail_rates());
            pico = pico.saturating_add(q.cost.total());
        }
        Some(pico)
    }

    /// What `usage` costs at this request's prices; None when the model is unpriced or the
    /// call has no per-token price (provisioned throughput, the reserved tier).
    pub fn quote(&self, usage: &Usage) -> Option<Cost> {
        let i = self.inner()?;
        i.resolve()?.quote(usage, i.tier()).cost
    }

    /// Records a request that ends here, with no response body to watch.
    pub fn finish(mut self, status: StatusCode, outcome: Option<Result<Usage, Missing>>) {
        if let Some(inner) = self.inner.take() {
            inner.record(status, outcome, StreamFacts::default());
        }
    }

    fn record_with(
        mut self,
        status: StatusCode,
        outcome: Option<Result<Usage, Missing>>,
        facts: StreamFacts,
    ) {
        if let Some(inner) = self.inner.take() {
            inner.record(status, outcome, facts);
        }
    }

    fn elapsed(&self) -> f64 {
        self.inner()
            .map_or(0.0, |i| i.start.elapsed().as_secs_f64())
    }

    /// A tap that records the request when its response body ends.
    pub fn tap(self, status: StatusCode, source: Source) -> Box<dyn Tap> {
        Box::new(Recorder {
            pending: self,
            status,
            source,
            first_event: None,
        })
    }
}

/// Whether a model id is a prompt router's ARN (`…:default-prompt-router/…`,
/// `…:prompt-router/…`).
pub fn is_prompt_router(model_id: &str) -> bool {
    Arn::parse(model_id)
        .is_some_and(|a| matches!(a.resource_type, "default-prompt-router" | "prompt-router"))
}

/// The label of a model a router names: a foundation-model or inference-profile ARN is reduced
/// to its id, the way a client calling it directly would name it; anything else stays whole.
fn model_label(invoked: &str) -> &str {
    match Arn::parse(invoked) {
        Some(a) if matches!(a.resource_type, "foundation-model" | "inference-profile") => {
            a.resource_id
        }
        _ => invoked,
    }
}

impl Inner {
    fn resolve(&self) -> Option<Resolved> {
        let model_id = self.model_id.as_deref()?;
        self.card.resolve(&Call {
            model_id,
            region: self.region.as_deref(),
            latency_optimized: self.served.latency_optimized,
            at: self.wall,
        })
    }

    /// The tier the call was billed at; Bedrock's default when it names none.
    fn tier(&self) -> Tier {
        self.served.tier.unwrap_or_default()
    }

    fn record(
        self,
        status: StatusCode,
        outcome: Option<Result<Usage, Missing>>,
        stream: StreamFacts,
    ) {
        let began = Instant::now();
        let resolved = self.resolve();
        let tier = self.tier();
        let Inner {
            meter,
            app,
            op,
            model_id,
            router,
            units,
            card,
            known,
            served,
            start,
            wall,
            request_id,
            overhead,
            reservation,
            stop_reason,
            stream: streamed,
            facts,
            in_flight,
            ..
        } = self;
        let m = &meter.metrics;
        let vouched = status.is_success() || known;
        let model = meter.labels.model(model_id.as_deref(), vouched, m);
        let latency = start.elapsed();
        let request = m.request(&app, &model, op, status.as_u16(), latency.as_secs_f64());
        // A router is a model id the client called: bounded by the same guard.
        let router = router.map(|r| meter.labels.model(Some(&r), true, m));
        if let Some(router) = &router {
            m.routed(&app, router, &model);
        }
        if let Some(seconds) = stream.first_event {
            m.time_to_first_token(&request, &model, op, seconds);
        }
        if let Some(exception) = &stream.exception {
            m.stream_exception(&model, op, exception);
        }
        let mut metered = None;
        match outcome {
            Some(Ok(u)) => {
                let series = m.series(&app, &model);
                let entry = resolved.as_ref().map(Resolved::model);
                // A model priced only per unit (an image model) has no token price to quote.
                let per_token = entry.is_none_or(|e| e.per_token);
                let quote = resolved
                    .as_ref()
                    .filter(|_| per_token)
                    .map(|r| r.quote(&u, tier));
                let cost = quote.as_ref().and_then(|q| q.cost);
                m.usage(&series, &u, cost.as_ref());
                m.service_tier(&series, &model, tier);
                if let Some(stop) = stop_reason {
                    m.stop_reason(&series, &app, &model, stop);
                }
                if let Some(prefix) = facts
                    .prefix
                    .filter(|p| p.bytes >= MIN_CACHE_TOKENS * BYTES_PER_TOKEN)
                {
                    // Per pair: the series handle's address names it, with no hashing of labels.
                    let pair = Arc::as_ptr(&series) as usize as u64;
                    let reused = meter.prefixes.sighted(prefix.fingerprint ^ pair);
                    m.prefix(&series, &app, &model, reused);
                }
                let units_quote = (!units.is_empty())
                    .then(|| price_units(&units, entry.map(|e| &e.units), card.guardrail_rates()));
                if let Some(q) = &units_quote {
                    m.units(
                        &series,
                        &units,
                        &q.cost,
                        if q.unpriced { 0 } else { q.priced },
                    );
                }
                let has_tokens = u.prompt_total() > 0 || u.output > 0;
                // Tokens with no price, or a call with nothing priced at all: never $0.
                let tokens_unpriced = quote.is_none() && (has_tokens || units_quote.is_none());
                if tokens_unpriced || units_quote.is_some_and(|q| q.unpriced) {
                    m.unpriced(&series, &model);
                }
                if let Some(q) = &quote {
                    for (flagged, reason) in [
                        (
                            q.uncached_model_with_cache_tokens,
                            "cache_tokens_on_uncached_model",
                        ),
                        (q.tier_unsupported, "tier_not_priced"),
                        (q.latency_unsupported, "latency_optimized_not_priced"),
                    ] {
                        if flagged {
                            m.pricing_anomaly(&model, reason);
                        }
                    }
                }
                let savings = quote.and_then(|q| q.cost.map(|_| q.cache_savings));
                let unit_cost = units_quote.filter(|q| !q.unpriced).map(|q| q.cost);
                metered = Some((u, cost, savings, unit_cost));
            }
            Some(Err(missing)) => m.usage_missing(op, missing.as_str()),
            None => {}
        }
        if let Some(reservation) = reservation {
            let actual = metered
                .as_ref()
                .map_or(Actual::default(), |(u, c, _, uc)| Actual {
                    tokens: u.prompt_total().saturating_add(u.output),
                    pico: c
                        .map_or(0, |c| c.total())
                        .saturating_add(uc.map_or(0, |uc| uc.total())),
                });
            reservation.settle(actual);
        }
        drop(in_flight);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let (input, output, cost) = metered.as_ref().map_or((0, 0, None), |(u, c, _, uc)| {
                let total = match (c, uc) {
                    (None, None) => None,
                    _ => Some(
                        c.map_or(0, |c| c.total())
                            .saturating_add(uc.map_or(0, |uc| uc.total())),
                    ),
                };
                (
                    u.prompt_total(),
                    u.output,
                    total.map(crate::money::usd_trimmed),
                )
            });
            tracing::debug!(
                app = &*app,
                model = &*model,
                operation = op.as_str(),
                status = status.as_u16(),
                input_tokens = input,
                output_tokens = output,
                cost_usd = cost.as_deref().unwrap_or("unpriced"),
                latency_ms = latency.as_secs_f64() * 1e3,
                "request"
            );
        }
        if let Some(ledger) = &meter.ledger {
            let (usage, cost, cache_savings, unit_cost) = match metered {
                Some((u, c, s, uc)) => (u, c, s, uc),
                None => (Usage::default(), None, None, None),
            };
            ledger.record(Record {
                time: wall,
                request_id,
                app,
                model,
                operation: op,
                router,
                status: status.as_u16(),
                tier: served.tier.map(Tier::as_str),
                usage,
                cost,
                cache_savings,
                units,
                unit_cost,
                latency,
                rate_card: Arc::from(card.version.as_str()),
                stream: streamed,
                max_tokens: facts.max_tokens,
                stop_reason,
                prefix: facts.prefix,
            });
        }
        if let Some(spent) = overhead {
            m.proxy_overhead(op, (spent + began.elapsed()).as_secs_f64());
        }
    }
}

struct Recorder {
    pending: Pending,
    status: StatusCode,
    source: Source,
    first_event: Option<f64>,
}

impl Tap for Recorder {
    fn on_data(&mut self, chunk: &Bytes) {
        match &mut self.source {
            Source::Stream(stream) => {
                let began = Instant::now();
                if stream.push(chunk) && self.first_event.is_none() {
                    self.first_event = Some(self.pending.elapsed());
                }
                self.pending.add_overhead(began.elapsed());
            }
            Source::Sse(stream) => {
                let began = Instant::now();
                if stream.push(chunk) && self.first_event.is_none() {
                    self.first_event = Some(self.pending.elapsed());
                }
                self.pending.add_overhead(began.elapsed());
            }
            Source::Headers(_, scan) => {
                let began = Instant::now();
                scan.push(chunk);
                self.pending.add_overhead(began.elapsed());
            }
            Source::None | Source::Known(_) => {}
        }
    }

    fn finish(self: Box<Self>, end: End) {
        let Recorder {
            mut pending,
            status,
            source,
            first_event,
        } = *self;
        let mut facts = StreamFacts {
            first_event,
            exception: None,
        };
        let outcome = match (source, end) {
            (Source::None, _) => None,
            (Source::Known(usage), _) => Some(usage),
            (Source::Headers(usage, scan), _) => {
                pending.set_stop_reason(scan.found());
                Some(usage)
            }
            (Source::Stream(stream), end) => {
                if let Some(served) = stream.served() {
                    pending.set_served(served);
                }
                if let Some(invoked) = stream.invoked_model() {
                    pending.set_invoked_model(invoked);
                }
                pending.add_units(stream.units());
                pending.set_stop_reason(stream.stop_reason());
                Some(stream_outcome(stream.outcome(), end, &mut facts))
            }
            (Source::Sse(stream), end) => {
                pending.set_stop_reason(stream.stop_reason());
                Some(stream_outcome(stream.outcome(), end, &mut facts))
            }
        };
        pending.record_with(status, outcome, facts);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> Arc<Meter> {
        Arc::new(Meter {
            metrics: Metrics::new().unwrap(),
            labels: LabelGuard::new(10, 10),
            ledger: None,
            prefixes: RecentPrefixes::default(),
        })
    }

    fn requests(meter: &Meter, status: &str) -> f64 {
        let text = String::from_utf8(meter.metrics.render().unwrap()).unwrap();
        crate::tools::scrape::sum(
            &crate::tools::scrape::parse(&text),
            "bedrock_requests_total",
            &[("status", status)],
        )
    }

    fn pending(meter: &Arc<Meter>) -> Pending {
        let card = RateCard::parse("version = \"t\"\ncurrency = \"USD\"\n", "t.toml")
            .unwrap()
            .card;
        let mut p = meter.begin(
            Some("a"),
            Operation::Converse,
            Instant::now(),
            Arc::new(card),
        );
        p.set_model(Some("amazon.nova-micro-v1:0".into()));
        p
    }

    #[test]
    fn dropped_by_the_client_leaving_is_recorded_499_once() {
        let meter = meter();
        drop(pending(&meter));
        assert_eq!(requests(&meter, "499"), 1.0);
        assert_eq!(requests(&meter, "500"), 0.0);
        assert_eq!(meter.metrics.in_flight_total(), 0);
    }

    #[test]
    fn dropped_by_a_panic_is_recorded_as_the_500_the_client_gets() {
        let meter = meter();
        let p = pending(&meter);
        let panicked = std::thread::spawn(move || {
            let _held = p;
            panic!("a bug in the exchange");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(requests(&meter, "500"), 1.0);
        assert_eq!(requests(&meter, "499"), 0.0);
        assert_eq!(meter.metrics.in_flight_total(), 0);
    }
}
