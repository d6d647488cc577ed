//! Budgets and rate limits per app (`--limits FILE`), enforced before a call is forwarded.
//!
//! Every limit is a counter per app (or app × model) and window ([`window`]). A call reserves
//! its worst case on every counter that applies — one request, its estimated input plus its
//! output ceiling in tokens, what those tokens would cost at the card's dearest rate for the
//! model — and is refused with 429 if any reservation would take a counter past its limit. So
//! calls running at once cannot overshoot: what they might cost is counted before they go.
//! When the call is recorded (finished, failed, cut by either side), [`Reservation::settle`]
//! replaces the reservation with what the meter measured.
//!
//! The counters live in one process ([`local`]) or in Redis ([`redis`]), where a Lua script
//! checks and reserves all of a call's counters atomically, so any number of replicas
//! enforce one budget. When Redis does not answer, a check fails open (the call is forwarded,
//! its spend settled once Redis is back) or closed (`--limits-fail-closed`: 503).

pub mod file;
mod local;
mod redis;
pub mod window;
pub mod worst_case;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::metrics::{LimitMetrics, LimitSeen};
use crate::money::Pico;
use file::{Kind, LimitsFile};
use window::Window;

pub use self::redis::RedisOptions;

/// The prefix of every key the meter writes in Redis.
pub const KEY_PREFIX: &str = "bedrock-meter:";

/// One counter a call is checked against, and what it asks of it.
#[derive(Clone, Debug)]
pub struct Ask {
    pub key: String,
    pub limit: u64,
    pub amount: u64,
    /// Seconds the counter is kept from now.
    pub ttl: i64,
}

/// What a counter held before a call's ask: settled use, and reservations of calls in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub spent: u64,
    pub reserved: u64,
}

/// The store's answer to a check.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// Every counter had room; each now holds the call's reservation.
    Admitted(Vec<Held>),
    /// The counter at this index had no room; nothing was reserved.
    Over(usize, Held),
}

/// One counter's settlement: the reservation taken back, the measured use added.
#[derive(Clone, Debug)]
pub struct Settlement {
    pub key: String,
    pub reserved: u64,
    pub actual: u64,
    pub ttl: i64,
}

/// The limits store did not answer.
#[derive(Debug)]
pub struct Unavailable(pub String);

enum Store {
    Local(local::Local),
    Redis(redis::Shared),
}

/// The worst a call can use, before it is forwarded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Worst {
    pub tokens: u64,
    /// `None`: the model has no price on the card, so no dollar reservation is possible.
    pub pico: Option<u64>,
}

/// What the meter measured for a call, to settle its reservation with.
#[derive(Clone, Copy, Debug, Default)]
pub struct Actual {
    pub tokens: u64,
    pub pico: u64,
}

/// Why a call is not forwarded.
#[derive(Debug)]
pub enum Refused {
    /// It would pass a limit: the message names it and when it resets.
    Over { message: String, retry_after: u64 },
    /// The store did not answer and the meter fails closed.
    Unavailable,
}

pub struct Limiter {
    pub file: ArcSwap<LimitsFile>,
    store: Store,
    fail_closed: bool,
    metrics: LimitMetrics,
    /// When the store's unavailability was last logged (Unix seconds): once per interval.
    last_logged: AtomicI64,
}

const LOG_INTERVAL_SECS: i64 = 10;

impl Limiter {
    /// Limits kept in this process.
    pub fn local(file: LimitsFile, fail_closed: bool, metrics: LimitMetrics) -> Arc<Limiter> {
        Arc::new(Limiter {
            file: ArcSwap::from_pointee(file),
            store: Store::Local(local::Local::default()),
            fail_closed,
            metrics,
            last_logged: AtomicI64::new(0),
        })
    }

    /// Limits shared through Redis. Connects lazily: a Redis that is down at start is one
    /// that is unavailable, not a failed start.
    pub fn redis(
        file: LimitsFile,
        options: RedisOptions,
        fail_closed: bool,
        metrics: LimitMetrics,
    ) -> Result<Arc<Limiter>, String> {
        let store = redis::Shared::connect(options, metrics.clone())?;
        Ok(Arc::new(Limiter {
            file: ArcSwap::from_pointee(file),
            store: Store::Redis(store),
            fail_closed,
            metrics,
            last_logged: AtomicI64::new(0),
        }))
    }

    /// Checks an app's call to `model` against every limit that applies and reserves its
    /// worst case (`worst` is only worked out when a token or dollar limit applies). `Ok(None)`:
    /// no limit applies.
    pub async fn admit(
        self: &Arc<Self>,
        app: &str,
        model: Option<&str>,
        worst: impl FnOnce(&LimitsFile) -> Worst,
    ) -> Result<Option<Reservation>, Refused> {
        let file = self.file.load();
        let applying = file.applying(app, model);
        if applying.is_empty() {
            return Ok(None);
        }
        let worst = if applying.iter().any(|a| a.kind != Kind::RequestsPerMinute) {
            worst(&file)
        } else {
            Worst::default()
        };
        let now = SystemTime::now();
        // A limit of 0 refuses every call, even one that would reserve nothing (an unpriced
        // model under a dollar limit).
        if let Some(zero) = applying.iter().find(|a| a.limit == 0) {
            let window = Window::of(zero.kind, now);
            self.metrics.refused(app, zero.kind);
            let ask = Ask {
                key: String::new(),
                limit: 0,
                amount: 0,
                ttl: 0,
            };
            return Err(Refused::Over {
                message: over_message(app, zero, &ask, Held::default(), window),
                retry_after: window.resets_in(now),
            });
        }
        let mut asks = Vec::with_capacity(applying.len());
        let mut windows = Vec::with_capacity(applying.len());
        for a in &applying {
            let window = Window::of(a.kind, now);
            let amount = match a.kind {
                Kind::RequestsPerMinute => 1,
                Kind::TokensPerMinute => worst.tokens,
                Kind::DailyUsd | Kind::MonthlyUsd => worst.pico.map_or(0, nano_up),
            };
            asks.push(Ask {
                key: key(app, a.model, a.kind, window.id),
                limit: a.limit,
                amount,
                ttl: window.ttl(now),
            });
            windows.push(window);
        }
        let seen = |i: usize, held: Held, amount: u64| {
            let a = &applying[i];
            self.metrics.seen(&LimitSeen {
                app,
                model: a.model,
                kind: a.kind,
                limit: a.limit,
                warn: file.warn_at(a.limit),
                spent: held.spent,
                reserved: held.reserved.saturating_add(amount),
            });
        };
        let checked = match &self.store {
            Store::Local(local) => Ok(local.check(&asks, unix(now))),
            Store::Redis(redis) => redis.check(&asks).await,
        };
        match checked {
            Ok(Checked::Admitted(held)) => {
                for (i, h) in held.iter().enumerate() {
                    let amount = asks[i].amount;
                    seen(i, *h, amount);
                    let before = h.spent.saturating_add(h.reserved);
                    let warn = file.warn_at(asks[i].limit);
                    if before < warn && before.saturating_add(amount) >= warn {
                        let kind = applying[i].kind;
                        self.metrics.warned(app, kind);
                        tracing::warn!(
                            app,
                            limit = kind.as_str(),
                            scope = applying[i].model.unwrap_or("app"),
                            "past the soft threshold ({}% of the limit)",
                            file.warn_percent
                        );
                    }
                }
                self.metrics.in_flight.inc();
                Ok(Some(self.reservation(&applying, asks, true)))
            }
            Ok(Checked::Over(i, held)) => {
                seen(i, held, 0);
                let a = &applying[i];
                self.metrics.refused(app, a.kind);
                Err(Refused::Over {
                    message: over_message(app, a, &asks[i], held, windows[i]),
                    retry_after: windows[i].resets_in(now),
                })
            }
            Err(Unavailable(reason)) => {
                self.metrics.unavailable.inc();
                self.log_unavailable(&reason);
                if self.fail_closed {
                    return Err(Refused::Unavailable);
                }
                // Forwarded unchecked; its spend is still settled, once the store is back.
                Ok(Some(self.reservation(&applying, asks, false)))
            }
        }
    }

    fn reservation(
        self: &Arc<Self>,
        applying: &[file::Applies<'_>],
        asks: Vec<Ask>,
        reserved: bool,
    ) -> Reservation {
        let counters = applying
            .iter()
            .zip(asks)
            .map(|(a, ask)| Counter {
                kind: a.kind,
                key: ask.key,
                reserved: if reserved { ask.amount } else { 0 },
                ttl: ask.ttl,
            })
            .collect();
        Reservation {
            limiter: Some(self.clone()),
            counters,
            reserved,
        }
    }

    fn log_unavailable(&self, reason: &str) {
        let now = unix(SystemTime::now());
        let last = self.last_logged.load(Ordering::Relaxed);
        if now - last >= LOG_INTERVAL_SECS
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let mode = if self.fail_closed {
                "refusing calls (--limits-fail-closed)"
            } else {
                "forwarding calls unchecked"
            };
            tracing::warn!("the limits store does not answer, {mode}: {reason}");
        }
    }

    fn settle(&self, settlements: Vec<Settlement>, reserved: bool) {
        match &self.store {
            Store::Local(local) => {
                local.settle(&settlements, unix(SystemTime::now()));
                if reserved {
                    self.metrics.in_flight.dec();
                }
            }
            Store::Redis(redis) => redis.settle(settlements, reserved),
        }
    }

    /// Waits (at most `deadline`) until every settlement made so far is in the store.
    pub async fn flush(&self, deadline: Duration) {
        if let Store::Redis(redis) = &self.store {
            redis.flush(deadline).await;
        }
    }
}

/// A call's reservations, settled exactly once: by [`Reservation::settle`] when the call is
/// recorded, or on drop (with nothing measured) if it never is.
pub struct Reservation {
    limiter: Option<Arc<Limiter>>,
    counters: Vec<Counter>,
    /// Whether the store holds the reservations (not when the call went out unchecked).
    reserved: bool,
}

struct Counter {
    kind: Kind,
    key: String,
    reserved: u64,
    ttl: i64,
}

impl Reservation {
    /// Replaces the reservations with what the call used.
    pub fn settle(mut self, actual: Actual) {
        self.settle_with(actual);
    }

    fn settle_with(&mut self, actual: Actual) {
        let Some(limiter) = self.limiter.take() else {
            return;
        };
        let settlements = std::mem::take(&mut self.counters)
            .into_iter()
            .map(|c| Settlement {
                actual: match c.kind {
                    Kind::RequestsPerMinute => 1,
                    Kind::TokensPerMinute => actual.tokens,
                    Kind::DailyUsd | Kind::MonthlyUsd => nano_up(actual.pico),
                },
                key: c.key,
                reserved: c.reserved,
                ttl: c.ttl,
            })
            .collect();
        limiter.settle(settlements, self.reserved);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.settle_with(Actual::default());
    }
}

/// The Redis (and in-process) key of a counter. App names have no `:`; the kind and window
/// close the key, so a model id with `:` in it cannot make two keys meet.
fn key(app: &str, model: Option<&str>, kind: Kind, window: i64) -> String {
    format!(
        "{KEY_PREFIX}limit:{app}:{}:{}:{window}",
        model.unwrap_or("*"),
        kind.as_str()
    )
}

/// Pico-dollars in whole nano-dollars, rounded up: a reservation never falls short.
fn nano_up(pico: u64) -> u64 {
    pico.div_ceil(1000)
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
}

fn amount_text(kind: Kind, n: u64) -> String {
    if kind.is_usd() {
        format!("${}", Pico(u128::from(n) * 1000).usd_rounded(6))
    } else if kind == Kind::RequestsPerMinute {
        format!("{n} requests")
    } else {
        format!("{n} tokens")
    }
}

fn over_message(
    app: &str,
    applies: &file::Applies<'_>,
    ask: &Ask,
    held: Held,
    window: Window,
) -> String {
    let kind = applies.kind;
    let scope = match applies.model {
        Some(m) => format!("app {app:?} calling {m}"),
        None => format!("app {app:?}"),
    };
    let resets =
        crate::time::rfc3339_millis(crate::time::system_time(window.ends).unwrap_or(UNIX_EPOCH));
    format!(
        "Rate exceeded: {scope} is at its {} limit of {} (used {}, reserved by calls in flight {}, this call needs up to {}); it resets at {resets}",
        kind.as_str(),
        amount_text(kind, applies.limit),
        amount_text(kind, held.spent),
        amount_text(kind, held.reserved),
        amount_text(kind, ask.amount),
    )
}

#[cfg(test)]
mod tests;
