use super::*;

const FILE: &str = r#"
warn_percent = 75
bytes_per_token = 4

[default]
requests_per_minute = 600
monthly_usd = "300"

[default.models."anthropic.claude-opus-4-1-20250805-v1:0"]
daily_usd = 25

[apps.checkout]
monthly_usd = "500.50"
tokens_per_minute = 100000

[apps.checkout.models."anthropic.claude-opus-4-1-20250805-v1:0"]
daily_usd = 10.25
"#;

const OPUS: &str = "anthropic.claude-opus-4-1-20250805-v1:0";

fn usd(n: u64) -> u64 {
    n * NANO_PER_USD
}

#[test]
fn a_listed_app_falls_back_to_the_default_field_by_field() {
    let f = LimitsFile::parse(FILE, "limits.toml").unwrap();
    assert_eq!(
        (f.warn_percent, f.bytes_per_token, f.default_max_tokens),
        (75, 4, 4096)
    );
    let applies = f.applying("checkout", Some(OPUS));
    let got: Vec<_> = applies.iter().map(|a| (a.model, a.kind, a.limit)).collect();
    assert_eq!(
        got,
        vec![
            (None, Kind::RequestsPerMinute, 600),
            (None, Kind::TokensPerMinute, 100_000),
            (None, Kind::MonthlyUsd, usd(500) + NANO_PER_USD / 2),
            (Some(OPUS), Kind::DailyUsd, usd(10) + NANO_PER_USD / 4),
        ]
    );
    // An app not listed gets the default, on its own counters, model limits included.
    let other: Vec<_> = f
        .applying("search", Some(OPUS))
        .iter()
        .map(|a| (a.model, a.kind, a.limit))
        .collect();
    assert_eq!(
        other,
        vec![
            (None, Kind::RequestsPerMinute, 600),
            (None, Kind::MonthlyUsd, usd(300)),
            (Some(OPUS), Kind::DailyUsd, usd(25)),
        ]
    );
    // Another model: the app-wide limits only.
    assert_eq!(
        f.applying("search", Some("amazon.nova-micro-v1:0")).len(),
        2
    );
    assert_eq!(f.warn_at(usd(300)), usd(225));
    assert_eq!(f.warn_at(7), 5);
}

#[test]
fn every_error_is_reported_at_its_line() {
    let text = "warn_percent = 0\n\n[default]\ndaily_usd = \"1.0000000001\"\nrequests_per_minute = -1\n\n[apps.\"bad app\"]\nmonthly_usd = 1\n\n[apps.ok.models.\"has space\"]\ndaily_usd = 1\n";
    let errors = LimitsFile::parse(text, "limits.toml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        errors,
        "limits.toml:1: warn_percent must be between 1 and 100\n\
         limits.toml:4: daily_usd must be a USD amount from 0 to 9000000 with at most 9 decimals, e.g. \"250\" or \"0.50\"\n\
         limits.toml:5: requests_per_minute must be between 0 and 1000000000000\n\
         limits.toml:7: app \"bad app\" must match [A-Za-z0-9._-]{1,64}\n\
         limits.toml:10: model \"has space\" is not a model id"
    );
    let unknown = LimitsFile::parse("[default]\nmonthly = 5\n", "l.toml")
        .unwrap_err()
        .to_string();
    assert!(
        unknown.starts_with("l.toml:2: not a valid limits file: unknown field `monthly`"),
        "{unknown}"
    );
    assert!(LimitsFile::parse("[default]\nmonthly_usd = \"9000000.01\"\n", "l").is_err());
    assert!(
        LimitsFile::parse("", "l")
            .unwrap()
            .applying("a", None)
            .is_empty()
    );
}
