//! Tests of the command as a whole: its flags, its argument errors, `run` and `open`.

use super::*;
use clap::Parser;

const SAMPLE: &str = include_str!("../../../tests/fixtures/ledger-sample.jsonl");

#[derive(Parser, Debug)]
struct Cli {
    ledger: std::path::PathBuf,
    #[command(flatten)]
    args: ReportArgs,
}

fn parse(argv: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("report").chain(argv.iter().copied()))
}

#[test]
fn flags_parse_with_clap() {
    let cli = parse(&["ledger.jsonl"]).unwrap();
    assert_eq!(cli.args, ReportArgs::default());
    let cli = parse(&[
        "-",
        "--from",
        "2026-11-23",
        "--to=2026-11-24T12:00:00Z",
        "--format",
        "csv",
        "--by",
        "model",
    ])
    .unwrap();
    assert_eq!(cli.ledger, std::path::Path::new("-"));
    assert_eq!(cli.args.from.as_deref(), Some("2026-11-23"));
    assert_eq!(cli.args.format, Format::Csv);
    assert_eq!(cli.args.by, [GroupKey::Model]);
    assert_eq!(cli.args.query().unwrap().by, GroupBy::Model);
    let cli = parse(&["x", "--by", "model,app"]).unwrap();
    assert_eq!(cli.args.query().unwrap().by, GroupBy::AppModel);
    assert!(parse(&["x", "--format", "xml"]).is_err());
    assert!(parse(&["x", "--by", "tier"]).is_err());
}

#[test]
fn value_enums_parse_and_display() {
    assert_eq!("json".parse::<Format>(), Ok(Format::Json));
    assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
    assert!("yaml".parse::<Format>().is_err());
    assert_eq!(Format::Table.to_string(), "table");
    assert_eq!("app".parse::<GroupKey>(), Ok(GroupKey::App));
    assert_eq!(GroupKey::Model.to_string(), "model");
}

#[test]
fn bad_periods_are_usage_errors() {
    let args = |from: &str, to: &str| ReportArgs {
        from: Some(from.into()),
        to: Some(to.into()),
        ..ReportArgs::default()
    };
    let e = args("2026-11-23", "2026-11-23").query().unwrap_err();
    assert!(e.is_usage());
    assert_eq!(
        e.to_string(),
        "empty period: --to (2026-11-23T00:00:00Z) must be later than --from (2026-11-23T00:00:00Z)"
    );
    let e = args("2026-11-24", "2026-11-23").query().unwrap_err();
    assert!(matches!(e, ReportError::EmptyPeriod { .. }));
    let e = args("2026-11-23", "tomorrow").query().unwrap_err();
    assert!(e.is_usage());
    assert_eq!(
        e.to_string(),
        "invalid --to value \"tomorrow\": expected an RFC 3339 time such as 2026-11-23T10:00:00Z or a date such as 2026-11-23"
    );
    assert!(
        args("2026-11-23", "2026-11-23T00:00:00.001Z")
            .query()
            .is_ok()
    );
}

#[test]
fn run_warns_about_skipped_lines_on_stderr() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = ReportArgs {
        format: Format::Csv,
        ..ReportArgs::default()
    };
    run(SAMPLE.as_bytes(), &args, &mut out, &mut err).unwrap();
    assert!(String::from_utf8(out).unwrap().starts_with("app,model,"));
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "warning: skipped 1 malformed ledger line (first at line 6: EOF while parsing a string)\n"
    );

    let (mut out, mut err) = (Vec::new(), Vec::new());
    run(&b""[..], &args, &mut out, &mut err).unwrap();
    assert!(err.is_empty());
}

#[test]
fn run_rejects_bad_arguments_before_reading() {
    let args = ReportArgs {
        from: Some("2026-13-01".into()),
        ..ReportArgs::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let e = run(SAMPLE.as_bytes(), &args, &mut out, &mut err).unwrap_err();
    assert!(e.is_usage());
    assert!(out.is_empty() && err.is_empty());
}

#[test]
fn open_reports_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let e = open(&missing).err().unwrap();
    assert!(matches!(e, ReportError::Open { .. }));
    assert!(!e.is_usage());
    assert!(e.to_string().starts_with("cannot read ledger "));
    let e = open(dir.path()).err().unwrap();
    assert!(e.to_string().ends_with(": is a directory"));

    let file = dir.path().join("ledger.jsonl");
    std::fs::write(&file, SAMPLE).unwrap();
    let report = aggregate(open(&file).unwrap(), &Query::default()).unwrap();
    assert_eq!(report.total.requests, 9);
}
