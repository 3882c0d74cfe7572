//! The benchmark harness in its smoke mode (`shoal-bench --smoke`: 20 simulated engines × 5
//! containers, in their own `shoal sim` process, in front of a real `shoal manage`):
//! every scenario answers, every figure is there, and Shoal's container list is exactly
//! what the engines hold (each container once, under its own node). The harness runs in
//! this test's process (`shoal_bench::measure`) and drives the `shoal` binary built with
//! the tests.

use clap::Parser;
use serde_json::Value;
use shoal_bench::BenchArgs;
use std::time::{Duration, Instant};

#[test]
fn bench_smoke_produces_every_figure_and_an_exact_view() {
    let started = Instant::now();
    let args = BenchArgs::try_parse_from([
        "shoal-bench",
        "--smoke",
        "--shoal",
        env!("CARGO_BIN_EXE_shoal"),
    ])
    .expect("the smoke command line parses");
    let outcome = shoal_bench::measure(args).expect("shoal-bench starts");
    let records: Vec<Value> = outcome.records;
    let report = format!(
        "--- records\n{}",
        records
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(outcome.ok, "a scenario failed: {report}");
    assert!(
        outcome.skipped.is_empty(),
        "skipped {:?}: {report}",
        outcome.skipped
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "too slow: {report}"
    );

    let find = |scenario: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["scenario"] == scenario)
            .collect()
    };
    let number = |r: &Value, key: &str| {
        let v = r[key].as_f64();
        assert!(
            v.is_some_and(f64::is_finite),
            "{key} missing in {r}\n{report}"
        );
        v.unwrap()
    };
    for r in &records {
        assert_eq!(r["ok"], true, "{r}\n{report}");
    }

    let startup = find("startup");
    assert_eq!(startup.len(), 1, "{report}");
    let s = startup[0];
    assert_eq!(s["view_exact"], true, "{report}");
    assert_eq!(s["containers_listed"], 100, "{report}");
    assert_eq!(s["containers_expected"], 100, "{report}");
    for key in ["healthy_s", "full_view_s", "reservations_known_s"] {
        number(s, key);
    }

    for scenario in ["info", "containers_list", "container_inspect"] {
        let r = find(scenario);
        assert_eq!(r.len(), 1, "{scenario}: {report}");
        for key in ["p50_ms", "p90_ms", "p99_ms", "per_sec"] {
            assert!(number(r[0], key) > 0.0, "{scenario} {key}: {report}");
        }
    }

    for scenario in ["create_spread", "create_binpack"] {
        let r = find(scenario);
        assert_eq!(r.len(), 1, "{scenario}: {report}");
        assert_eq!(r[0]["created"], 40, "{report}");
        assert_eq!(r[0]["refused"], 0, "{report}");
        for key in ["placements_per_sec", "p50_ms", "p99_ms"] {
            assert!(number(r[0], key) > 0.0, "{scenario} {key}: {report}");
        }
        // Starts are measured, or said to be unavailable: never silently missing.
        assert!(r[0]["start"].is_object(), "{report}");
    }

    let ev = find("events");
    assert_eq!(ev.len(), 1, "{report}");
    assert_eq!(ev[0]["lost"], 0, "{report}");
    assert_eq!(ev[0]["delivered"], ev[0]["expected_deliveries"], "{report}");
    for key in ["events_per_sec_in", "deliveries_per_sec"] {
        assert!(number(ev[0], key) > 0.0, "{report}");
    }

    let res = find("resources");
    assert_eq!(res.len(), 2, "{report}");
    for r in res {
        assert!(number(r, "peak_rss_mib") > 0.0, "{report}");
        number(r, "cpu_s");
    }

    // Proxy overhead: the whole mix, then its cached and its proxied routes apart; the
    // proxied group holds a route Shoal streams to the engine (`top` of a running one).
    let proxy = find("proxy_sim");
    let groups: Vec<&str> = proxy.iter().filter_map(|r| r["group"].as_str()).collect();
    assert_eq!(groups, ["mix", "cached", "proxied"], "{report}");
    for r in &proxy {
        for key in [
            "ratio_p50",
            "ratio_p99",
            "ratio_per_sec",
            "added_p50_us",
            "cpu_us_per_op",
            "cpu_us_per_direct_op",
        ] {
            number(r, key);
        }
        for side in ["direct", "shoal"] {
            for key in ["p50_ms", "p99_ms", "per_sec"] {
                assert!(number(&r[side], key) > 0.0, "{side} {key}: {report}");
            }
        }
        assert!(r["target_met"].is_boolean(), "{report}");
        let via: Vec<&str> = r["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["via"].as_str())
            .collect();
        let want: &[&str] = match r["group"].as_str() {
            Some("cached") => &["cache"],
            Some("proxied") => &["proxy"],
            _ => &["cache", "proxy"],
        };
        assert!(!via.is_empty(), "{report}");
        assert!(want.iter().all(|w| via.contains(w)), "{r}\n{report}");
        assert!(via.iter().all(|v| want.contains(v)), "{r}\n{report}");
    }
    let proxied = proxy.iter().find(|r| r["group"] == "proxied");
    assert_eq!(
        proxied.map(|r| r["routes"][0]["path"].clone()),
        Some("/containers/{id}/top".into()),
        "{report}"
    );

    // TLS and the guard: each route measured plain against mutual TLS on both legs, and
    // TLS against TLS with a policy, with Shoal's CPU per request on every side.
    for (scenario, sides) in [
        ("proxy_tls", ["plain", "tls"]),
        ("authz_guard", ["tls", "guarded"]),
        // The control: two identical TLS Shoals, their difference the noise.
        ("noise_floor", ["tls", "tls_twin"]),
    ] {
        let rows = find(scenario);
        let routes: Vec<&str> = rows.iter().filter_map(|r| r["route"].as_str()).collect();
        assert_eq!(
            routes,
            ["/_ping", "/containers/{id}/json", "/containers/{id}/top"],
            "{report}"
        );
        for r in &rows {
            for key in ["added_p50_us", "ratio_p50", "ratio_p99", "ratio_per_sec"] {
                number(r, key);
            }
            for side in sides {
                for key in ["p50_ms", "p99_ms", "per_sec"] {
                    assert!(number(&r[side], key) > 0.0, "{side} {key}: {report}");
                }
                number(&r[side], "cpu_us_per_request");
            }
            assert!(r["target_met"].is_boolean(), "{report}");
        }
    }
}
