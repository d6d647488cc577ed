//! The usage ledger (`--ledger FILE|-`): one JSON line per recorded request, for reconciling
//! against the AWS bill and for `bedrock-meter report`.
//!
//! Written off the hot path: the meter hands a small owned record to a bounded queue with
//! `try_send` and never waits; a dedicated thread formats and writes. When the queue is full
//! the request still succeeds and the loss is counted in `bedrock_ledger_dropped_total`.
//! The file is opened for append, flushed whenever the queue runs dry, and reopened on SIGHUP
//! so logrotate can move it away.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime};

use prometheus::IntCounter;
use serde::Serialize;

use crate::money::usd;
use crate::pricing::{Cost, Usage};
use crate::proxy::route::Operation;
use crate::time::rfc3339_millis;

/// Records waiting to be written before new ones are dropped.
pub const DEFAULT_QUEUE: usize = 65_536;
/// The largest `--ledger-queue`: the queue's slots are allocated when it opens (about 32 bytes
/// each), so a huge value would take the memory at start-up or abort.
pub const MAX_QUEUE: usize = 16 * 1024 * 1024;

/// Where the ledger goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
}

impl Target {
    /// `-` is stdout; anything else a file path.
    pub fn parse(s: &str) -> Target {
        if s == "-" {
            Target::Stdout
        } else {
            Target::File(PathBuf::from(s))
        }
    }
}

/// One recorded request, as the meter knows it.
#[derive(Clone, Debug)]
pub struct Record {
    pub time: SystemTime,
    pub request_id: Option<Box<str>>,
    pub app: Arc<str>,
    pub model: Arc<str>,
    pub operation: Operation,
    pub status: u16,
    pub tier: Option<&'static str>,
    pub usage: Usage,
    /// None: the model is unpriced (or the request used no per-token pricing).
    pub cost: Option<Cost>,
    pub cache_savings: Option<u64>,
    pub latency: Duration,
    pub rate_card: Arc<str>,
}

/// How often a flush retries to queue its request while the queue is full.
const FLUSH_POLL: Duration = Duration::from_millis(5);

enum Message {
    Record(Box<Record>),
    /// Write out everything queued before this, then acknowledge.
    Flush(mpsc::Sender<()>),
}

/// The meter's handle on the ledger.
pub struct Ledger {
    tx: SyncSender<Message>,
    dropped: IntCounter,
    reopen: Arc<AtomicBool>,
}

impl Ledger {
    /// Opens `target` and starts the writer thread.
    pub fn open(target: Target, queue: usize, dropped: IntCounter) -> io::Result<Ledger> {
        let out = Output::open(&target)?;
        let (ledger, rx) = Ledger::channel(queue, dropped);
        let reopen = ledger.reopen.clone();
        std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || write_loop(rx, out, target, reopen))?;
        Ok(ledger)
    }

    /// The queue without a writer (tests drive the receiving end themselves).
    fn channel(queue: usize, dropped: IntCounter) -> (Ledger, Receiver<Message>) {
        let (tx, rx) = mpsc::sync_channel(queue.max(1));
        let ledger = Ledger {
            tx,
            dropped,
            reopen: Arc::new(AtomicBool::new(false)),
        };
        (ledger, rx)
    }

    /// Queues a record; never blocks. A full queue drops it and counts the drop.
    pub fn record(&self, record: Record) {
        match self.tx.try_send(Message::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }

    /// Asks the writer to reopen the file before its next write (logrotate).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Waits (up to `timeout`) until everything queued so far is written and flushed. The
    /// whole wait is bounded, queueing the request included: a writer stuck on a stalled
    /// stdout reader keeps the queue full, and shutdown must not hang on it.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack, done) = mpsc::channel();
        let mut message = Message::Flush(ack);
        loop {
            match self.tx.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    message = m;
                    std::thread::sleep(FLUSH_POLL);
                }
            }
        }
        done.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

enum Output {
    Stdout(BufWriter<io::Stdout>),
    File(BufWriter<File>),
}

impl Output {
    fn open(target: &Target) -> io::Result<Output> {
        Ok(match target {
            Target::Stdout => Output::Stdout(BufWriter::new(io::stdout())),
            Target::File(path) => Output::File(BufWriter::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            )),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Stdout(w) => w,
            Output::File(w) => w,
        }
    }
}

fn write_loop(rx: Receiver<Message>, mut out: Output, target: Target, reopen: Arc<AtomicBool>) {
    let mut line = Vec::with_capacity(512);
    let mut dirty = false;
    loop {
        // Flush whenever the queue runs dry, so the file is current whenever traffic pauses.
        let message = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                if dirty {
                    report(out.writer().flush());
                    dirty = false;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if reopen.swap(false, Ordering::Relaxed) {
            report(out.writer().flush());
            match Output::open(&target) {
                Ok(o) => out = o,
                Err(e) => tracing::warn!("ledger: cannot reopen, still writing the old file: {e}"),
            }
        }
        match message {
            Message::Record(record) => {
                line.clear();
                if serde_json::to_writer(&mut line, &Line::from(&*record)).is_ok() {
                    line.push(b'\n');
                    report(out.writer().write_all(&line));
                    dirty = true;
                }
            }
            Message::Flush(ack) => {
                report(out.writer().flush());
                dirty = false;
                let _ = ack.send(());
            }
        }
    }
    report(out.writer().flush());
}

fn report(result: io::Result<()>) {
    if let Err(e) = result {
        tracing::warn!("ledger: write failed: {e}");
    }
}

/// The JSON line (see docs/report.md for every field).
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    request_id: Option<&'a str>,
    app: &'a str,
    model: &'a str,
    operation: &'static str,
    status: u16,
    tier: Option<&'static str>,
    tokens: Tokens,
    cost_usd: Option<String>,
    cost_usd_by_type: Option<CostByType>,
    cache_savings_usd: Option<String>,
    latency_ms: f64,
    rate_card: &'a str,
}

#[derive(Serialize)]
struct Tokens {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
    cache_write_1h: u64,
}

#[derive(Serialize)]
struct CostByType {
    input: String,
    output: String,
    cache_read: String,
    cache_write: String,
}

impl<'a> From<&'a Record> for Line<'a> {
    fn from(r: &'a Record) -> Self {
        Line {
            time: rfc3339_millis(r.time),
            request_id: r.request_id.as_deref(),
            app: &r.app,
            model: &r.model,
            operation: r.operation.as_str(),
            status: r.status,
            tier: r.tier,
            tokens: Tokens {
                input: r.usage.input,
                output: r.usage.output,
                cache_read: r.usage.cache_read,
                cache_write: r.usage.cache_write,
                cache_write_1h: r.usage.cache_write_1h,
            },
            cost_usd: r.cost.map(|c| usd(c.total())),
            cost_usd_by_type: r.cost.map(|c| CostByType {
                input: usd(c.input),
                output: usd(c.output),
                cache_read: usd(c.cache_read),
                cache_write: usd(c.cache_write),
            }),
            cache_savings_usd: r.cache_savings.map(usd),
            latency_ms: (r.latency.as_secs_f64() * 1e6).round() / 1e3,
            rate_card: &r.rate_card,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn record(app: &str) -> Record {
        Record {
            time: UNIX_EPOCH + Duration::from_millis(1_795_428_000_123),
            request_id: Some("req-1".into()),
            app: app.into(),
            model: "amazon.nova-micro-v1:0".into(),
            operation: Operation::Converse,
            status: 200,
            tier: Some("default"),
            usage: Usage {
                input: 1000,
                output: 200,
                cache_read: 0,
                cache_write: 0,
                cache_write_1h: 0,
            },
            cost: Some(Cost {
                input: 35_000_000,
                output: 28_000_000,
                cache_read: 0,
                cache_write: 0,
            }),
            cache_savings: Some(0),
            latency: Duration::from_micros(812_400),
            rate_card: "2026-11".into(),
        }
    }

    #[test]
    fn line_format() {
        let r = record("checkout");
        let v = serde_json::to_value(Line::from(&r)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "time": "2026-11-23T10:00:00.123Z",
                "request_id": "req-1",
                "app": "checkout",
                "model": "amazon.nova-micro-v1:0",
                "operation": "Converse",
                "status": 200,
                "tier": "default",
                "tokens": {"input": 1000, "output": 200, "cache_read": 0, "cache_write": 0, "cache_write_1h": 0},
                "cost_usd": "0.000063000000",
                "cost_usd_by_type": {"input": "0.000035000000", "output": "0.000028000000", "cache_read": "0.000000000000", "cache_write": "0.000000000000"},
                "cache_savings_usd": "0.000000000000",
                "latency_ms": 812.4,
                "rate_card": "2026-11"
            })
        );
    }

    #[test]
    fn flush_gives_up_at_its_deadline_when_the_queue_stays_full() {
        // A writer that never reads: the queue stays full, as it does when `--ledger -` is
        // piped to a reader that stopped.
        let dropped = IntCounter::new("d", "d").unwrap();
        let (ledger, _stalled) = Ledger::channel(1, dropped);
        ledger.record(record("a"));
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let started = Instant::now();
            let flushed = ledger.flush(Duration::from_millis(100));
            let _ = done_tx.send((flushed, started.elapsed()));
        });
        let (flushed, took) = done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("flush did not return: it waits on a full queue without a deadline");
        assert!(!flushed);
        assert!(took >= Duration::from_millis(100), "{took:?}");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let dropped = IntCounter::new("d", "d").unwrap();
        let (ledger, rx) = Ledger::channel(2, dropped.clone());
        for _ in 0..5 {
            ledger.record(record("a"));
        }
        assert_eq!(dropped.get(), 3);
        assert_eq!(rx.try_iter().count(), 2);
    }

    #[test]
    fn writes_appends_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        std::fs::write(&path, "earlier line\n").unwrap();
        let dropped = IntCounter::new("d", "d").unwrap();
        let ledger = Ledger::open(Target::File(path.clone()), 16, dropped).unwrap();
        ledger.record(record("a"));
        assert!(ledger.flush(Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("earlier line\n{\"time\""), "{text}");
        assert_eq!(text.lines().count(), 2);

        // logrotate moves the file away; after SIGHUP the ledger writes a new one.
        let rotated = dir.path().join("ledger.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        ledger.reopen();
        ledger.record(record("b"));
        assert!(ledger.flush(Duration::from_secs(5)));
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap().lines().count(),
            2
        );
        let fresh = std::fs::read_to_string(&path).unwrap();
        assert_eq!(fresh.lines().count(), 1);
        assert!(fresh.contains("\"app\":\"b\""));
    }
}
