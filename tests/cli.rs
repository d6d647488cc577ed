//! The real binary, run the way users run it: `rates check`, start-up refusals, and `serve`
//! with credentials from the environment in front of the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bedrock_meter::simulator::{Simulator, SimulatorConfig};
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_bedrock-meter");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AWS_REGION")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rates_check_accepts_the_shipped_card() {
    let (code, stdout, stderr) = run(&["rates", "check", "rates/bedrock.toml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok, version 2026-12"), "{stdout}");
    // The only warning the shipped card may get is that its prices have aged past 90 days.
    let (others, stale): (Vec<&str>, Vec<&str>) = stderr
        .lines()
        .partition(|l| !l.contains("days ago (more than 90)"));
    assert!(others.is_empty(), "{stderr}");
    assert!(
        stdout.contains(&format!(", {} warnings", stale.len())),
        "{stdout}"
    );
}

#[test]
fn rates_check_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "version = \"t\"\n[[model]]\nid = \"m\"\ninput = 1.5\noutput = \"lots\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["rates", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!("{}:5: ", bad.display())),
        "{stderr}"
    );

    let warn = dir.path().join("warn.toml");
    std::fs::write(
        &warn,
        "version = \"t\"\n[[model]]\nid = \"m\"\ninput = 1\noutput = 2\ncache_read = 0.1\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["rates", "check", warn.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stderr.contains(":3: m: no cache_write rate"), "{stderr}");
    assert!(stderr.contains(":1: no `updated` date"), "{stderr}");
    assert!(stdout.contains("2 warnings"), "{stdout}");
}

#[test]
fn serve_refuses_open_mode_on_a_public_address() {
    let (code, _, stderr) = run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("refusing to serve open mode on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-open"), "{stderr}");
}

#[test]
fn serve_refuses_a_broken_rate_card() {
    let (code, _, stderr) = run(&["serve", "--rates", "does/not/exist.toml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("does/not/exist.toml:0: cannot read"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_meters_in_front_of_the_simulator() {
    let creds = proxy_credentials();
    let simulator = Simulator::start(SimulatorConfig {
        listen: loopback(),
        expect_credentials: Some(creds.clone()),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let _child = Child(
        Command::new(BIN)
            .args([
                "serve",
                "--upstream",
                &simulator.url(),
                "--region",
                "us-east-1",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("BEDROCK_METER_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "BEDROCK_METER_ADMIN_LISTEN",
                format!("127.0.0.1:{admin_port}"),
            )
            // Credentials for re-signing come from the standard chain: here, the environment.
            .env("AWS_ACCESS_KEY_ID", creds.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key())
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let admin = format!("http://127.0.0.1:{admin_port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let ok = client
            .get(format!("{admin}/healthz").parse().unwrap())
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bedrock-meter did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let out = sdk_client(&format!("http://127.0.0.1:{port}"), Some("cli-test"))
        .converse()
        .model_id("amazon.nova-lite-v1:0")
        .messages(user_message("[[sim input=2000 output=500]]"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.usage().unwrap().output_tokens(), 500);
    assert_eq!(simulator.stats().signatures_valid, 1);

    let (status, _, body) = http_get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    let m = Metrics(bedrock_meter::tools::scrape::parse(
        std::str::from_utf8(&body).unwrap(),
    ));
    let model = "amazon.nova-lite-v1:0";
    // Nova Lite: $0.06 / $0.24 per 1M tokens.
    assert_eq!(m.cost_pico("cli-test", model, "input"), 2000 * 60_000);
    assert_eq!(m.cost_pico("cli-test", model, "output"), 500 * 240_000);

    let (status, _, body) = http_get(&format!("{admin}/rates")).await;
    assert_eq!(status, 200);
    let rates: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(rates["version"], "2026-12");
    let lite = rates["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == model)
        .unwrap();
    assert_eq!(lite["input"], 0.06);
}

#[test]
fn serve_refuses_a_broken_keys_file_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        "[[key]]\naccess_key_id = \"AKID1\"\nsecret_access_key = \"s3cret-value\"\napp = \"ok\"\n\n[[key]]\nbearer_token = \"short\"\napp = \"batch\"\n",
    )
    .unwrap();
    let k = keys.to_str().unwrap();
    let (code, _, stderr) = run(&["serve", "--keys", k, "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{k}:7: bearer_token is shorter than 16")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-value"), "{stderr}");

    // A bearer key with no Region needs --region.
    std::fs::write(
        &keys,
        "[[key]]\nbearer_token = \"0123456789abcdef-batch\"\napp = \"batch\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["serve", "--keys", k, "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("give the keys of batch a `region`"),
        "{stderr}"
    );
}

#[test]
fn demo_prints_plain_tables_when_not_on_a_terminal() {
    let (code, stdout, stderr) = run(&["demo", "--duration", "2.5"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("bedrock-meter demo: simulator http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("/metrics"), "{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "no terminal escapes when piped: {stdout}"
    );
    let final_table = stdout.split("\nfinal, after ").nth(1).unwrap();
    let total = final_table
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .unwrap();
    let requests: f64 = total.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(requests > 0.0, "{total}");
}
