//! `ServeArgs` → `ServeConfig`: every refusal, and a valid configuration carried over whole.

use std::io::Write;

use clap::Parser;

use super::*;
use crate::cli::{Cli, Command};

const CARD: &str = "rates/bedrock.toml";

fn args(extra: &[&str]) -> ServeArgs {
    let mut argv = vec!["bedrock-meter", "serve"];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Serve(a)) => *a,
        other => panic!("not a serve command: {other:?}"),
    }
}

fn refused(extra: &[&str]) -> String {
    match ServeConfig::try_from(args(extra)) {
        Ok(_) => panic!("accepted {extra:?}"),
        Err(ConfigError(m)) => m,
    }
}

fn card_path() -> String {
    format!("{}/{CARD}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn flags_become_the_proxy_configuration() {
    let card = card_path();
    let c = ServeConfig::try_from(args(&[
        "--rates",
        &card,
        "--listen",
        "127.0.0.1:18080",
        "--region",
        "eu-west-1",
        "--max-body",
        "1000",
        "--max-in-flight",
        "7",
        "--upstream-timeout",
        "12",
        "--shutdown-delay",
        "3",
        "--cost-header",
        "false",
    ]))
    .expect("valid");
    assert_eq!(c.proxy.listen, "127.0.0.1:18080".parse().expect("addr"));
    assert_eq!(c.proxy.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.proxy.max_body, 1000);
    assert_eq!(c.proxy.max_in_flight, 7);
    assert_eq!(c.proxy.upstream_timeout, Duration::from_secs(12));
    assert_eq!(c.shutdown_delay, Duration::from_secs(3));
    assert!(!c.proxy.cost_header);
    assert!(
        c.proxy.credentials.is_none(),
        "the default chain is loaded at start"
    );
    assert_eq!(
        c.proxy.rates_path.as_deref(),
        Some(std::path::Path::new(&card))
    );
    assert!(c.proxy.rates.len() > 10);
    assert!(c.proxy.keys.is_none());
}

#[test]
fn open_mode_off_loopback_is_refused() {
    let card = card_path();
    let m = refused(&["--rates", &card, "--listen", "0.0.0.0:8080"]);
    assert!(
        m.starts_with("refusing to serve open mode on 0.0.0.0:8080"),
        "{m}"
    );
    assert!(
        ServeConfig::try_from(args(&[
            "--rates",
            &card,
            "--listen",
            "0.0.0.0:8080",
            "--allow-open"
        ]))
        .is_ok()
    );
}

#[test]
fn a_region_that_is_not_a_region_is_refused() {
    let card = card_path();
    assert_eq!(
        refused(&["--rates", &card, "--region", "evil.com/x"]),
        "--region \"evil.com/x\" is not an AWS Region id"
    );
}

#[test]
fn a_bad_rate_card_is_refused_with_its_line() {
    let mut f = tempfile::NamedTempFile::new().expect("temp");
    writeln!(
        f,
        "version = \"x\"\n[[model]]\nid = \"m\"\ninput = \"cheap\""
    )
    .expect("write");
    let path = f.path().to_string_lossy().into_owned();
    let m = refused(&["--rates", &path]);
    assert!(m.starts_with("rate card rejected:\n"), "{m}");
    assert!(m.contains(&format!("{path}:4")), "{m}");
}

#[test]
fn bearer_keys_need_a_region() {
    let card = card_path();
    let mut f = tempfile::NamedTempFile::new().expect("temp");
    writeln!(
        f,
        "[[key]]\napp = \"checkout\"\nbearer_token = \"{}\"",
        "ab".repeat(16)
    )
    .expect("write");
    let keys = f.path().to_string_lossy().into_owned();
    let m = refused(&["--rates", &card, "--keys", &keys]);
    assert_eq!(
        m,
        "bearer-token requests carry no AWS Region: give the keys of checkout a `region`, or \
         start bedrock-meter with --region"
    );
    let ok = ServeConfig::try_from(args(&[
        "--rates",
        &card,
        "--keys",
        &keys,
        "--region",
        "us-east-1",
    ]))
    .expect("valid with --region");
    assert_eq!(ok.proxy.keys.as_ref().map(|k| k.len()), Some(1));
}

#[test]
fn a_bad_upstream_is_refused() {
    let card = card_path();
    let m = refused(&["--rates", &card, "--upstream", "ftp://x"]);
    assert!(!m.is_empty());
}

#[test]
fn limits_flags_are_checked_together() {
    let card = card_path();
    let m = refused(&["--rates", &card, "--redis", "redis://127.0.0.1:6379/"]);
    assert_eq!(m, "--redis and --limits-fail-closed go with --limits FILE");
    let mut f = tempfile::NamedTempFile::new().expect("temp");
    writeln!(f, "[default]\nmonthly_usd = \"ten\"").expect("write");
    let path = f.path().to_string_lossy().into_owned();
    let m = refused(&["--rates", &card, "--limits", &path]);
    assert!(m.starts_with("limits file rejected:\n"), "{m}");
    assert!(m.contains(&format!("{path}:2: monthly_usd must be")), "{m}");
    let mut ok = tempfile::NamedTempFile::new().expect("temp");
    writeln!(ok, "[default]\nmonthly_usd = \"10\"").expect("write");
    let ok = ok.path().to_string_lossy().into_owned();
    let m = refused(&["--rates", &card, "--limits", &ok, "--redis", "http://x"]);
    assert!(m.starts_with("--redis is not a Redis URL"), "{m}");
    let config = ServeConfig::try_from(args(&[
        "--rates",
        &card,
        "--limits",
        &ok,
        "--redis",
        "redis://127.0.0.1:6379/0",
        "--limits-fail-closed",
    ]))
    .expect("valid");
    let limits = config.proxy.limits.expect("limits");
    assert!(limits.fail_closed);
    assert_eq!(
        limits.redis.map(|r| (r.url, r.timeout)),
        Some((
            "redis://127.0.0.1:6379/0".to_owned(),
            std::time::Duration::from_millis(250)
        ))
    );
}
