//! The alerting rules shipped in `deploy/prometheus/`: `promtool check rules` accepts them,
//! `promtool test rules` runs their unit tests (`alerts_test.yml`), and those unit tests
//! cover every alert: each one is expected to fire at some evaluation and to be silent at
//! a later one of the same test (it resolves). That the rules name only metrics Shoal
//! exports is checked against a real scrape in `tests/ops_dashboard.rs`.
//!
//! promtool comes with Debian's `prometheus` package (`.ci/run` installs it).

#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they wait for promtool and read files on the test's own thread"
)]

use std::path::PathBuf;
use std::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir())
        .output()
        .expect("promtool runs (Debian: apt-get install prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// The names after `- alert:` in a rules file.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// One `alert_rule_test` entry of a unit test file.
#[derive(Debug)]
struct Expectation {
    test: String,
    minutes: u32,
    alert: String,
    fires: bool,
}

/// The expectations of `alerts_test.yml`, read line by line (the file's shape is ours:
/// `- name:`, then `- eval_time: Nm`, `alertname:`, `exp_alerts: []` or `exp_alerts:`).
fn expectations(tests: &str) -> Vec<Expectation> {
    let mut out = Vec::new();
    let (mut test, mut minutes, mut alert) = (String::new(), None, None);
    for line in tests.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("- name:") {
            test = n.trim().to_string();
        } else if let Some(t) = line.strip_prefix("- eval_time:") {
            let t = t.trim();
            minutes = Some(
                t.strip_suffix('m')
                    .and_then(|m| m.parse().ok())
                    .unwrap_or_else(|| panic!("eval_time in minutes, not {t}")),
            );
        } else if let Some(a) = line.strip_prefix("alertname:") {
            alert = Some(a.trim().to_string());
        } else if let Some(e) = line.strip_prefix("exp_alerts:") {
            out.push(Expectation {
                test: test.clone(),
                minutes: minutes.take().expect("eval_time before exp_alerts"),
                alert: alert.take().expect("alertname before exp_alerts"),
                fires: e.trim() != "[]",
            });
        }
    }
    out
}

#[test]
fn the_alert_rules_pass_promtool_check() {
    let out = promtool(&["check", "rules", "alerts.yml"]);
    let rules = std::fs::read_to_string(dir().join("alerts.yml")).unwrap();
    let n = alert_names(&rules).len();
    assert!(
        out.contains(&format!("SUCCESS: {n} rules found")),
        "{n} alerts in the file, promtool says:\n{out}"
    );
}

#[test]
fn every_alert_fires_and_resolves_in_the_unit_tests() {
    let out = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");

    let rules = std::fs::read_to_string(dir().join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir().join("alerts_test.yml")).unwrap();
    let names = alert_names(&rules);
    for wanted in [
        "ShoalNodeUnhealthy",
        "ShoalManyNodesUnhealthy",
        "ShoalSchedulerRefusalsRising",
        "ShoalApiErrors",
        "ShoalApiLatencyHigh",
        "ShoalMailboxDepthGrowing",
        "ShoalEventSubscribersCut",
        "ShoalEngineCallFailures",
    ] {
        assert!(names.iter().any(|n| n == wanted), "no alert {wanted}");
    }
    let exp = expectations(&tests);
    for name in &names {
        let firing: Vec<&Expectation> =
            exp.iter().filter(|e| &e.alert == name && e.fires).collect();
        assert!(!firing.is_empty(), "no unit test expects {name} to fire");
        let resolves = firing.iter().any(|f| {
            exp.iter()
                .any(|e| e.test == f.test && &e.alert == name && !e.fires && e.minutes > f.minutes)
        });
        assert!(
            resolves,
            "no unit test expects {name} to resolve after it fired"
        );
        let quiet_first = exp.iter().any(|e| {
            &e.alert == name
                && !e.fires
                && firing
                    .iter()
                    .any(|f| f.test == e.test && e.minutes < f.minutes)
        });
        assert!(
            quiet_first,
            "no unit test expects {name} silent before it fires"
        );
    }
}
