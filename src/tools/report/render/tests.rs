//! Tests of the three formats against the sample ledger, quoting, escaping, write errors.

use super::*;
use crate::tools::report::{Query, Timestamp, aggregate};

const SAMPLE: &str = include_str!("../../../../tests/fixtures/ledger-sample.jsonl");

fn rendered(query: &Query, format: Format) -> String {
    let report = aggregate(SAMPLE.as_bytes(), query).unwrap();
    let mut out = Vec::new();
    render(&report, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn period(from: &str, to: &str, by: GroupBy) -> Query {
    Query {
        from: Timestamp::parse_bound(from),
        to: Timestamp::parse_bound(to),
        by,
    }
}

#[test]
fn table_of_the_sample() {
    assert_eq!(
            rendered(&Query::default(), Format::Table),
            "\
app       model                                         requests  errors  input  output  cache_read  cache_write  cost_usd  output_share  cache_savings_usd
checkout  us.anthropic.claude-sonnet-4-5-20250929-v1:0         4       1   4000    2050       10000         2000  0.058575        57.75%           0.029700
search    us.amazon.nova-micro-v1:0                            2       0  17000    3700        4000            0  0.001148        45.12%           0.000105
checkout  us.amazon.nova-micro-v1:0                            1       0    300      50           0            0  0.000018        40.00%           0.000000
search    cohere.command-r-plus-v1:0                           2       0   2400     500           0            0  unpriced             -                  -
TOTAL                                                          9       1  23700    6300       14000         2000  0.059741        57.50%           0.029805

period: whole ledger
unpriced: 2 requests to models without a price: tokens counted, cost not in TOTAL
"
        );
}

#[test]
fn table_of_one_day_by_model() {
    assert_eq!(
            rendered(&period("2026-11-23", "2026-11-24", GroupBy::Model), Format::Table),
            "\
model                                         requests  errors  input  output  cache_read  cache_write  cost_usd  output_share  cache_savings_usd
us.anthropic.claude-sonnet-4-5-20250929-v1:0         3       1   2000    1550       10000         2000  0.043725        58.49%           0.029700
us.amazon.nova-micro-v1:0                            2       0  17000    3700        4000            0  0.001148        45.12%           0.000105
cohere.command-r-plus-v1:0                           1       0    900     100           0            0  unpriced             -                  -
TOTAL                                                6       1  19900    5350       14000         2000  0.044873        58.15%           0.029805

period: from 2026-11-23T00:00:00Z (inclusive) to 2026-11-24T00:00:00Z (exclusive)
unpriced: 1 request to models without a price: tokens counted, cost not in TOTAL
"
        );
}

#[test]
fn table_of_an_empty_period() {
    assert_eq!(
            rendered(
                &Query {
                    to: Timestamp::parse_bound("2026-01-01"),
                    ..Query::default()
                },
                Format::Table
            ),
            "\
app    model  requests  errors  input  output  cache_read  cache_write  cost_usd  output_share  cache_savings_usd
TOTAL                0       0      0       0           0            0  0.000000             -           0.000000

period: from start of ledger to 2026-01-01T00:00:00Z (exclusive)
"
        );
}

#[test]
fn csv_of_the_sample() {
    assert_eq!(
            rendered(&Query::default(), Format::Csv),
            "\
app,model,requests,errors,unpriced_requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cache_write_1h_tokens,cost_usd,output_cost_usd,output_share_pct,cache_savings_usd
checkout,us.anthropic.claude-sonnet-4-5-20250929-v1:0,4,1,0,4000,2050,10000,2000,0,0.058575000000,0.033825000000,57.75,0.029700000000
search,us.amazon.nova-micro-v1:0,2,0,0,17000,3700,4000,0,0,0.001148000000,0.000518000000,45.12,0.000105000000
checkout,us.amazon.nova-micro-v1:0,1,0,0,300,50,0,0,0,0.000017500000,0.000007000000,40.00,0.000000000000
search,cohere.command-r-plus-v1:0,2,0,2,2400,500,0,0,0,,,,
TOTAL,,9,1,2,23700,6300,14000,2000,0,0.059740500000,0.034350000000,57.50,0.029805000000
"
        );
}

#[test]
fn csv_by_app_from_a_day() {
    let q = Query {
        from: Timestamp::parse_bound("2026-11-24"),
        by: GroupBy::App,
        ..Query::default()
    };
    assert_eq!(
            rendered(&q, Format::Csv),
            "\
app,requests,errors,unpriced_requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cache_write_1h_tokens,cost_usd,output_cost_usd,output_share_pct,cache_savings_usd
checkout,2,0,0,2300,550,0,0,0,0.014867500000,0.008257000000,55.54,0.000000000000
search,1,0,1,1500,400,0,0,0,,,,
TOTAL,3,0,1,3800,950,0,0,0,0.014867500000,0.008257000000,55.54,0.000000000000
"
        );
}

#[test]
fn json_of_one_day_by_model() {
    assert_eq!(
        rendered(
            &period("2026-11-23", "2026-11-24", GroupBy::Model),
            Format::Json
        ),
        r#"{
  "from": "2026-11-23T00:00:00Z",
  "to": "2026-11-24T00:00:00Z",
  "by": [
    "model"
  ],
  "rows": [
    {
      "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
      "requests": 3,
      "errors": 1,
      "unpriced_requests": 0,
      "input_tokens": 2000,
      "output_tokens": 1550,
      "cache_read_tokens": 10000,
      "cache_write_tokens": 2000,
      "cache_write_1h_tokens": 0,
      "cost_usd": "0.043725000000",
      "output_cost_usd": "0.025575000000",
      "output_share_pct": 58.49,
      "cache_savings_usd": "0.029700000000"
    },
    {
      "model": "us.amazon.nova-micro-v1:0",
      "requests": 2,
      "errors": 0,
      "unpriced_requests": 0,
      "input_tokens": 17000,
      "output_tokens": 3700,
      "cache_read_tokens": 4000,
      "cache_write_tokens": 0,
      "cache_write_1h_tokens": 0,
      "cost_usd": "0.001148000000",
      "output_cost_usd": "0.000518000000",
      "output_share_pct": 45.12,
      "cache_savings_usd": "0.000105000000"
    },
    {
      "model": "cohere.command-r-plus-v1:0",
      "requests": 1,
      "errors": 0,
      "unpriced_requests": 1,
      "input_tokens": 900,
      "output_tokens": 100,
      "cache_read_tokens": 0,
      "cache_write_tokens": 0,
      "cache_write_1h_tokens": 0,
      "cost_usd": null,
      "output_cost_usd": null,
      "output_share_pct": null,
      "cache_savings_usd": null
    }
  ],
  "total": {
    "requests": 6,
    "errors": 1,
    "unpriced_requests": 1,
    "input_tokens": 19900,
    "output_tokens": 5350,
    "cache_read_tokens": 14000,
    "cache_write_tokens": 2000,
    "cache_write_1h_tokens": 0,
    "cost_usd": "0.044873000000",
    "output_cost_usd": "0.026093000000",
    "output_share_pct": 58.15,
    "cache_savings_usd": "0.029805000000"
  },
  "skipped_lines": 1,
  "first_skipped_line": 6
}
"#
    );
}

#[test]
fn json_of_the_sample_matches_csv() {
    let json: serde_json::Value =
        serde_json::from_str(&rendered(&Query::default(), Format::Json)).unwrap();
    assert_eq!(json["from"], serde_json::Value::Null);
    assert_eq!(json["by"], serde_json::json!(["app", "model"]));
    assert_eq!(json["skipped_lines"], 1);
    let csv = rendered(&Query::default(), Format::Csv);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let objects = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&json["total"]]);
    let mut n = 0;
    for (line, object) in lines.zip(objects) {
        for (name, cell) in header.iter().zip(line.split(',')) {
            let value = &object[*name];
            let expected = match value {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) if *name == "output_share_pct" => {
                    format!("{:.2}", n.as_f64().unwrap())
                }
                other => other.to_string(),
            };
            if !(name == &"app" && cell == "TOTAL" || name == &"model" && cell.is_empty()) {
                assert_eq!(cell, expected, "{name}");
            }
        }
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn csv_quotes_awkward_names_and_table_escapes_control_characters() {
    let text = r#"{"time":"2026-11-23T10:00:00Z","app":"a,\"b\"","model":"m\u001b[2J","status":200,"tokens":{"input":1,"output":1},"cost_usd":null}"#;
    let report = aggregate(text.as_bytes(), &Query::default()).unwrap();
    let mut out = Vec::new();
    render(&report, Format::Csv, &mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    assert!(csv.contains("\n\"a,\"\"b\"\"\",m\u{1b}[2J,1,"), "{csv}");
    let mut out = Vec::new();
    render(&report, Format::Table, &mut out).unwrap();
    let table = String::from_utf8(out).unwrap();
    assert!(table.contains("a,\"b\"  m\\u{1b}[2J"), "{table}");
    assert!(!table.contains('\u{1b}'));
    assert_eq!(csv_quote(" x"), "\" x\"");
    assert_eq!(csv_quote("plain"), "plain");
}

#[test]
fn write_errors_are_reported() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let report = aggregate(SAMPLE.as_bytes(), &Query::default()).unwrap();
    for format in [Format::Table, Format::Csv, Format::Json] {
        let e = render(&report, format, &mut Full).unwrap_err();
        assert!(matches!(e, ReportError::Write(ref io) if io.kind() == io::ErrorKind::BrokenPipe));
    }
}
