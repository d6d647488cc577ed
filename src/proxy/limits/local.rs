//! The counters of a single replica (no `--redis`): the same check and settlement as the
//! Redis script, under one mutex held for a few map operations and never across an await.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::{Ask, Checked, Held, Settlement};

/// Counters past this many are swept of expired windows.
const SWEEP_ABOVE: usize = 4096;

#[derive(Default)]
pub struct Local {
    counters: Mutex<HashMap<String, Counter>>,
}

#[derive(Default)]
struct Counter {
    spent: u64,
    reserved: u64,
    /// Unix seconds after which the counter is gone (its window is over).
    expires: i64,
}

impl Local {
    pub fn check(&self, asks: &[Ask], now: i64) -> Checked {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if counters.len() > SWEEP_ABOVE {
            counters.retain(|_, c| c.expires > now);
        }
        let mut held = Vec::with_capacity(asks.len());
        for (i, ask) in asks.iter().enumerate() {
            let h = match counters.get(&ask.key) {
                Some(c) if c.expires > now => Held {
                    spent: c.spent,
                    reserved: c.reserved,
                },
                _ => Held::default(),
            };
            if h.spent
                .saturating_add(h.reserved)
                .saturating_add(ask.amount)
                > ask.limit
            {
                return Checked::Over(i, h);
            }
            held.push(h);
        }
        for ask in asks {
            let c = counters.entry(ask.key.clone()).or_default();
            if c.expires <= now {
                *c = Counter::default();
            }
            c.reserved = c.reserved.saturating_add(ask.amount);
            c.expires = now + ask.ttl;
        }
        Checked::Admitted(held)
    }

    pub fn settle(&self, settlements: &[Settlement], now: i64) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for s in settlements {
            let c = counters.entry(s.key.clone()).or_default();
            if c.expires <= now {
                *c = Counter::default();
            }
            c.reserved = c.reserved.saturating_sub(s.reserved);
            c.spent = c.spent.saturating_add(s.actual);
            c.expires = c.expires.max(now + s.ttl);
        }
    }
}
