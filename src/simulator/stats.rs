//! What the simulator saw and what it reported: the ground truth tests compare the proxy's
//! metrics against.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::usage::Usage;

/// A snapshot of the simulator's counters.
#[derive(Clone, Debug, Default)]
pub struct SimStats {
    /// Every request received, including rejected ones.
    pub requests: u64,
    /// `Operation::as_str()` -> count; paths that are no operation count under `"Unknown"`.
    pub by_operation: BTreeMap<&'static str, u64>,
    /// Counted only when the simulator expects credentials.
    pub signatures_valid: u64,
    pub signatures_invalid: u64,
    /// (model id as decoded, `"input"|"output"|"cache_read"|"cache_write"`) -> tokens reported
    /// in usage that the simulator finished sending. `input` and `output` appear for every
    /// answered call (even when zero), cache types only when non-zero; faults add nothing.
    pub tokens: BTreeMap<(String, &'static str), u64>,
    /// (model id, or the guardrail id for ApplyGuardrail; unit) -> units the simulator
    /// answered with: `image`, `video_second`, `search_unit`, and the guardrail policy keys
    /// (`content_policy`, …). Only non-zero counts appear.
    pub units: BTreeMap<(String, &'static str), u64>,
    pub last_request: Option<SeenRequest>,
    /// Every STS `AssumeRole` the simulator answered, in order.
    pub assumed_roles: Vec<AssumedRole>,
    /// Bedrock calls by who signed them: a session's name, or [`METER_IDENTITY`] for any
    /// other key (the meter's own).
    pub signed_by: BTreeMap<String, u64>,
    /// Calls signed by a session for another app than the session's (refused).
    pub identity_mismatches: u64,
    /// Converse and InvokeModel calls by the `app` their request metadata names (`""`: none).
    pub metadata_apps: BTreeMap<String, u64>,
    /// The request metadata of the last call that carried any.
    pub last_metadata: Option<BTreeMap<String, String>>,
}

/// [`SimStats::signed_by`]'s name for calls not signed by a session.
pub const METER_IDENTITY: &str = "(meter)";

/// One `AssumeRole` call as the simulator's STS received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumedRole {
    pub role_arn: String,
    pub session_name: String,
    /// Session tags, in the order sent.
    pub tags: Vec<(String, String)>,
    pub duration_seconds: u64,
}

impl SimStats {
    /// Tokens of `kind` reported for `model`, zero when none were.
    pub fn token_count(&self, model: &str, kind: &str) -> u64 {
        self.tokens
            .iter()
            .filter(|((m, k), _)| m == model && *k == kind)
            .map(|(_, n)| *n)
            .sum()
    }
}

/// The last request as it arrived, for tests that check what the proxy forwarded.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// Raw path and query, exactly as received.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

/// The live counters behind [`SimStats`] snapshots.
#[derive(Debug, Default)]
pub struct Recorder {
    stats: Mutex<SimStats>,
}

impl Recorder {
    pub fn snapshot(&self) -> SimStats {
        self.with(|s| s.clone())
    }

    pub fn request(&self, operation: &'static str, seen: SeenRequest) {
        self.with(|s| {
            s.requests += 1;
            *s.by_operation.entry(operation).or_default() += 1;
            s.last_request = Some(seen);
        });
    }

    pub fn signature(&self, valid: bool) {
        self.with(|s| {
            if valid {
                s.signatures_valid += 1;
            } else {
                s.signatures_invalid += 1;
            }
        });
    }

    /// Records usage the simulator has just finished handing to the client.
    pub fn usage_sent(&self, model: &str, usage: &Usage) {
        self.with(|s| {
            let mut add = |kind: &'static str, n: u64, always: bool| {
                if always || n > 0 {
                    let slot = s.tokens.entry((model.to_owned(), kind)).or_default();
                    *slot = slot.saturating_add(n);
                }
            };
            add("input", usage.input, true);
            add("output", usage.output, true);
            add("cache_read", usage.cache_read, false);
            add("cache_write", usage.cache_write, false);
        });
    }

    /// Records non-token units of an answer the simulator has just sent.
    pub fn units_sent(&self, model: &str, unit: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        self.with(|s| {
            let slot = s.units.entry((model.to_owned(), unit)).or_default();
            *slot = slot.saturating_add(n);
        });
    }

    pub fn assumed_role(&self, call: AssumedRole) {
        self.with(|s| s.assumed_roles.push(call));
    }

    /// A Bedrock call signed by `signer` (a session name or [`METER_IDENTITY`]).
    pub fn signed_by(&self, signer: &str) {
        self.with(|s| *s.signed_by.entry(signer.to_owned()).or_default() += 1);
    }

    pub fn identity_mismatch(&self) {
        self.with(|s| s.identity_mismatches += 1);
    }

    /// The request metadata a Converse or InvokeModel call carried.
    pub fn metadata(&self, metadata: Option<BTreeMap<String, String>>) {
        self.with(|s| {
            let app = metadata
                .as_ref()
                .and_then(|m| m.get("app"))
                .cloned()
                .unwrap_or_default();
            *s.metadata_apps.entry(app).or_default() += 1;
            if metadata.is_some() {
                s.last_metadata = metadata;
            }
        });
    }

    fn with<T>(&self, f: impl FnOnce(&mut SimStats) -> T) -> T {
        // A panic elsewhere while holding the lock leaves counters that are still consistent
        // enough for a simulator; keep serving rather than propagate the poison.
        let mut guard = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_accumulates_per_model_and_type() {
        let r = Recorder::default();
        let u = Usage {
            input: 10,
            output: 0,
            cache_read: 0,
            cache_write: 4,
            cache_write_1h: 1,
        };
        r.usage_sent("m1", &u);
        r.usage_sent("m1", &u);
        r.usage_sent("m2", &Usage { input: 1, ..u });
        let s = r.snapshot();
        let m1 = |k| s.tokens.get(&("m1".to_owned(), k)).copied();
        assert_eq!(m1("input"), Some(20));
        assert_eq!(m1("output"), Some(0));
        assert_eq!(m1("cache_read"), None);
        assert_eq!(m1("cache_write"), Some(8));
        assert_eq!(s.token_count("m2", "input"), 1);
        assert_eq!(s.token_count("m3", "input"), 0);
        assert_eq!(s.tokens.len(), 6);
    }
}
