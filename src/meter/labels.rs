//! Label guard: keeps the `app` and `model` label values bounded whatever clients send.
//!
//! An app name must match `[A-Za-z0-9._-]{1,64}` (else `invalid`). A model id must look like a
//! Bedrock model id or ARN (else `invalid`), and becomes a label of its own only once Bedrock
//! accepted a call to it or the rate card knows it — a model id Bedrock rejected is reported as
//! `unverified`, so junk ids cannot mint series. Past the configured caps, new values fold into
//! `other` and each fold is counted in `bedrock_label_overflow_total`.

use std::sync::Arc;

use dashmap::DashMap;

use crate::metrics::Metrics;

pub const INVALID: &str = "invalid";
pub const OTHER: &str = "other";
pub const UNVERIFIED: &str = "unverified";
pub use crate::names::UNKNOWN_APP;
use crate::names::{UNAUTHENTICATED, valid_app};
/// The `model` label of operations not addressed to a model (guardrails, async jobs, bad paths).
pub const NO_MODEL: &str = "none";

const MAX_MODEL_LABEL_LEN: usize = 256;

pub struct LabelGuard {
    max_apps: usize,
    max_models: usize,
    apps: DashMap<Box<str>, Arc<str>>,
    models: DashMap<Box<str>, Arc<str>>,
    fixed: Fixed,
}

struct Fixed {
    unknown: Arc<str>,
    unauthenticated: Arc<str>,
    invalid: Arc<str>,
    other: Arc<str>,
    unverified: Arc<str>,
    none: Arc<str>,
}

impl LabelGuard {
    pub fn new(max_apps: usize, max_models: usize) -> Self {
        LabelGuard {
            max_apps,
            max_models,
            apps: DashMap::new(),
            models: DashMap::new(),
            fixed: Fixed {
                unknown: UNKNOWN_APP.into(),
                unauthenticated: UNAUTHENTICATED.into(),
                invalid: INVALID.into(),
                other: OTHER.into(),
                unverified: UNVERIFIED.into(),
                none: NO_MODEL.into(),
            },
        }
    }

    /// The `app` label for a client-supplied app name.
    pub fn app(&self, raw: &str, metrics: &Metrics) -> Arc<str> {
        if !valid_app(raw) {
            return self.fixed.invalid.clone();
        }
        // The proxy's own placeholders never take a slot under the cap (else a flood of named
        // apps could push every anonymous or refused request into `other`), and a client cannot
        // claim them either way: they mean the same thing whoever says them.
        match raw {
            UNKNOWN_APP => return self.fixed.unknown.clone(),
            UNAUTHENTICATED => return self.fixed.unauthenticated.clone(),
            OTHER => return self.fixed.other.clone(),
            INVALID => return self.fixed.invalid.clone(),
            _ => {}
        }
        admit(&self.apps, raw, self.max_apps, &self.fixed.other, || {
            metrics.label_overflow("app")
        })
    }

    /// The `model` label for a model id. `vouched` is true when Bedrock answered the call with a
    /// success or the rate card prices the id.
    pub fn model(&self, raw: Option<&str>, vouched: bool, metrics: &Metrics) -> Arc<str> {
        let Some(raw) = raw else {
            return self.fixed.none.clone();
        };
        if !valid_model(raw) {
            return self.fixed.invalid.clone();
        }
        if let Some(known) = self.models.get(raw) {
            return known.clone();
        }
        if !vouched {
            return self.fixed.unverified.clone();
        }
        admit(
            &self.models,
            raw,
            self.max_models,
            &self.fixed.other,
            || metrics.label_overflow("model"),
        )
    }
}

fn admit(
    set: &DashMap<Box<str>, Arc<str>>,
    raw: &str,
    cap: usize,
    other: &Arc<str>,
    overflow: impl FnOnce(),
) -> Arc<str> {
    if let Some(v) = set.get(raw) {
        return v.clone();
    }
    // The cap is checked before inserting; concurrent first sightings may overshoot it by the
    // number of racing threads, which keeps the bound without a lock.
    if set.len() >= cap {
        overflow();
        return other.clone();
    }
    set.entry(raw.into()).or_insert_with(|| raw.into()).clone()
}

fn valid_model(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_MODEL_LABEL_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_are_validated_and_capped() {
        let m = Metrics::new().unwrap();
        let g = LabelGuard::new(2, 10);
        assert_eq!(&*g.app("checkout", &m), "checkout");
        assert_eq!(&*g.app("bad name", &m), INVALID);
        assert_eq!(&*g.app(&"x".repeat(65), &m), INVALID);
        assert_eq!(&*g.app("", &m), INVALID);
        assert_eq!(&*g.app("search.v2_beta-1", &m), "search.v2_beta-1");
        assert_eq!(&*g.app("third", &m), OTHER);
        assert_eq!(&*g.app("checkout", &m), "checkout");
        let text = String::from_utf8(m.render().unwrap()).unwrap();
        assert!(
            text.contains(r#"bedrock_label_overflow_total{label="app"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn models_need_a_voucher() {
        let m = Metrics::new().unwrap();
        let g = LabelGuard::new(10, 2);
        assert_eq!(&*g.model(Some("bogus.model"), false, &m), UNVERIFIED);
        assert_eq!(
            &*g.model(Some("amazon.nova-micro-v1:0"), true, &m),
            "amazon.nova-micro-v1:0"
        );
        // Once admitted, later failures keep the real label.
        assert_eq!(
            &*g.model(Some("amazon.nova-micro-v1:0"), false, &m),
            "amazon.nova-micro-v1:0"
        );
        assert_eq!(&*g.model(Some("a b"), true, &m), INVALID);
        assert_eq!(&*g.model(None, true, &m), NO_MODEL);
        assert_eq!(&*g.model(Some("m2"), true, &m), "m2");
        assert_eq!(&*g.model(Some("m3"), true, &m), OTHER);
    }
}
