//! The usage ledger (`--ledger FILE|-`): one JSON line per recorded request, for reconciling
//! against the AWS bill and for `bedrock-meter report`.
//!
//! Written off the hot path: the meter hands a small owned record to a bounded queue with
//! `try_send` and never waits; a dedicated thread formats and writes. When the queue is full
//! the request still succeeds and the loss is counted in `bedrock_ledger_dropped_total`.
//! The file is opened for append, flushed whenever the queue runs dry, and reopened on SIGHUP
//! so logrotate can move it away.

pub mod line;

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use prometheus::IntCounter;

pub use line::{Line, Record};

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

#[cfg(test)]
mod tests;
