//! Proxy overhead: one request mix sent straight to one engine and through a Shoal in front
//! of that engine alone, side by side in one run, as ratios (through Shoal / direct) of p50,
//! p99 (one client, one request at a time) and requests/s (`--concurrency` clients).
//!
//! The serial latencies of the two sides are taken in turns, request by request, so the
//! machine's other load weighs on both alike; the requests/s one side after the other.
//!
//! Shoal answers some routes itself, from the snapshots and caches its NodeActors keep
//! (`/_ping`, `/version`, the container list, a container's inspect), and streams others to
//! the engine that owns the container (`top`, `logs`, `start`, ...: `src/api/lifecycle.rs`).
//! A mix of cache hits alone says nothing about the proxy (Shoal is then faster than the
//! engine), so every route of the mix says how Shoal answers it, and each kind is measured
//! again as its own group with its own ratio line: `proxied` is the proxy's overhead.
//!
//! Each group also gives Shoal's CPU time (user + system of its process) per request of
//! its requests/s run through Shoal: unlike wall time, the machine's other load barely
//! moves it. Beside it, Shoal's CPU per request while the engine alone was asked: what it
//! spends on those requests anyway (a dockerd `top` sends an event its node reads).
//!
//! The engine is a simulated one (`proxy_sim`, in its own `shoal sim` process) and, with
//! `--dockerd`, a real dockerd (`proxy_dockerd`) on which the bench makes the container the
//! mix needs and removes it afterwards (`dockerd::Fixture`).

use super::cluster::{measure_at, wait_full};
use super::dockerd::{Fixture, FixtureError};
use super::load::{round3, serial_turns, Http, Stats};
use super::procs::{usage_of, ShoalProc, SimProc};
use super::Bench;
use serde_json::{json, Value};

/// Targets of the issue: added p50 at most this many µs...
const TARGET_ADDED_P50_US: f64 = 100.0;
/// ...and through Shoal at least this share of the direct requests/s.
const TARGET_PER_SEC_RATIO: f64 = 0.8;

/// How Shoal answers a route. Kept in step with the routes of `src/api/mod.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// From Shoal's own snapshots and caches: the engine is not asked.
    Cache,
    /// Streamed to the engine that owns the container and back (`src/api/proxy.rs`).
    Proxy,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Cache => "cache",
            Via::Proxy => "proxy",
        }
    }
}

/// One GET of the mix.
struct Route {
    path: String,
    /// The path with the container's ID as `{id}`, for the report.
    shown: String,
    via: Via,
}

/// The request mix, about `running`, a running container of the engine (its `top` needs
/// one: a stopped container's is a 409).
fn mix(running: &str) -> Vec<Route> {
    let route = |path: String, via| Route {
        shown: path.replace(running, "{id}"),
        path,
        via,
    };
    vec![
        route("/_ping".into(), Via::Cache),
        route("/version".into(), Via::Cache),
        route("/containers/json?all=1".into(), Via::Cache),
        route(format!("/containers/{running}/json"), Via::Cache),
        route(format!("/containers/{running}/top"), Via::Proxy),
    ]
}

/// The groups each measured and reported apart: the whole mix, then each kind of route.
const GROUPS: [(&str, Option<Via>); 3] = [
    ("mix", None),
    ("cached", Some(Via::Cache)),
    ("proxied", Some(Via::Proxy)),
];

/// Measures every group of `routes` straight to the engine and through Shoal (process
/// `pid`); one human line and one JSON line per group.
async fn compare(
    b: &Bench,
    scenario: &str,
    direct: &Http,
    shoal: &Http,
    pid: u32,
    routes: &[Route],
) {
    println!(
        "{scenario:<18} N=1     routes: {}",
        routes
            .iter()
            .map(|r| format!("{} ({})", r.shown, r.via.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (group, via) in GROUPS {
        let chosen: Vec<&Route> = routes
            .iter()
            .filter(|r| via.is_none_or(|v| r.via == v))
            .collect();
        if chosen.is_empty() {
            b.fail(scenario, 1, &format!("the mix has no {group} route"));
            continue;
        }
        let paths: Vec<String> = chosen.iter().map(|r| r.path.clone()).collect();
        let sides = Sides { direct, shoal, pid };
        compare_group(b, scenario, group, &sides, &chosen, &paths).await;
    }
}

/// The engine alone, and Shoal (process `pid`) in front of it.
struct Sides<'a> {
    direct: &'a Http,
    shoal: &'a Http,
    pid: u32,
}

/// Shoal's CPU time (user + system, `/proc/<pid>/stat`) in µs per request of `stats`,
/// spent between `from` and `to` (CPU seconds).
fn cpu_us_per_request(from: f64, to: f64, stats: &Stats) -> f64 {
    (to - from) * 1e6 / stats.count().max(1) as f64
}

async fn compare_group(
    b: &Bench,
    scenario: &str,
    group: &str,
    sides: &Sides<'_>,
    routes: &[&Route],
    paths: &[String],
) {
    let Sides { direct, shoal, pid } = *sides;
    let conc = b.args.concurrency;
    let cpu = || async { usage_of(pid).await.1 };
    let (ds, ss) = serial_pair(b, direct, shoal, paths).await;
    // Shoal's CPU while the engine alone is asked: what it spends anyway (the engine's
    // events about those requests, a dockerd `top` is one), the base of the figure below.
    let before_direct = cpu().await;
    let dl = measure_at(b, direct, paths, conc).await;
    let after_direct = cpu().await;
    let sl = measure_at(b, shoal, paths, conc).await;
    let after_shoal = cpu().await;
    let cpu_us = cpu_us_per_request(after_direct, after_shoal, &sl);
    let cpu_direct_us = cpu_us_per_request(before_direct, after_direct, &dl);
    let added_us = (ss.ms(0.5) - ds.ms(0.5)) * 1000.0;
    let per_sec_ratio = sl.per_sec() / dl.per_sec();
    let target_met = added_us <= TARGET_ADDED_P50_US && per_sec_ratio >= TARGET_PER_SEC_RATIO;
    let ratio = |a: f64, b: f64| round3(a / b);
    let errors = ds.errors + dl.errors + ss.errors + sl.errors;
    let first_error = [&ds, &dl, &ss, &sl]
        .iter()
        .find_map(|s| s.first_error.clone())
        .map(|e| format!(" {errors} ERRORS, first: {e}"))
        .unwrap_or_default();
    let label = format!("{scenario}/{group}");
    b.report(
        format!(
            "{label:<18} N=1     direct p50 {:.3} ms p99 {:.3} ms {:.0} req/s | through Shoal p50 {:.3} ms p99 {:.3} ms {:.0} req/s | ratio p50 {:.2} p99 {:.2} req/s {:.2}; added p50 {added_us:.0} µs; Shoal CPU {cpu_us:.0} µs/req at {conc} ({cpu_direct_us:.0} per direct req); target {}{first_error}",
            ds.ms(0.5), ds.ms(0.99), dl.per_sec(), ss.ms(0.5), ss.ms(0.99), sl.per_sec(),
            ss.ms(0.5) / ds.ms(0.5), ss.ms(0.99) / ds.ms(0.99), per_sec_ratio,
            if target_met { "met" } else { "MISSED" },
        ),
        json!({"scenario": scenario, "group": group, "nodes": 1,
               "routes": routes.iter().map(|r| json!({"path": r.shown, "via": r.via.as_str()})).collect::<Vec<Value>>(),
               "concurrency": conc,
               "direct": {"p50_ms": round3(ds.ms(0.5)), "p99_ms": round3(ds.ms(0.99)), "per_sec": dl.per_sec().round()},
               "shoal": {"p50_ms": round3(ss.ms(0.5)), "p99_ms": round3(ss.ms(0.99)), "per_sec": sl.per_sec().round()},
               "ratio_p50": ratio(ss.ms(0.5), ds.ms(0.5)), "ratio_p99": ratio(ss.ms(0.99), ds.ms(0.99)),
               "ratio_per_sec": round3(per_sec_ratio), "added_p50_us": added_us.round(),
               "cpu_us_per_op": cpu_us.round(), "cpu_us_per_direct_op": cpu_direct_us.round(),
               "target": {"added_p50_us_max": TARGET_ADDED_P50_US, "per_sec_ratio_min": TARGET_PER_SEC_RATIO},
               "target_met": target_met,
               "errors": errors, "ok": errors == 0 && ds.count() > 0 && ss.count() > 0}),
    );
}

/// Serial latency of `paths` straight to the engine and through Shoal, taken in turns
/// ([`serial_turns`]): measured one side after the other, a dockerd `top` (~10 ms, a `ps`
/// run) drifted by more than the overhead being measured.
async fn serial_pair(b: &Bench, direct: &Http, shoal: &Http, paths: &[String]) -> (Stats, Stats) {
    let [d, s] = serial_turns(b, [(direct, paths), (shoal, paths)]).await;
    (d, s)
}

/// Proxy overhead in front of one simulated engine.
pub(super) async fn proxy_sim(b: &Bench) -> Result<(), String> {
    let sim = SimProc::start(&b.exe, &b.dir, 0, 1, b.args.containers_per_engine, 0, &[]).await?;
    let addr = sim.addrs[0].clone();
    let log = b.dir.join("shoal-proxy-sim.log");
    let shoal = ShoalProc::start(&b.exe, log, &format!("nodes://{addr}"), &[]).await?;
    wait_full(&shoal, 1, b.args.containers_per_engine as u64).await?;
    let direct = Http::new(addr.trim_start_matches("tcp://"), b.args.concurrency + 4);
    let through = Http::new(&shoal.host, b.args.concurrency + 4);
    let running = first_running(&direct)
        .await?
        .ok_or("the simulated engine has no running container: raise --containers-per-engine")?;
    compare(
        b,
        "proxy_sim",
        &direct,
        &through,
        shoal.pid(),
        &mix(&running),
    )
    .await;
    Ok(())
}

/// Proxy overhead in front of a real engine, about a container the bench runs on it for
/// the time of the measure (and removes, whatever happens: [`Fixture`]'s drop).
pub(super) async fn proxy_dockerd(b: &Bench, target: &str) -> Result<(), String> {
    let direct = Http::new(target, b.args.concurrency + 4);
    let fixture = match Fixture::make(&direct, target, &b.args.busybox).await {
        Ok(f) => f,
        Err(FixtureError::NoBusybox(why)) => {
            b.skip("proxy_dockerd", &why);
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    println!(
        "# proxy_dockerd: made image {} and container {} ({}) on {target}",
        fixture.image,
        fixture.name,
        &fixture.id[..12]
    );
    // Shoal starts after the container exists, so its first refresh knows it; it is
    // declared after the fixture, so it stops before the container is removed.
    let known = count_containers(&direct).await?;
    let log = b.dir.join("shoal-proxy-dockerd.log");
    let shoal = ShoalProc::start(&b.exe, log, target, &[]).await?;
    wait_full(&shoal, 1, known).await?;
    let through = Http::new(&shoal.host, b.args.concurrency + 4);
    let pid = shoal.pid();
    compare(
        b,
        "proxy_dockerd",
        &direct,
        &through,
        pid,
        &mix(&fixture.id),
    )
    .await;
    drop(shoal);
    drop(fixture);
    Ok(())
}

/// The first running container the engine lists, if any.
async fn first_running(http: &Http) -> Result<Option<String>, String> {
    let list = http.get_json("/containers/json").await?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| c["Id"].as_str().map(str::to_string)))
}

/// Containers of the engine, stopped ones too (what Shoal's view must reach).
async fn count_containers(http: &Http) -> Result<u64, String> {
    let list = http.get_json("/containers/json?all=1").await?;
    Ok(list.as_array().map_or(0, |l| l.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_both_kinds_and_shows_no_id() {
        let id = "0123456789abcdef".repeat(4);
        let routes = mix(&id);
        for (_, via) in GROUPS {
            assert!(routes.iter().any(|r| via.is_none_or(|v| r.via == v)));
        }
        assert!(routes.iter().all(|r| !r.shown.contains(&id)));
        let proxied: Vec<_> = routes.iter().filter(|r| r.via == Via::Proxy).collect();
        assert_eq!(proxied[0].path, format!("/containers/{id}/top"));
        assert_eq!(proxied[0].shown, "/containers/{id}/top");
    }
}
