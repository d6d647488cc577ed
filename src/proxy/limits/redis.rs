//! The counters shared by every replica, in Redis.
//!
//! A counter is a hash per app (or app × model), limit and window: `spent` (settled use) and
//! one `r:<replica>` field per replica holding its reservations. The check script reads a
//! call's counters, counts only the reservations of replicas that are alive (each replica
//! keeps a key with a 30 s expiry; a replica that died takes its reservations with it), and
//! reserves on all of them or none. Settlements go through one task per replica, merged per
//! counter and retried until Redis takes them, so a call's spend is never lost to an outage.
//!
//! Amounts are integers below 2^53 (nano-dollars, tokens, requests), which Lua's numbers hold
//! exactly.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use tokio::sync::mpsc;

use super::{Ask, Checked, Held, KEY_PREFIX, Settlement, Unavailable};
use crate::metrics::LimitMetrics;

/// How long a replica counts as alive after it last spoke to Redis.
const ALIVE_SECS: u64 = 30;
/// Counters settled per script call.
const SETTLE_BATCH: usize = 100;
/// Wait before retrying settlements Redis did not take.
const RETRY: Duration = Duration::from_millis(500);

/// Where Redis is and how long to wait for it.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://[:password@]host:port[/db]` (or `rediss://` for TLS-less builds: refused).
    pub url: String,
    /// Longest wait for an answer (and for a connection) before the check fails open or closed.
    pub timeout: Duration,
}

/// KEYS[1]: this replica's liveness key; KEYS[2..]: the counters. ARGV[1]: this replica's
/// field; ARGV[2]: the liveness expiry (s); ARGV[3]: the liveness key prefix; then per counter
/// its limit, the amount asked and the counter's expiry (s). Returns {0, spent, reserved, …}
/// (what each counter held before) or {i, spent, reserved} for the first counter (1-based)
/// without room.
const CHECK: &str = r"
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
local seen = {0}
for i = 2, #KEYS do
  local a = 4 + (i - 2) * 3
  local limit, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local spent, reserved = 0, 0
  local h = redis.call('HGETALL', KEYS[i])
  for j = 1, #h, 2 do
    local f, v = h[j], tonumber(h[j + 1])
    if f == 'spent' then
      spent = v
    elseif v > 0 and redis.call('EXISTS', ARGV[3] .. string.sub(f, 3)) == 1 then
      reserved = reserved + v
    else
      redis.call('HDEL', KEYS[i], f)
    end
  end
  if spent + reserved + amount > limit then
    return {i - 1, spent, reserved}
  end
  seen[#seen + 1] = spent
  seen[#seen + 1] = reserved
end
for i = 2, #KEYS do
  local a = 4 + (i - 2) * 3
  redis.call('HINCRBY', KEYS[i], ARGV[1], ARGV[a + 1])
  redis.call('EXPIRE', KEYS[i], ARGV[a + 2])
end
return seen
";

/// KEYS: the counters. ARGV[1]: this replica's field; then per counter the reservation to take
/// back, the use to add and the counter's expiry (s).
const SETTLE: &str = r"
for i = 1, #KEYS do
  local a = 2 + (i - 1) * 3
  if tonumber(ARGV[a]) > 0 then
    if redis.call('HINCRBY', KEYS[i], ARGV[1], -tonumber(ARGV[a])) <= 0 then
      redis.call('HDEL', KEYS[i], ARGV[1])
    end
  end
  if tonumber(ARGV[a + 1]) > 0 then
    redis.call('HINCRBY', KEYS[i], 'spent', ARGV[a + 1])
    redis.call('EXPIRE', KEYS[i], ARGV[a + 2])
  end
end
return 0
";

pub struct Shared {
    conn: ConnectionManager,
    check: Script,
    /// This replica's field in every counter, `r:<id>`.
    field: String,
    alive_key: String,
    timeout: Duration,
    settle_tx: mpsc::UnboundedSender<Job>,
    /// Settlements handed to the settling task and not yet in Redis.
    unsettled: Arc<AtomicUsize>,
}

struct Job {
    settlements: Vec<Settlement>,
    /// It takes back a reservation (counted in `bedrock_limit_reservations_in_flight`).
    reserved: bool,
}

fn alive_prefix() -> String {
    format!("{KEY_PREFIX}replica:")
}

/// A random id for this process: replicas must not share one.
fn replica_id() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

impl Shared {
    pub fn connect(options: RedisOptions, metrics: LimitMetrics) -> Result<Shared, String> {
        let client = Client::open(options.url.as_str())
            .map_err(|e| format!("--redis {:?} is not a Redis URL: {e}", redact(&options.url)))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.timeout))
            .set_connection_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot set up the Redis connection: {e}"))?;
        let id = replica_id();
        let field = format!("r:{id}");
        let alive_key = format!("{}{id}", alive_prefix());
        let (settle_tx, rx) = mpsc::unbounded_channel();
        let unsettled = Arc::new(AtomicUsize::new(0));
        tokio::spawn(settler(
            conn.clone(),
            field.clone(),
            alive_key.clone(),
            options.timeout,
            rx,
            metrics,
            unsettled.clone(),
        ));
        tracing::info!(replica = %id, "limits shared through Redis");
        Ok(Shared {
            conn,
            check: Script::new(CHECK),
            field,
            alive_key,
            timeout: options.timeout,
            settle_tx,
            unsettled,
        })
    }

    pub async fn check(&self, asks: &[Ask]) -> Result<Checked, Unavailable> {
        let mut invocation = self.check.prepare_invoke();
        invocation
            .key(&self.alive_key)
            .arg(&self.field)
            .arg(ALIVE_SECS)
            .arg(alive_prefix());
        for ask in asks {
            invocation
                .key(&ask.key)
                .arg(ask.limit)
                .arg(ask.amount)
                .arg(ask.ttl);
        }
        let mut conn = self.conn.clone();
        let answer: Vec<i64> =
            match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await {
                Err(_) => return Err(Unavailable(format!("no answer within {:?}", self.timeout))),
                Ok(Err(e)) => return Err(Unavailable(e.to_string())),
                Ok(Ok(v)) => v,
            };
        let n = |i: usize| {
            answer
                .get(i)
                .and_then(|v| u64::try_from(*v).ok())
                .unwrap_or(0)
        };
        match answer.first() {
            Some(0) => Ok(Checked::Admitted(
                (0..asks.len())
                    .map(|i| Held {
                        spent: n(1 + 2 * i),
                        reserved: n(2 + 2 * i),
                    })
                    .collect(),
            )),
            Some(&i) if i > 0 && (i as usize) <= asks.len() => Ok(Checked::Over(
                i as usize - 1,
                Held {
                    spent: n(1),
                    reserved: n(2),
                },
            )),
            _ => Err(Unavailable(format!(
                "unexpected answer from the check script: {answer:?}"
            ))),
        }
    }

    pub fn settle(&self, settlements: Vec<Settlement>, reserved: bool) {
        self.unsettled.fetch_add(1, Ordering::Relaxed);
        if self
            .settle_tx
            .send(Job {
                settlements,
                reserved,
            })
            .is_err()
        {
            // The settling task is gone (the runtime is shutting down): nothing can be sent.
            self.unsettled.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub async fn flush(&self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        while self.unsettled.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

type Pending = HashMap<String, (u64, u64, i64)>;

/// Adds a job's settlements to those waiting, per counter.
fn merge(job: Job, pending: &mut Pending, jobs: &mut usize, reservations: &mut i64) {
    *jobs += 1;
    *reservations += i64::from(job.reserved);
    for s in job.settlements {
        let entry = pending.entry(s.key).or_insert((0, 0, 0));
        entry.0 = entry.0.saturating_add(s.reserved);
        entry.1 = entry.1.saturating_add(s.actual);
        entry.2 = entry.2.max(s.ttl);
    }
}

/// Applies settlements in order of arrival, merged per counter, retrying while Redis does not
/// answer; between them keeps this replica's liveness key fresh.
async fn settler(
    mut conn: ConnectionManager,
    field: String,
    alive_key: String,
    timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Job>,
    metrics: LimitMetrics,
    unsettled: Arc<AtomicUsize>,
) {
    let script = Script::new(SETTLE);
    // Per counter: (reservation to take back, use to add, expiry).
    let mut pending = Pending::new();
    let (mut jobs, mut reservations) = (0usize, 0i64);
    let mut beat = tokio::time::interval(Duration::from_secs(ALIVE_SECS / 3));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if pending.is_empty() {
            tokio::select! {
                job = rx.recv() => match job {
                    None => return,
                    Some(job) => merge(job, &mut pending, &mut jobs, &mut reservations),
                },
                _ = beat.tick() => {
                    let set = redis::cmd("SET")
                        .arg(&alive_key)
                        .arg(1)
                        .arg("EX")
                        .arg(ALIVE_SECS)
                        .to_owned();
                    let _ = tokio::time::timeout(timeout, set.query_async::<()>(&mut conn)).await;
                    continue;
                }
            }
        }
        while let Ok(job) = rx.try_recv() {
            merge(job, &mut pending, &mut jobs, &mut reservations);
        }
        let keys: Vec<String> = pending.keys().take(SETTLE_BATCH).cloned().collect();
        let mut invocation = script.prepare_invoke();
        invocation.arg(&field);
        for key in &keys {
            if let Some(&(reserved, actual, ttl)) = pending.get(key) {
                invocation.key(key).arg(reserved).arg(actual).arg(ttl);
            }
        }
        match tokio::time::timeout(timeout, invocation.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => {
                for key in &keys {
                    pending.remove(key);
                }
                if pending.is_empty() {
                    metrics.in_flight.sub(reservations);
                    unsettled.fetch_sub(jobs, Ordering::Relaxed);
                    (jobs, reservations) = (0, 0);
                }
            }
            _ => {
                metrics.unavailable.inc();
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
