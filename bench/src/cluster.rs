//! The cluster scenarios at one size N: the fleet, start-up to a full (and exact) view,
//! the read routes' latency and requests/s, then creates and events (their own modules),
//! the resources Shoal used, and the binpack run.

use super::creates::creates;
use super::events::events;
use super::load::{drive, expect, round3, Drive, Http, Stats};
use super::procs::{CpuMeter, ShoalProc, SimProc};
use super::Bench;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Starts the fleet of `n` engines, in as many sim processes as needed.
pub(crate) async fn start_fleet(b: &Bench, n: usize) -> Result<Vec<SimProc>, String> {
    let per = b.args.engines_per_sim.max(1);
    let mut sims = Vec::new();
    let mut first = 0;
    while first < n {
        let count = per.min(n - first);
        let base = match b.args.port_base {
            0 => 0,
            base => u16::try_from(base as usize + first).map_err(|_| "port base too high")?,
        };
        sims.push(
            SimProc::start(
                &b.exe,
                &b.dir,
                first,
                count,
                b.args.containers_per_engine,
                base,
                &[],
            )
            .await?,
        );
        first += count;
    }
    Ok(sims)
}

/// What `GET /info` says about the nodes: (healthy nodes, containers on healthy nodes).
fn info_counts(info: &Value) -> (usize, u64) {
    let healthy = info["SystemStatus"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r[0].as_str().is_some_and(|k| k.ends_with("└ Status")))
                .filter(|r| r[1] == "Healthy")
                .count()
        })
        .unwrap_or(0);
    (healthy, info["Containers"].as_u64().unwrap_or(0))
}

/// How long a Shoal under measurement may take to see its whole cluster of `nodes`
/// engines: 3 minutes, and 20 ms more per engine past 1,000 (10,000 engines: 6 minutes)
/// on the shared 2 cores, where the fleet's sims answer the start-up too.
fn full_view_limit(nodes: usize) -> Duration {
    Duration::from_secs(180) + Duration::from_millis(20 * nodes.saturating_sub(1000) as u64)
}

/// How long every container may take to be inspected for its reservations once the view
/// is full: 3 minutes, and 1 ms more per container past 30,000 (300,000: 7.5 minutes).
fn reserved_limit(containers: u64) -> Duration {
    Duration::from_secs(180) + Duration::from_millis(containers.saturating_sub(30_000))
}

/// Polls `/info` until `nodes` are healthy and `containers` known; answers the seconds
/// since Shoal was spawned to each (healthy, full view).
pub(crate) async fn wait_full(
    shoal: &ShoalProc,
    nodes: usize,
    containers: u64,
) -> Result<(f64, f64), String> {
    let http = shoal.http(2);
    let mut healthy_at = None;
    let limit = full_view_limit(nodes);
    let deadline = Instant::now() + limit;
    loop {
        let (healthy, known) = match http.get_json("/info").await {
            Ok(info) => info_counts(&info),
            Err(_) => (0, 0),
        };
        let now = shoal.started.elapsed().as_secs_f64();
        if healthy == nodes && healthy_at.is_none() {
            healthy_at = Some(now);
        }
        if healthy == nodes && known >= containers {
            return Ok((healthy_at.unwrap_or(now), now));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "after {} s only {healthy}/{nodes} nodes healthy, {known}/{containers} containers known; see {}",
                limit.as_secs(),
                shoal.log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls Shoal's cluster page API until every container it lists has its reservations
/// known (each was inspected), so the scheduler counts all of them; answers the seconds
/// since Shoal was spawned. Creates measured before this would race the start-up inspects.
async fn wait_reserved(shoal: &ShoalProc, containers: u64) -> Result<f64, String> {
    let http = Http::new(&shoal.host, 2);
    let limit = reserved_limit(containers);
    let deadline = Instant::now() + limit;
    loop {
        let pending = match http.get_json("/shoal/api/cluster").await {
            Ok(c) => c["nodes"]
                .as_array()
                .map(|nodes| {
                    nodes
                        .iter()
                        .map(|n| n["containers"]["unreserved"].as_u64().unwrap_or(0))
                        .sum::<u64>()
                })
                .unwrap_or(u64::MAX),
            Err(_) => u64::MAX,
        };
        if pending == 0 {
            return Ok(shoal.started.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "after {} s {pending} containers still without reservations; see {}",
                limit.as_secs(),
                shoal.log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks Shoal's container list against the engines: every container listed exactly once,
/// under its own node. Answers (containers listed, exact, the listed IDs).
async fn check_view(
    shoal: &Http,
    engines: &[(String, String)],
) -> Result<(usize, bool, Vec<String>), String> {
    // What the engines hold, asked directly: id -> (node, name).
    let direct = Http::new("", 64);
    let mut expected: HashMap<String, (String, String)> = HashMap::new();
    let mut answers = Vec::new();
    for a in list_engines(engines, &direct).await {
        answers.push(a?);
    }
    for (node, list) in answers {
        for c in list.as_array().into_iter().flatten() {
            let id = c["Id"].as_str().unwrap_or_default().to_string();
            let name = c["Names"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            expected.insert(id, (node.clone(), name));
        }
    }
    let listed = shoal.get_json("/containers/json?all=1").await?;
    let listed = listed.as_array().cloned().unwrap_or_default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut exact = listed.len() == expected.len();
    let mut ids = Vec::with_capacity(listed.len());
    for c in &listed {
        let id = c["Id"].as_str().unwrap_or_default().to_string();
        *seen.entry(id.clone()).or_default() += 1;
        let shown = c["Names"][0].as_str().unwrap_or_default();
        match expected.get(&id) {
            Some((node, name)) if shown == format!("/{node}/{name}") => {}
            _ => exact = false,
        }
        ids.push(id);
    }
    exact &= seen.values().all(|&k| k == 1) && seen.len() == expected.len();
    Ok((listed.len(), exact, ids))
}

/// Lists every engine directly, 64 at a time.
async fn list_engines(
    engines: &[(String, String)],
    direct: &Http,
) -> Vec<Result<(String, Value), String>> {
    let mut out = Vec::with_capacity(engines.len());
    for chunk in engines.chunks(64) {
        let asks = chunk.iter().map(|(addr, node)| async move {
            let host = addr.trim_start_matches("tcp://");
            let list = direct
                .get_json(&format!("{host}/containers/json?all=1"))
                .await?;
            Ok::<_, String>((node.clone(), list))
        });
        out.extend(futures_util::future::join_all(asks).await);
    }
    out
}

/// Shoal's CPU time (user + system) per request, in µs, of each of the two runs of a
/// GET: the cost of a request that the machine's load does not change, unlike its wall time.
#[derive(Debug, Clone, Copy)]
struct CpuPerOp {
    serial_us: f64,
    loaded_us: f64,
}

/// Serial latency, then requests/s at `conc` clients, of one GET; with Shoal's (process
/// `pid`) CPU per request of each.
async fn measure_get(
    b: &Bench,
    http: &Http,
    paths: &[String],
    conc: usize,
    pid: u32,
) -> (Stats, Stats, CpuPerOp) {
    let mut meter = CpuMeter::start(pid).await;
    let serial = measure_at(b, http, paths, 1).await;
    let serial_us = meter.per_op_us(serial.count()).await;
    let loaded = measure_at(b, http, paths, conc).await;
    let loaded_us = meter.per_op_us(loaded.count()).await;
    let cpu = CpuPerOp {
        serial_us,
        loaded_us,
    };
    (serial, loaded, cpu)
}

/// `paths` in turn from `conc` clients at once for `--duration`; every answer must be 200.
pub(crate) async fn measure_at(b: &Bench, http: &Http, paths: &[String], conc: usize) -> Stats {
    let one = |k: usize| {
        let path = &paths[k % paths.len()];
        async move { expect(http, path, 200).await }
    };
    drive(
        Drive {
            concurrency: conc,
            max_requests: usize::MAX,
            max_time: b.args.duration,
        },
        one,
    )
    .await
}

fn read_record(
    scenario: &str,
    n: usize,
    m: usize,
    (serial, loaded, cpu): &(Stats, Stats, CpuPerOp),
    conc: usize,
) -> (String, Value) {
    let human = format!(
        "{scenario:<18} N={n:<5} p50 {:>8.3} ms  p90 {:>8.3} ms  p99 {:>8.3} ms  | {:>7.0} req/s at {conc} conns (p99 {:.3} ms) | Shoal CPU {:.0} µs/req serial, {:.0} at {conc}{}",
        serial.ms(0.5),
        serial.ms(0.9),
        serial.ms(0.99),
        loaded.per_sec(),
        loaded.ms(0.99),
        cpu.serial_us,
        cpu.loaded_us,
        match serial.errors + loaded.errors {
            0 => String::new(),
            e => format!("  {e} ERRORS: {}", serial.first_error.clone().or(loaded.first_error.clone()).unwrap_or_default()),
        }
    );
    let record = json!({
        "scenario": scenario, "nodes": n, "containers_per_node": m,
        "p50_ms": round3(serial.ms(0.5)), "p90_ms": round3(serial.ms(0.9)), "p99_ms": round3(serial.ms(0.99)),
        "serial_requests": serial.count(),
        "per_sec": loaded.per_sec().round(), "concurrency": conc,
        "loaded_p50_ms": round3(loaded.ms(0.5)), "loaded_p99_ms": round3(loaded.ms(0.99)),
        "cpu_us_per_op": cpu.serial_us.round(), "loaded_cpu_us_per_op": cpu.loaded_us.round(),
        "errors": serial.errors + loaded.errors,
        "ok": serial.errors + loaded.errors == 0 && serial.count() > 0 && loaded.count() > 0,
    });
    (human, record)
}

/// One cluster size: fleet, Shoal (spread), every measurement; then Shoal (binpack).
pub(crate) async fn cluster(b: &Bench, n: usize) -> Result<(), String> {
    let m = b.args.containers_per_engine;
    let mut sims = start_fleet(b, n).await?;
    let engines: Vec<(String, String)> = sims
        .iter()
        .flat_map(|s| s.addrs.iter().cloned())
        .enumerate()
        .map(|(i, a)| (a, format!("sim-{i}")))
        .collect();
    let discovery = b.dir.join(format!("engines-{n}"));
    let list: String = engines.iter().map(|(a, _)| format!("{a}\n")).collect();
    tokio::fs::write(&discovery, list)
        .await
        .map_err(|e| e.to_string())?;
    let discovery = format!("file://{}", discovery.display());
    let expected = (n * m) as u64;

    // Start-up to a full view.
    let log = b.dir.join(format!("shoal-{n}-spread.log"));
    let shoal = ShoalProc::start(&b.exe, log, &discovery, &strategy("spread")).await?;
    let (healthy_s, full_s) = wait_full(&shoal, n, expected).await?;
    // Said before the next gate, so a start-up whose inspects do not end in time still
    // reports how long the view took.
    let (fds, rss) = (shoal.open_files().await, shoal.rss_mib().await);
    b.report(
        format!(
            "{:<18} N={n:<5} all healthy {healthy_s:.3} s, full view {full_s:.3} s, RSS {rss:.1} MiB, {fds} open files",
            "full_view"
        ),
        json!({"scenario": "full_view", "nodes": n, "containers_per_node": m,
               "healthy_s": round3(healthy_s), "full_view_s": round3(full_s),
               "rss_mib": round3(rss), "open_files": fds, "ok": true}),
    );
    let reserved_s = wait_reserved(&shoal, expected).await?;
    let fds_reserved = shoal.open_files().await;
    let http = Http::new(&shoal.host, b.args.concurrency.max(b.args.subscribers) + 8);
    let (listed, exact, ids) = check_view(&http, &engines).await?;
    b.report(
        format!(
            "{:<18} N={n:<5} all healthy {healthy_s:.3} s, full view {full_s:.3} s, every reservation known {reserved_s:.3} s ({fds_reserved} open files); {listed} of {expected} containers listed, exact: {exact}",
            "startup"
        ),
        json!({"scenario": "startup", "nodes": n, "containers_per_node": m,
               "healthy_s": round3(healthy_s), "full_view_s": round3(full_s),
               "reservations_known_s": round3(reserved_s), "open_files_reserved": fds_reserved,
               "containers_listed": listed, "containers_expected": expected,
               "view_exact": exact, "ok": exact}),
    );

    // Reads.
    let conc = b.args.concurrency;
    let pid = shoal.pid();
    let measured = measure_get(b, &http, &["/info".to_string()], conc, pid).await;
    let (h, r) = read_record("info", n, m, &measured, conc);
    b.report(h, r);
    // A list of N×M entries is large (~12 MB at 30,000); issue 16 asks for 16 clients at once.
    let list_conc = conc;
    let list = ["/containers/json?all=1".to_string()];
    let measured = measure_get(b, &http, &list, list_conc, pid).await;
    let (h, r) = read_record("containers_list", n, m, &measured, list_conc);
    b.report(h, r);
    let paths: Vec<String> = ids
        .iter()
        .step_by((ids.len() / 1000).max(1))
        .map(|id| format!("/containers/{id}/json"))
        .collect();
    if paths.is_empty() {
        return Err("no container to inspect".into());
    }
    let measured = measure_get(b, &http, &paths, conc, pid).await;
    let (h, r) = read_record("container_inspect", n, m, &measured, conc);
    b.report(h, r);

    creates(b, &http, n, "spread", shoal.pid()).await;
    events(b, &shoal, &mut sims, n).await;
    let (rss, cpu) = shoal.usage().await;
    b.report(
        format!(
            "{:<18} N={n:<5} peak RSS {rss:.1} MiB, CPU {cpu:.2} s (spread run: start-up, reads, creates, events)",
            "resources"
        ),
        json!({"scenario": "resources", "nodes": n, "containers_per_node": m, "run": "spread",
               "peak_rss_mib": round3(rss), "cpu_s": round3(cpu), "ok": rss.is_finite()}),
    );
    drop(shoal);

    // Binpack: a fresh Shoal over the same engines (which now also hold the spread creates).
    let log = b.dir.join(format!("shoal-{n}-binpack.log"));
    let shoal = ShoalProc::start(&b.exe, log, &discovery, &strategy("binpack")).await?;
    let (_, full_s) = wait_full(&shoal, n, expected).await?;
    wait_reserved(&shoal, expected).await?;
    let http = Http::new(&shoal.host, b.args.concurrency + 8);
    creates(b, &http, n, "binpack", shoal.pid()).await;
    let (rss, cpu) = shoal.usage().await;
    b.report(
        format!(
            "{:<18} N={n:<5} peak RSS {rss:.1} MiB, CPU {cpu:.2} s (binpack run: start-up {full_s:.3} s, creates)",
            "resources"
        ),
        json!({"scenario": "resources", "nodes": n, "containers_per_node": m, "run": "binpack",
               "full_view_s": round3(full_s),
               "peak_rss_mib": round3(rss), "cpu_s": round3(cpu), "ok": rss.is_finite()}),
    );
    Ok(())
}

fn strategy(s: &str) -> Vec<String> {
    vec!["--strategy".into(), s.into()]
}
