//! The Kubernetes deployment (`deploy/kubernetes`) cannot drift from the repository:
//! - its PrometheusRule holds exactly the rule groups of `dashboards/rules/*.yml`, and its
//!   rate card ConfigMap exactly `rates/bedrock.toml`: both files are generated from those
//!   sources, and this test regenerates them and compares byte for byte
//!   (`BEDROCK_METER_BLESS=1 cargo test --test kubernetes` writes them instead);
//! - `kubectl kustomize` renders the base and the demo overlay with the objects the docs
//!   promise (when `kubectl` is installed; in CI it must be). `.ci/run` also validates every
//!   rendered object against the Kubernetes schemas.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

const RULE_FILES: [&str; 3] = [
    "dashboards/rules/bedrock-meter-config.yml",
    "dashboards/rules/bedrock-meter-recording.yml",
    "dashboards/rules/bedrock-meter-alerts.yml",
];

/// The list items under a rule file's top-level `groups:` key, indented two more spaces so
/// they sit under the PrometheusRule's `spec.groups`.
fn groups_of(path: &str) -> String {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| *l == "groups:")
        .unwrap_or_else(|| panic!("{path}: no top-level `groups:`"));
    let mut out = String::new();
    for line in lines {
        assert!(
            line.is_empty() || line.starts_with(' '),
            "{path}: a second top-level key after groups: {line}"
        );
        if !line.is_empty() {
            out.push_str("  ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn prometheus_rule() -> String {
    let mut out = String::from(
        "# Generated from dashboards/rules/*.yml by tests/kubernetes.rs; do not edit.\n\
         # Regenerate: BEDROCK_METER_BLESS=1 cargo test --test kubernetes\n\
         apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  name: bedrock-meter\n  labels:\n    app.kubernetes.io/name: bedrock-meter\n\
         spec:\n  groups:\n",
    );
    for file in RULE_FILES {
        out.push_str(&format!("    # {file}\n"));
        out.push_str(&groups_of(file));
    }
    out
}

fn rates_config_map() -> String {
    let card = std::fs::read_to_string(repo("rates/bedrock.toml")).unwrap();
    let mut out = String::from(
        "# Generated from rates/bedrock.toml by tests/kubernetes.rs; do not edit here.\n\
         # Your own prices: edit this ConfigMap in an overlay (the meter reloads the mounted\n\
         # file within a second), or regenerate: BEDROCK_METER_BLESS=1 cargo test --test kubernetes\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n  name: bedrock-meter-rates\n  labels:\n    app.kubernetes.io/name: bedrock-meter\n\
         data:\n  bedrock.toml: |\n",
    );
    for line in card.lines() {
        if !line.is_empty() {
            out.push_str("    ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn check_generated(rel: &str, expected: &str) {
    let path = repo(rel);
    if std::env::var_os("BEDROCK_METER_BLESS").is_some() {
        std::fs::write(&path, expected).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{rel} is not what its sources give; regenerate it with \
         BEDROCK_METER_BLESS=1 cargo test --test kubernetes"
    );
}

#[test]
fn the_prometheus_rule_is_exactly_the_rule_files() {
    let expected = prometheus_rule();
    // Every rule of every file is in it, once.
    for file in RULE_FILES {
        let text = std::fs::read_to_string(repo(file)).unwrap();
        for line in text.lines().filter(|l| {
            let t = l.trim_start();
            t.starts_with("- alert:") || t.starts_with("- record:")
        }) {
            assert_eq!(
                expected.matches(&format!("  {line}\n")).count(),
                1,
                "{file}: {line}"
            );
        }
    }
    check_generated("deploy/kubernetes/base/prometheusrule.yaml", &expected);
}

#[test]
fn the_rate_card_config_map_is_exactly_the_shipped_card() {
    check_generated(
        "deploy/kubernetes/base/rates-configmap.yaml",
        &rates_config_map(),
    );
}

/// `kubectl kustomize DIR`, or `None` when kubectl is not installed (outside CI).
fn kustomize(dir: &str) -> Option<String> {
    match Command::new("kubectl")
        .args(["kustomize", repo(dir).to_str().unwrap()])
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "kubectl kustomize {dir}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "kubectl is needed in CI (.ci/run installs it): {e}"
            );
            eprintln!("skipped: kubectl is not installed");
            None
        }
    }
}

fn kinds(rendered: &str) -> Vec<String> {
    let mut kinds: Vec<String> = rendered
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .map(str::to_owned)
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn the_base_and_the_demo_render() {
    let Some(base) = kustomize("deploy/kubernetes") else {
        return;
    };
    assert_eq!(
        kinds(&base),
        [
            "Certificate",
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Namespace",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    );
    // Every namespaced object lands in the meter's namespace.
    assert_eq!(base.matches("namespace: bedrock-meter\n").count(), 9);
    for needle in [
        "path: /readyz",
        "value: /etc/bedrock-meter/tls/tls.crt",
        "secretName: bedrock-meter-keys",
        "eks.amazonaws.com/role-arn:",
        "image: bedrock-meter:0.1.0",
    ] {
        assert!(base.contains(needle), "base lacks {needle}");
    }
    let Some(demo) = kustomize("deploy/kubernetes/overlays/demo") else {
        return;
    };
    assert_eq!(
        kinds(&demo),
        [
            "ConfigMap",
            "Deployment",
            "Namespace",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    );
    assert!(demo.contains("- demo\n"), "{demo}");
    assert!(!demo.contains("bedrock-meter-tls"));
}
