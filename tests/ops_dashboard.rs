//! The Grafana dashboard (`deploy/grafana/shoal.json`) and the alert rules
//! (`deploy/prometheus/alerts.yml`) against the Shoal they watch:
//!
//! - every query of the dashboard (panels and template variables, Grafana's `$variables`
//!   replaced by what Grafana would put there) parses: each becomes a recording rule of a
//!   generated rules file that `promtool check rules` must accept;
//! - every metric they name is in a real scrape of `/metrics` from a Shoal over simulated
//!   engines, after traffic that makes the labelled series exist (placements and a
//!   refusal, API calls, an engine that goes down and comes back);
//! - the dashboard shows each part (cluster, nodes, scheduler, API, actors) and uses every
//!   metric family Shoal exports.

mod sim_fixture;

use serde_json::Value;
use shoal::config::PlacementConfig;
use shoal_sim::Fault;
use sim_fixture::SimCluster;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// PromQL words that are not metric names when they stand alone.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "Inf",
    "NaN",
];
/// Aggregations, which may be followed by `by (...)` before their parentheses.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Words followed by a list of label names in parentheses, not by an expression.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects: identifiers outside strings, label
/// matchers, ranges and label lists that are neither functions (followed by `(`) nor
/// keywords. Enough for our own queries; promtool has already parsed them.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |i: usize, close: u8| -> usize {
        let mut j = i + 1;
        let mut quote = None;
        while j < b.len() {
            match (quote, b[j]) {
                (Some(_), b'\\') => j += 1,
                (Some(q), c) if c == q => quote = None,
                (None, c @ (b'"' | b'\'' | b'`')) => quote = Some(c),
                (None, c) if c == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' => i = skip_to(i, b'}'),
            b'[' => i = skip_to(i, b']'),
            b'0'..=b'9' | b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let call = j < b.len() && b[j] == b'(';
                if LABEL_LISTS.contains(&word) && call {
                    i = skip_to(j, b')');
                } else if !call && !KEYWORDS.contains(&word) && !AGGREGATIONS.contains(&word) {
                    names.insert(word.to_string());
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// What Grafana puts in place of the dashboard's variables.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$instance", ".*")
        .replace("$node", ".*")
}

/// Every query of the dashboard, with where it is: panel targets and the query
/// variables (`label_values(<selector>, <label>)` gives its selector).
fn dashboard_queries(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"].as_str().expect("variable query");
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.rsplit_once(','))
            .map(|(sel, _label)| sel.trim())
            .unwrap_or_else(|| panic!("variable query is not label_values(...): {q}"));
        out.push((format!("variable {}", v["name"]), inner.to_string()));
    }
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let e = t["expr"].as_str().expect("target expr");
            out.push((format!("panel {:?}", p["title"]), e.to_string()));
        }
    }
    out
}

/// The `expr:` blocks of the alert rules (each a `|` block, indented).
fn alert_exprs(rules: &str) -> Vec<String> {
    let lines: Vec<&str> = rules.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() == "expr: |" {
            let indent = l.len() - l.trim_start().len();
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|x| x.trim().is_empty() || x.len() - x.trim_start().len() > indent)
                .map(|x| x.trim())
                .collect();
            out.push(body.join(" "));
        }
    }
    out
}

/// Names a scrape exports: each `# TYPE` family, with a histogram's series names.
fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for l in scrape.lines() {
        let mut w = l.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (w.next(), w.next(), w.next(), w.next())
        {
            if kind == "histogram" {
                for s in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{s}"));
                }
            }
            names.insert(name.to_string());
        }
    }
    names
}

async fn promtool_check_rules(file: &std::path::Path) -> String {
    let out = tokio::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
        .await
        .expect("promtool runs (Debian: apt-get install prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check rules:\n{text}");
    text
}

#[actix_rt::test]
async fn every_dashboard_query_parses() {
    let dash: Value = serde_json::from_slice(
        &tokio::fs::read(repo("deploy/grafana/shoal.json"))
            .await
            .unwrap(),
    )
    .expect("the dashboard is JSON");
    let queries = dashboard_queries(&dash);
    assert!(queries.len() > 30, "{} queries", queries.len());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, q)) in queries.iter().enumerate() {
        let q = substitute(q);
        assert!(!q.contains('$'), "a variable left in {q}");
        // A JSON string is a YAML scalar: no quoting rules to get wrong.
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&q).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-rules.yml");
    tokio::fs::write(&file, &rules).await.unwrap();
    let out = promtool_check_rules(&file).await;
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );

    // The parts an operator looks for, each a row.
    let rows: Vec<&str> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(rows, ["Cluster", "Nodes", "Scheduler", "API", "Actors"]);
    // Panels do not overlap on Grafana's 24-column grid.
    let mut cells = BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "{} is wider than the grid", p["title"]);
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{} overlaps another panel",
                    p["title"]
                );
            }
        }
    }
}

#[actix_rt::test]
async fn the_dashboard_and_the_alerts_name_only_metrics_shoal_exports() {
    let c = SimCluster::three()
        .placement(PlacementConfig {
            create_retry: 2,
            ..PlacementConfig::default()
        })
        .start()
        .await;
    c.wait_healthy(3).await;
    // Traffic that makes the labelled series exist.
    assert_eq!(c.get("/containers/json?all=1").await.status, 200);
    assert_eq!(c.get("/info").await.status, 200);
    assert_eq!(c.get("/containers/nothing-here/json").await.status, 404);
    let placed = c
        .request(
            awc::http::Method::POST,
            "/containers/create?name=web",
            Some(serde_json::json!({"Image": "busybox"})),
        )
        .await;
    assert_eq!(placed.status, 201, "{:?}", placed.body);
    let refused = c
        .request(
            awc::http::Method::POST,
            "/containers/create?name=nowhere",
            Some(serde_json::json!({"Image": "busybox", "Env": ["constraint:storage==tape"]})),
        )
        .await;
    assert!(
        refused.status >= 400,
        "a create nothing can take: {}",
        refused.status
    );
    // Every engine answers 500 for a moment: the create is tried on another node
    // (create retries) before the client gets the error (a 5xx). The nodes turn
    // unhealthy after two failed refreshes (0.4 s or more); should that beat the create
    // to the scheduler on a slow machine, it is refused instead, and tried again.
    let mut retried = false;
    for _ in 0..5 {
        for e in c.fleet.engines() {
            e.set_fault(Fault::Error500);
        }
        let failed = c
            .request(
                awc::http::Method::POST,
                "/containers/create?name=unlucky",
                Some(serde_json::json!({"Image": "busybox"})),
            )
            .await;
        for e in c.fleet.engines() {
            e.set_fault(Fault::None);
        }
        c.wait_healthy(3).await;
        if failed.status >= 500 {
            retried = true;
            break;
        }
    }
    assert!(retried, "no create reached a failing engine in 5 tries");
    // An engine that goes away (refresh failures, engine call errors, its event stream
    // ends) and comes back (the stream is reopened).
    let down = c.fleet.engine(2);
    down.set_fault(Fault::Down);
    c.wait_for("n3 unhealthy", 15, |r| {
        r.nodes
            .iter()
            .any(|n| n.snapshot.health == shoal_actors::node::Health::Unhealthy)
    })
    .await;
    down.set_fault(Fault::None);
    c.wait_healthy(3).await;

    // The reconnect is counted once the new stream is open, a moment after health.
    let mut scrape = String::new();
    for _ in 0..50 {
        let a = c.get("/metrics").await;
        assert_eq!(a.status, 200);
        scrape = String::from_utf8(a.body.to_vec()).unwrap();
        if scrape.contains("shoal_node_event_stream_reconnects_total{") {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    c.server.stop(false).await;
    let mut have = exported(&scrape);
    tokio::fs::create_dir_all(repo("test-artifacts"))
        .await
        .unwrap();
    tokio::fs::write(repo("test-artifacts/ops-dashboard-metrics.txt"), &scrape)
        .await
        .unwrap();

    // Families whose series need a rare event (a create whose engine went silent, a
    // policy refusal, an actor that died) are not in this scrape; they must at least be
    // defined, under that name, where Shoal registers its metrics.
    let registry = tokio::fs::read_to_string(repo("actors/src/metrics/registry.rs"))
        .await
        .unwrap();
    for rare in [
        "shoal_create_resolutions_total",
        "shoal_authz_denied_total",
        "shoal_actor_restarts_total",
    ] {
        assert!(
            !have.contains(rare),
            "{rare} is in the scrape now: drop it from this list"
        );
        assert!(
            registry.contains(&format!("\"{rare}\"")),
            "{rare} is not registered"
        );
        have.insert(rare.to_string());
    }
    let dash: Value = serde_json::from_slice(
        &tokio::fs::read(repo("deploy/grafana/shoal.json"))
            .await
            .unwrap(),
    )
    .unwrap();
    let mut used = BTreeSet::new();
    for (where_, q) in dashboard_queries(&dash) {
        let names = metric_names(&q);
        assert!(!names.is_empty(), "{where_}: no metric in {q}");
        for n in names {
            assert!(
                have.contains(&n),
                "{where_}: {n} is not in the scrape (test-artifacts/ops-dashboard-metrics.txt)"
            );
            used.insert(n);
        }
    }
    let rules = tokio::fs::read_to_string(repo("deploy/prometheus/alerts.yml"))
        .await
        .unwrap();
    let exprs = alert_exprs(&rules);
    assert_eq!(
        exprs.len(),
        rules.matches("- alert:").count(),
        "an expr per alert"
    );
    for e in exprs {
        let names = metric_names(&e);
        assert!(!names.is_empty(), "no metric in alert {e}");
        for n in names {
            assert!(have.contains(&n), "alert {e}: {n} is not in the scrape");
        }
    }
    // The dashboard leaves out no family Shoal exports (a histogram counts as used
    // through its buckets).
    let families: BTreeSet<String> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(families.len() >= 30, "{families:?}");
    let missing: Vec<&String> = families
        .iter()
        .filter(|f| !used.contains(*f) && !used.contains(&format!("{f}_bucket")))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard shows nothing of {missing:?}"
    );
}

#[test]
fn metric_names_finds_selectors_and_skips_the_rest() {
    let e = r#"sum by (node, le) (rate(shoal_a_bucket{route!~"/x|y{2}"}[5m])) / on (node) group_left (name) shoal_b * 2 > bool 1e-3 and shoal_c offset 5m"#;
    let names: Vec<String> = metric_names(e).into_iter().collect();
    assert_eq!(names, ["shoal_a_bucket", "shoal_b", "shoal_c"]);
    assert!(metric_names("time() - 1").is_empty());
}
