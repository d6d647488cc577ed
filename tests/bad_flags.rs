//! Flags whose values would have panicked the binary at start-up (a duration too large for the
//! deadline arithmetic, a semaphore or a ledger queue larger than can exist) are refused like
//! every other bad flag: a clear message and exit code 2, before anything starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bedrock-meter");

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ACCESS_KEY_ID", "AKIDPROXY")
        .env("AWS_SECRET_ACCESS_KEY", "proxy-secret")
        .env_remove("AWS_REGION")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LISTEN: [&str; 4] = ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"];

#[test]
fn durations_past_a_year_are_refused() {
    for flag in [
        "--connect-timeout",
        "--upstream-timeout",
        "--upstream-idle-timeout",
        "--client-header-timeout",
        "--client-body-timeout",
        "--abandoned-grace",
        "--shutdown-delay",
        "--drain-timeout",
    ] {
        for value in ["1e300", "31536001", "inf", "-1"] {
            let pair = format!("{flag}={value}");
            let mut args = vec!["serve", "--region", "us-east-1"];
            args.extend(LISTEN);
            args.push(&pair);
            let (code, stderr) = run(&args);
            assert_eq!(code, 2, "{flag} {value}: {stderr}");
            assert!(
                stderr.contains(&format!("invalid value '{value}' for '{flag} <"))
                    && stderr.contains("must be between 0 and 31536000 seconds (a year)"),
                "{flag} {value}: {stderr}"
            );
        }
    }
    let (code, stderr) = run(&["demo", "--duration", "1e300"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("must be between 0 and 31536000 seconds (a year)"),
        "{stderr}"
    );
}

#[test]
fn a_zero_timeout_is_refused_where_it_must_be_positive() {
    let mut args = vec!["serve", "--region", "us-east-1"];
    args.extend(LISTEN);
    args.extend(["--upstream-timeout", "0"]);
    let (code, stderr) = run(&args);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("must be a positive number of seconds"),
        "{stderr}"
    );
}

#[test]
fn counts_larger_than_can_exist_are_refused() {
    let huge = u64::MAX.to_string();
    for (flag, message) in [
        (
            "--max-in-flight",
            format!("must be at most {}", bedrock_meter::server::MAX_IN_FLIGHT),
        ),
        (
            "--ledger-queue",
            format!(
                "must be between 1 and {}",
                bedrock_meter::meter::ledger::MAX_QUEUE
            ),
        ),
    ] {
        let mut args = vec!["serve", "--region", "us-east-1", "--ledger", "-"];
        args.extend(LISTEN);
        args.extend([flag, &huge]);
        let (code, stderr) = run(&args);
        assert_eq!(code, 2, "{flag}: {stderr}");
        assert!(stderr.contains(&message), "{flag}: {stderr}");
    }
}
