//! Tests of the writer: the line's bytes, the bounded queue, appending and reopening.

use std::time::UNIX_EPOCH;

use super::*;
use crate::api::Operation;
use crate::pricing::{Cost, Usage};

fn record(app: &str) -> Record {
    Record {
        time: UNIX_EPOCH + Duration::from_millis(1_795_428_000_123),
        request_id: Some("req-1".into()),
        app: app.into(),
        model: "amazon.nova-micro-v1:0".into(),
        operation: Operation::Converse,
        router: None,
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
        units: Default::default(),
        unit_cost: None,
        latency: Duration::from_micros(812_400),
        rate_card: "2026-11".into(),
        stream: false,
        max_tokens: Some(512),
        stop_reason: Some(crate::api::StopReason::MaxTokens),
        prefix: Some(crate::api::request::Prefix {
            fingerprint: 0x0123_4567_89ab_cdef,
            bytes: 3900,
        }),
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
            "rate_card": "2026-11",
            "stream": false,
            "max_tokens": 512,
            "stop_reason": "max_tokens",
            "prefix": {"fingerprint": "0123456789abcdef", "bytes": 3900, "tokens": 975, "tokens_estimated": true}
        })
    );
}

#[test]
fn line_bytes_are_the_documented_contract() {
    // docs/report.md promises this field order and these number and string forms.
    let r = record("checkout");
    let bytes = serde_json::to_string(&Line::from(&r)).unwrap();
    assert_eq!(
        bytes,
        r#"{"time":"2026-11-23T10:00:00.123Z","request_id":"req-1","app":"checkout","model":"amazon.nova-micro-v1:0","operation":"Converse","status":200,"tier":"default","tokens":{"input":1000,"output":200,"cache_read":0,"cache_write":0,"cache_write_1h":0},"cost_usd":"0.000063000000","cost_usd_by_type":{"input":"0.000035000000","output":"0.000028000000","cache_read":"0.000000000000","cache_write":"0.000000000000"},"cache_savings_usd":"0.000000000000","latency_ms":812.4,"rate_card":"2026-11","stream":false,"max_tokens":512,"stop_reason":"max_tokens","prefix":{"fingerprint":"0123456789abcdef","bytes":3900,"tokens":975,"tokens_estimated":true}}"#
    );
    let unpriced = Record {
        request_id: None,
        tier: None,
        cost: None,
        cache_savings: None,
        latency: Duration::from_nanos(1_500),
        stream: true,
        max_tokens: None,
        stop_reason: None,
        prefix: None,
        ..r
    };
    assert_eq!(
        serde_json::to_string(&Line::from(&unpriced)).unwrap(),
        r#"{"time":"2026-11-23T10:00:00.123Z","request_id":null,"app":"checkout","model":"amazon.nova-micro-v1:0","operation":"Converse","status":200,"tier":null,"tokens":{"input":1000,"output":200,"cache_read":0,"cache_write":0,"cache_write_1h":0},"cost_usd":null,"cost_usd_by_type":null,"cache_savings_usd":null,"latency_ms":0.002,"rate_card":"2026-11","stream":true}"#
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
