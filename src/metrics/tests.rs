//! Tests of the metrics and their exposition.

use super::*;

#[test]
fn exact_cost_and_no_cost_for_unpriced() {
    let m = Metrics::new().unwrap();
    let (app, priced, unpriced): (Arc<str>, Arc<str>, Arc<str>) =
        ("a".into(), "m1".into(), "m2".into());
    let s = m.series(&app, &priced);
    let usage = Usage {
        input: 3,
        output: 1,
        ..Default::default()
    };
    // Ten requests of 0.1 µ$ each: exact integer sums, no float drift.
    for _ in 0..10 {
        let cost = Cost {
            input: 100_000,
            ..Default::default()
        };
        m.usage(&s, &usage, Some(&cost));
    }
    m.usage(&m.series(&app, &unpriced), &usage, None);
    m.request(&app, &priced, Operation::Converse, 200, 0.01);
    let text = String::from_utf8(m.render().unwrap()).unwrap();
    assert!(
        text.contains(r#"bedrock_cost_usd_total{app="a",model="m1",type="input"} 0.000001"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"bedrock_cost_usd_total{app="a",model="m2""#),
        "{text}"
    );
    assert!(
        text.contains(r#"bedrock_tokens_total{app="a",model="m2",type="input"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"bedrock_requests_total{app="a",model="m1",operation="Converse",status="200"} 1"#
        ),
        "{text}"
    );
}

/// Past $18.4M of one type for one (app, model), a 64-bit pico-dollar sum would wrap
/// and Prometheus would see a counter reset.
#[test]
fn cost_sums_do_not_wrap() {
    let m = Metrics::new().unwrap();
    let (app, model): (Arc<str>, Arc<str>) = ("a".into(), "m".into());
    let s = m.series(&app, &model);
    // Three requests of $10M of output each: $30M.
    let cost = Cost {
        output: 10_000_000 * 1_000_000_000_000,
        ..Default::default()
    };
    for _ in 0..3 {
        m.usage(&s, &Usage::default(), Some(&cost));
    }
    let text = String::from_utf8(m.render().unwrap()).unwrap();
    assert!(
        text.contains(r#"bedrock_cost_usd_total{app="a",model="m",type="output"} 30000000"#),
        "{text}"
    );
}

#[test]
fn exposition_in_pieces_is_the_whole_text() {
    let m = Metrics::new().unwrap();
    let usage = Usage {
        input: 30,
        output: 7,
        ..Default::default()
    };
    for a in 0..5 {
        for (k, model) in ["m1", "m2", "m3"].iter().enumerate() {
            let (app, model): (Arc<str>, Arc<str>) = (format!("app{a}").into(), (*model).into());
            let s = m.series(&app, &model);
            // m2 unpriced: its cost lines are skipped, and the cost header written once.
            let cost = (k != 1).then(|| Cost {
                input: 1_000_000 * (a + 1),
                ..Default::default()
            });
            m.usage(&s, &usage, cost.as_ref());
            m.request(&app, &model, Operation::Converse, 200, 0.01);
        }
    }
    let whole = String::from_utf8(m.render().unwrap()).unwrap();
    for budget in [1, 100, 4096] {
        let mut exposition = m.exposition();
        let (mut text, mut pieces) = (String::new(), 0);
        loop {
            let mut piece = String::new();
            let more = exposition.next_piece(&m, &mut piece, budget).unwrap();
            pieces += 1;
            text.push_str(&piece);
            if !more {
                break;
            }
        }
        assert_eq!(text, whole, "budget {budget}");
        if budget == 1 {
            // One series (or one registry dump) a piece.
            assert!(pieces > 15 * 4, "{pieces} pieces");
        }
    }
    assert_eq!(whole.matches("# TYPE bedrock_cost_usd_total").count(), 1);
    assert_eq!(whole.matches("bedrock_cost_usd_total{").count(), 10 * 4);
}
