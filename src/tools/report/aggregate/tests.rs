//! Tests of reading and summing: exact sums, the period, grouping, malformed lines.

use super::*;

fn query(from: Option<&str>, to: Option<&str>, by: GroupBy) -> Query {
    Query {
        from: from.map(|s| Timestamp::parse_bound(s).unwrap()),
        to: to.map(|s| Timestamp::parse_bound(s).unwrap()),
        by,
    }
}

fn line(time: &str, app: &str, model: &str, status: u16, cost: Option<&str>) -> String {
    let (cost, by_type, savings) = match cost {
        Some(c) => (
            format!("\"{c}\""),
            format!(r#"{{"input":"0","output":"{c}","cache_read":"0","cache_write":"0"}}"#),
            "\"0.000000000000\"".to_string(),
        ),
        None => ("null".into(), "null".into(), "null".into()),
    };
    format!(
        r#"{{"time":"{time}","request_id":"r","app":"{app}","model":"{model}","operation":"Converse","status":{status},"tier":null,"tokens":{{"input":10,"output":5,"cache_read":1,"cache_write":2,"cache_write_1h":0}},"cost_usd":{cost},"cost_usd_by_type":{by_type},"cache_savings_usd":{savings},"latency_ms":1.5,"rate_card":"2026-11"}}"#
    )
}

fn run(text: &str, q: &Query) -> Report {
    aggregate(text.as_bytes(), q).unwrap()
}

#[test]
fn sums_tiny_amounts_exactly() {
    let text: String = (0..10_000)
        .map(|_| {
            line(
                "2026-11-23T10:00:00Z",
                "a",
                "m",
                200,
                Some("0.000000000001"),
            ) + "\n"
        })
        .collect();
    let r = run(&text, &Query::default());
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.total.cost, Pico(10_000));
    assert_eq!(r.total.cost.to_string(), "0.000000010000");
    assert_eq!(r.total.cost_by_type.output, Pico(10_000));
    assert_eq!(r.total.tokens.input, 100_000);
    assert_eq!(r.total.requests, 10_000);
}

#[test]
fn period_is_from_inclusive_to_exclusive() {
    let text = [
        line("2026-11-22T23:59:59.999Z", "a", "m", 200, Some("1")),
        line("2026-11-23T00:00:00.000Z", "a", "m", 200, Some("10")),
        line("2026-11-23T23:59:59.999999999Z", "a", "m", 200, Some("100")),
        line("2026-11-24T00:00:00Z", "a", "m", 200, Some("1000")),
        line("2026-11-24T01:00:00+02:00", "a", "m", 200, Some("10000")),
    ]
    .join("\n");
    let cost = |from, to| {
        run(&text, &query(from, to, GroupBy::AppModel))
            .total
            .cost
            .usd_rounded(0)
    };
    assert_eq!(cost(None, None), "11111");
    assert_eq!(cost(Some("2026-11-23"), Some("2026-11-24")), "10110");
    assert_eq!(cost(Some("2026-11-23"), None), "11110");
    assert_eq!(cost(None, Some("2026-11-23")), "1");
    assert_eq!(
        cost(
            Some("2026-11-23T00:00:00.001Z"),
            Some("2026-11-24T00:00:00.000000001Z")
        ),
        "11100"
    );
}

#[test]
fn unpriced_requests_are_rows_of_their_own() {
    let text = [
        line("2026-11-23T10:00:00Z", "a", "m", 200, Some("0.5")),
        line("2026-11-23T10:00:00Z", "a", "m", 200, None),
        line("2026-11-23T10:00:00Z", "a", "new", 200, None),
    ]
    .join("\n");
    let r = run(&text, &Query::default());
    assert_eq!(r.rows.len(), 3);
    let (priced, unpriced): (Vec<_>, Vec<_>) = r.rows.iter().partition(|r| r.priced);
    assert_eq!(priced.len(), 1);
    assert_eq!(
        priced[0].totals.cost_usd(),
        Some(Pico::parse_usd("0.5").unwrap())
    );
    assert_eq!(priced[0].totals.output_share(), Some(10_000));
    for row in unpriced {
        assert_eq!(row.totals.cost_usd(), None);
        assert_eq!(row.totals.output_share(), None);
        assert_eq!(row.totals.unpriced_requests(), 1);
    }
    // The priced row sorts first; the unpriced ones by app, model.
    assert!(r.rows[0].priced);
    assert_eq!(r.rows[1].model.as_deref(), Some("m"));
    assert_eq!(r.rows[2].model.as_deref(), Some("new"));
    assert_eq!(r.total.requests, 3);
    assert_eq!(r.total.unpriced_requests(), 2);
    assert_eq!(r.total.tokens.input, 30);
    assert_eq!(r.total.cost_usd(), Some(Pico::parse_usd("0.5").unwrap()));
    let both = r.group(Some("a"), Some("m"));
    assert_eq!((both.requests, both.priced_requests), (2, 1));
    assert_eq!(both.tokens.input, 20);
    assert_eq!(both.cost_usd(), Some(Pico::parse_usd("0.5").unwrap()));
    assert_eq!(r.group(Some("a"), Some("none")), Totals::default());
    let mut sum = Totals::default();
    r.rows.iter().for_each(|row| sum.merge(&row.totals));
    assert_eq!(sum, r.total);

    let r = run(
        &line("2026-11-23T10:00:00Z", "a", "new", 200, None),
        &Query::default(),
    );
    assert_eq!(r.total.cost_usd(), None);
    let r = run("", &Query::default());
    assert_eq!(r.total.cost_usd(), Some(Pico(0)));
    assert_eq!(r.total.output_share(), None);
}

#[test]
fn errors_are_statuses_from_400() {
    let text = [
        line("2026-11-23T10:00:00Z", "a", "m", 200, Some("0")),
        line("2026-11-23T10:00:00Z", "a", "m", 399, Some("0")),
        line("2026-11-23T10:00:00Z", "a", "m", 400, Some("0")),
        line("2026-11-23T10:00:00Z", "a", "m", 503, None),
    ]
    .join("\n");
    let r = run(&text, &Query::default());
    assert_eq!(r.total.requests, 4);
    assert_eq!(r.total.errors, 2);
}

#[test]
fn grouping_by_app_or_model() {
    let text = [
        line("2026-11-23T10:00:00Z", "a", "m1", 200, Some("1")),
        line("2026-11-23T10:00:00Z", "a", "m2", 200, Some("2")),
        line("2026-11-23T10:00:00Z", "b", "m1", 200, Some("4")),
    ]
    .join("\n");
    let r = run(&text, &query(None, None, GroupBy::App));
    let got: Vec<_> = r
        .rows
        .iter()
        .map(|r| {
            (
                r.app.as_deref(),
                r.model.as_deref(),
                r.totals.cost.usd_rounded(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(Some("b"), None, "4".into()), (Some("a"), None, "3".into())]
    );
    let r = run(&text, &query(None, None, GroupBy::Model));
    let got: Vec<_> = r
        .rows
        .iter()
        .map(|r| {
            (
                r.app.as_deref(),
                r.model.as_deref(),
                r.totals.cost.usd_rounded(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (None, Some("m1"), "5".into()),
            (None, Some("m2"), "2".into())
        ]
    );
}

#[test]
fn malformed_lines_are_skipped_and_counted() {
    let good = line("2026-11-23T10:00:00Z", "a", "m", 200, Some("1"));
    let text = [
        good.clone(),
        "{\"time\":\"2026-11-23T10:00:00Z\",\"app\":\"a\"".into(), // truncated
        String::new(),                                             // blank: ignored
        "   \r".into(),                                            // blank: ignored
        good.replace("2026-11-23T10:00:00Z", "2026-11-23T10:00:00"),
        good.replace("\"1\"", "\"-1\""),
        good.replace("\"1\"", "1"),
        good.replace("\"input\":10", "\"input\":-10"),
        good.replace("\"status\":200", "\"status\":\"200\""),
        good.replace("\"app\":\"a\",", ""),
        good.replace(
            r#""cost_usd_by_type":{"input":"0","output":"1","cache_read":"0","cache_write":"0"}"#,
            r#""cost_usd_by_type":null"#,
        ),
        good.replace("\"1\"", "\"18446744.073709551616\""),
        "[1,2,3]".into(),
        "\u{1b}[31m not json".into(),
        good.clone() + "\r",
    ]
    .join("\n");
    let r = run(&text, &Query::default());
    assert_eq!(r.total.requests, 2);
    assert_eq!(r.skipped_lines, 11);
    let first = r.first_skipped.unwrap();
    assert_eq!(first.line, 2);
    assert_eq!(first.reason, "EOF while parsing an object");

    let reasons: Vec<String> = text
        .lines()
        .filter_map(|l| Record::parse(l.as_bytes()).err())
        .collect();
    assert!(reasons.contains(&"invalid time \"2026-11-23T10:00:00\"".to_string()));
    assert!(reasons.contains(&"invalid cost_usd \"-1\"".to_string()));
    assert!(reasons.contains(&"missing field `app`".to_string()));
    assert!(reasons.contains(&"invalid cost_usd \"18446744.073709551616\"".to_string()));
    assert!(reasons.contains(&"cost_usd is set but cost_usd_by_type is null".to_string()));
}

#[test]
fn largest_amount_per_line_is_accepted() {
    let max = "18446744.073709551615";
    let text = [
        line("2026-11-23T10:00:00Z", "a", "m", 200, Some(max)),
        line("2026-11-23T10:00:00Z", "a", "m", 200, Some(max)),
    ]
    .join("\n");
    let r = run(&text, &Query::default());
    assert_eq!(r.total.cost, Pico(2 * u128::from(u64::MAX)));
    assert_eq!(r.skipped_lines, 0);
}

#[test]
fn unknown_fields_and_missing_optional_ones_are_fine() {
    let text = [
            r#"{"time":"2026-11-23T10:00:00Z","app":"a","model":"m","status":200,"tokens":{"input":1,"output":2,"reasoning":7},"cost_usd":"0.1","cost_usd_by_type":{"output":"0.1","cache_write_1h":"0"},"new_field":{"nested":[1,2]}}"#,
            r#"{"time":"2026-11-23T10:00:00Z","app":"a","model":"m","status":200,"tokens":{}}"#,
            r#"{"time":"2026-11-23T10:00:00Z","app":"\u0061","model":"m","status":500,"tokens":{"input":0,"output":0,"cache_read":0,"cache_write":0,"cache_write_1h":0},"cost_usd":"0","cost_usd_by_type":{"input":"0","output":"0","cache_read":"0","cache_write":"0"},"cache_savings_usd":null}"#,
        ]
        .join("\n");
    let r = run(&text, &Query::default());
    assert_eq!(r.skipped_lines, 0);
    assert_eq!(r.rows.len(), 2);
    assert_eq!(r.total.requests, 3);
    assert_eq!(r.total.priced_requests, 2);
    assert_eq!(r.total.errors, 1);
    assert_eq!(r.total.tokens.output, 2);
    assert_eq!(r.total.output_share(), Some(10_000));
}

#[test]
fn overlong_and_binary_lines_do_not_abort() {
    let good = line("2026-11-23T10:00:00Z", "a", "m", 200, Some("1"));
    let mut text = good.clone().into_bytes();
    text.push(b'\n');
    text.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
    text.push(b'\n');
    text.extend_from_slice(&[0xff, 0xfe, b'{', 0]);
    text.push(b'\n');
    text.extend_from_slice(good.as_bytes()); // last line without a newline
    // A tiny buffer makes lines span many fill_buf calls.
    let input = io::BufReader::with_capacity(7, &text[..]);
    let r = aggregate(input, &Query::default()).unwrap();
    assert_eq!(r.total.requests, 2);
    assert_eq!(r.skipped_lines, 2);
    let first = r.first_skipped.unwrap();
    assert_eq!(first.line, 2);
    assert_eq!(first.reason, format!("longer than {MAX_LINE} bytes"));
}

#[test]
fn read_errors_fail() {
    struct Broken;
    impl io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let err = aggregate(io::BufReader::new(Broken), &Query::default()).unwrap_err();
    assert!(matches!(err, ReportError::Read(_)));
}

#[test]
fn corrupted_lines_never_panic() {
    let sample = include_str!("../../../../tests/fixtures/ledger-sample.jsonl");
    let mut parsed = 0;
    for l in sample.lines() {
        let b = l.as_bytes();
        for cut in 0..=b.len() {
            parsed += usize::from(Record::parse(&b[..cut]).is_ok());
        }
        let mut m = b.to_vec();
        for i in 0..m.len() {
            let keep = m[i];
            for c in [b'0', b'9', b'.', b'-', b'"', b'}', b'Z', 0xff] {
                m[i] = c;
                let _ = Record::parse(&m);
            }
            m[i] = keep;
        }
    }
    // Only the complete valid lines (9) parse among truncations.
    assert_eq!(parsed, 9);
}
