//! `shoal bench`: Shoal measured through its real HTTP API, in front of simulated engines
//! that run in their own processes (`shoal sim`), so Shoal's memory and CPU are its own.
//!
//! For each cluster size N it starts the fleet (N engines × M containers), starts
//! `shoal manage` (spread) and measures: start-up to a full view (and checks the view is
//! exact against the engines), `GET /info`, `GET /containers/json?all=1` and
//! `GET /containers/{id}/json`, creates (+ starts) with placement expressions, event fan-in
//! to many `/events` subscribers, peak RSS and CPU; then restarts Shoal with binpack and
//! measures creates again. The proxy scenarios (`proxy`) send one request mix straight to
//! one engine and through Shoal in front of it. Every scenario prints a human line and a
//! JSON line.
//!
//! Latency figures come from one client making one request at a time (the latency a
//! request sees); requests/s from `--concurrency` clients at once.

mod dockerd;
mod load;
mod procs;
mod proxy;

use clap::{Args, ValueEnum};
use load::{drive, expect, round3, Drive, Http, Stats};
use procs::{ShoalProc, SimProc};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Cluster sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100, 1000, 5000])]
    pub nodes: Vec<usize>,

    /// Containers on each simulated engine at start.
    #[arg(long, default_value_t = 30)]
    pub containers_per_engine: usize,

    /// Engine i of a fleet listens on PORT_BASE + i; 0 lets the OS pick.
    #[arg(long, default_value_t = 20000)]
    pub port_base: u16,

    /// Engines per `shoal sim` process (each engine costs the sim a listening socket plus
    /// Shoal's connections, against the per-process open-file limit).
    #[arg(long, default_value_t = 2500)]
    pub engines_per_sim: usize,

    /// Time spent on each measured request kind (serial, then concurrent).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Clients at once for the requests/s figures and for creates.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,

    /// Creates per strategy.
    #[arg(long, default_value_t = 5000)]
    pub creates: usize,

    /// `GET /events` subscribers of the fan-in scenario.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,

    /// Events per second emitted by all engines together.
    #[arg(long, default_value_t = 10000.0)]
    pub event_rate: f64,

    /// Events emitted in the fan-in scenario.
    #[arg(long, default_value_t = 50000)]
    pub events: u64,

    /// Also measure the proxy overhead in front of this real engine, e.g.
    /// unix:///var/run/docker.sock (scenario `proxy_dockerd`). The bench imports its own
    /// image `shoal-bench/busybox:<pid>` from --busybox, runs one container
    /// `shoal-bench-proxy-<pid>` (`sleep 3600`, no network) for the routes that need one,
    /// and removes both afterwards, on failure too; nothing else of the engine is touched.
    #[arg(long)]
    pub dockerd: Option<String>,

    /// The static busybox that `proxy_dockerd`'s image is made of (Debian: busybox-static).
    /// When it is missing or not static, `proxy_dockerd` is reported as skipped, and a run
    /// whose other scenarios passed ends with exit status 2 (1: a scenario failed).
    #[arg(long, default_value = "/bin/busybox")]
    pub busybox: PathBuf,

    /// Skip the proxy-overhead scenarios.
    #[arg(long, conflicts_with = "only")]
    pub no_proxy: bool,

    /// Run only one kind of scenario: `cluster` (start-up, reads, creates, events and
    /// resources at each --nodes size) or `proxy` (proxy_sim, and proxy_dockerd with
    /// --dockerd; --nodes is then not used), e.g. `--only proxy` to rerun the proxy
    /// figures in a few seconds.
    #[arg(long, value_enum)]
    pub only: Option<Only>,

    /// A small, fast run that checks every figure is produced (the test suite's mode):
    /// 20 engines × 5 containers, OS-picked ports, short durations.
    #[arg(long)]
    pub smoke: bool,

    /// The `shoal` binary to run as sim and manager (default: this one).
    #[arg(long)]
    pub shoal: Option<PathBuf>,
}

/// The kinds of scenario `--only` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    Cluster,
    Proxy,
}

impl BenchArgs {
    fn runs(&self, kind: Only) -> bool {
        match kind {
            Only::Proxy if self.no_proxy => false,
            kind => self.only.is_none_or(|only| only == kind),
        }
    }

    fn apply_smoke(&mut self) {
        if self.smoke {
            self.nodes = vec![20];
            self.containers_per_engine = 5;
            self.port_base = 0;
            self.duration = Duration::from_millis(300);
            self.concurrency = 4;
            self.creates = 40;
            self.subscribers = 10;
            // Fewer events than a subscriber's buffer: a slow debug build under load must
            // not be cut off, so any loss is a real one.
            self.event_rate = 500.0;
            self.events = 200;
        }
    }
}

/// Exit status when every scenario that ran passed but some could not run (skipped):
/// distinct from success, so a script never takes a missing figure for a measured one.
const EXIT_SKIPPED: u8 = 2;

pub fn run(mut args: BenchArgs) -> ExitCode {
    args.apply_smoke();
    let result = actix_rt::System::new().block_on(bench(args));
    match result {
        Ok(Outcome { ok: false, .. }) => {
            eprintln!("shoal bench: some scenario failed (see the lines above)");
            ExitCode::FAILURE
        }
        Ok(Outcome { skipped, .. }) if !skipped.is_empty() => {
            eprintln!("shoal bench: skipped: {}", skipped.join("; "));
            ExitCode::from(EXIT_SKIPPED)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How a run ended: whether every scenario passed, and the ones that could not run.
struct Outcome {
    ok: bool,
    skipped: Vec<String>,
}

/// Everything one run shares.
struct Bench {
    args: BenchArgs,
    exe: PathBuf,
    dir: PathBuf,
    ok: Cell<bool>,
    /// `scenario: reason` of each scenario that could not run.
    skipped: RefCell<Vec<String>>,
}

impl Bench {
    /// Prints a scenario: one human line, then its JSON line.
    fn report(&self, human: String, mut record: Value) {
        if record.get("ok") == Some(&Value::Bool(false)) {
            self.ok.set(false);
        }
        if let Value::Object(m) = &mut record {
            m.entry("ok").or_insert(Value::Bool(true));
        }
        println!("{human}");
        println!("{record}");
    }

    /// A scenario that cannot run here: said in both lines, and in the exit status.
    fn skip(&self, scenario: &str, reason: &str) {
        println!("{scenario:<18} SKIPPED: {reason}");
        println!(
            "{}",
            json!({"scenario": scenario, "skipped": true, "reason": reason, "ok": false})
        );
        self.skipped
            .borrow_mut()
            .push(format!("{scenario}: {reason}"));
    }

    fn fail(&self, scenario: &str, n: usize, e: &str) {
        self.report(
            format!("{scenario:<18} N={n:<5} FAILED: {e}"),
            json!({"scenario": scenario, "nodes": n, "ok": false, "error": e}),
        );
    }
}

async fn bench(args: BenchArgs) -> Result<Outcome, String> {
    let exe = match &args.shoal {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?,
    };
    let dir = std::env::temp_dir().join(format!("shoal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let b = Bench {
        args,
        exe,
        dir: dir.clone(),
        ok: Cell::new(true),
        skipped: RefCell::new(Vec::new()),
    };
    println!(
        "# shoal bench: {} cores, concurrency {}, {} per measurement",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        b.args.concurrency,
        humantime::format_duration(b.args.duration)
    );
    if b.args.runs(Only::Cluster) {
        for &n in &b.args.nodes {
            if let Err(e) = cluster(&b, n).await {
                b.fail("cluster", n, &e);
            }
        }
    }
    if b.args.runs(Only::Proxy) {
        if let Err(e) = proxy::proxy_sim(&b).await {
            b.fail("proxy_sim", 1, &e);
        }
        if let Some(target) = b.args.dockerd.clone() {
            if let Err(e) = proxy::proxy_dockerd(&b, &target).await {
                b.fail("proxy_dockerd", 1, &e);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Outcome {
        ok: b.ok.get(),
        skipped: b.skipped.into_inner(),
    })
}

/// Starts the fleet of `n` engines, in as many sim processes as needed.
async fn start_fleet(b: &Bench, n: usize) -> Result<Vec<SimProc>, String> {
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

/// How long a Shoal under measurement may take to see its whole cluster.
const STARTUP_LIMIT: Duration = Duration::from_secs(180);

/// Polls `/info` until `nodes` are healthy and `containers` known; answers the seconds
/// since Shoal was spawned to each (healthy, full view).
async fn wait_full(shoal: &ShoalProc, nodes: usize, containers: u64) -> Result<(f64, f64), String> {
    let http = Http::new(&shoal.host, 2);
    let mut healthy_at = None;
    let deadline = Instant::now() + STARTUP_LIMIT;
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
                STARTUP_LIMIT.as_secs(),
                shoal.log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls Shoal's cluster page API until every container it lists has its reservations
/// known (each was inspected), so the scheduler counts all of them; answers the seconds
/// since Shoal was spawned. Creates measured before this would race the start-up inspects.
async fn wait_reserved(shoal: &ShoalProc) -> Result<f64, String> {
    let http = Http::new(&shoal.host, 2);
    let deadline = Instant::now() + STARTUP_LIMIT;
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
                STARTUP_LIMIT.as_secs(),
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

/// Serial latency, then requests/s at `conc` clients, of one GET.
async fn measure_get(b: &Bench, http: &Http, paths: &[String], conc: usize) -> (Stats, Stats) {
    let serial = measure_at(b, http, paths, 1).await;
    let loaded = measure_at(b, http, paths, conc).await;
    (serial, loaded)
}

/// `paths` in turn from `conc` clients at once for `--duration`; every answer must be 200.
async fn measure_at(b: &Bench, http: &Http, paths: &[String], conc: usize) -> Stats {
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
    serial: &Stats,
    loaded: &Stats,
    conc: usize,
) -> (String, Value) {
    let human = format!(
        "{scenario:<18} N={n:<5} p50 {:>8.3} ms  p90 {:>8.3} ms  p99 {:>8.3} ms  | {:>7.0} req/s at {conc} conns (p99 {:.3} ms){}",
        serial.ms(0.5),
        serial.ms(0.9),
        serial.ms(0.99),
        loaded.per_sec(),
        loaded.ms(0.99),
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
        "errors": serial.errors + loaded.errors,
        "ok": serial.errors + loaded.errors == 0 && serial.count() > 0 && loaded.count() > 0,
    });
    (human, record)
}

/// One cluster size: fleet, Shoal (spread), every measurement; then Shoal (binpack).
async fn cluster(b: &Bench, n: usize) -> Result<(), String> {
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
    std::fs::write(&discovery, list).map_err(|e| e.to_string())?;
    let discovery = format!("file://{}", discovery.display());
    let expected = (n * m) as u64;

    // Start-up to a full view.
    let log = b.dir.join(format!("shoal-{n}-spread.log"));
    let shoal = ShoalProc::start(&b.exe, log, &discovery, &strategy("spread")).await?;
    let (healthy_s, full_s) = wait_full(&shoal, n, expected).await?;
    let reserved_s = wait_reserved(&shoal).await?;
    let http = Http::new(&shoal.host, b.args.concurrency.max(b.args.subscribers) + 8);
    let (listed, exact, ids) = check_view(&http, &engines).await?;
    b.report(
        format!(
            "{:<18} N={n:<5} all healthy {healthy_s:.3} s, full view {full_s:.3} s, every reservation known {reserved_s:.3} s; {listed} of {expected} containers listed, exact: {exact}",
            "startup"
        ),
        json!({"scenario": "startup", "nodes": n, "containers_per_node": m,
               "healthy_s": round3(healthy_s), "full_view_s": round3(full_s),
               "reservations_known_s": round3(reserved_s),
               "containers_listed": listed, "containers_expected": expected,
               "view_exact": exact, "ok": exact}),
    );

    // Reads.
    let conc = b.args.concurrency;
    let (s, l) = measure_get(b, &http, &["/info".to_string()], conc).await;
    let (h, r) = read_record("info", n, m, &s, &l, conc);
    b.report(h, r);
    // A list of N×M entries is large (~15 MB at 30,000): two at once already fill 2 cores.
    let list_conc = conc.min(2);
    let (s, l) = measure_get(b, &http, &["/containers/json?all=1".to_string()], list_conc).await;
    let (h, r) = read_record("containers_list", n, m, &s, &l, list_conc);
    b.report(h, r);
    let paths: Vec<String> = ids
        .iter()
        .step_by((ids.len() / 1000).max(1))
        .map(|id| format!("/containers/{id}/json"))
        .collect();
    if paths.is_empty() {
        return Err("no container to inspect".into());
    }
    let (s, l) = measure_get(b, &http, &paths, conc).await;
    let (h, r) = read_record("container_inspect", n, m, &s, &l, conc);
    b.report(h, r);

    creates(b, &http, n, "spread").await;
    events(b, &shoal, &mut sims, n).await;
    let (rss, cpu) = shoal.usage();
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
    wait_reserved(&shoal).await?;
    let http = Http::new(&shoal.host, b.args.concurrency + 8);
    creates(b, &http, n, "binpack").await;
    let (rss, cpu) = shoal.usage();
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

/// The create bodies the benchmark cycles through: every one carries placement
/// expressions (exact, glob, regex, negation, soft, affinity, whitelist) and reservations.
fn create_body(k: usize) -> bytes::Bytes {
    let env: &[&str] = match k % 6 {
        0 => &["constraint:zone==z1", "affinity:image==busybox"],
        1 => &["constraint:storage!=hdd", "constraint:zone==z*"],
        2 => &["constraint:storage==/^ss/", "constraint:zone==~z2"],
        3 => &[
            "constraint:node!=sim-3",
            "affinity:container!=sim-5-c1",
            "constraint:kernelversion==6.*",
        ],
        4 => &["constraint:zone==~nowhere", "constraint:ostype==linux"],
        _ => &["whitelist:node!=sim-1|sim-2", "affinity:bench!=none"],
    };
    let mut body = json!({
        "Image": "busybox:latest",
        "Cmd": ["sleep", "1000"],
        "Env": env,
        "Labels": {"bench": "create"},
        "HostConfig": {"Memory": 16 << 20, "NanoCpus": 10_000_000},
    });
    if k % 6 == 3 {
        // A host port nobody else asks for: the port filter runs and always passes.
        let port = 10_000 + (k % 50_000);
        body["HostConfig"]["PortBindings"] = json!({"80/tcp": [{"HostPort": port.to_string()}]});
    }
    bytes::Bytes::from(body.to_string())
}

/// Creates (then starts, when Shoal routes starts) `--creates` containers.
async fn creates(b: &Bench, http: &Http, n: usize, strategy: &str) {
    let scenario = format!("create_{strategy}");
    let ids = RefCell::new(Vec::new());
    let run = std::process::id();
    let stats = drive(
        Drive {
            concurrency: b.args.concurrency,
            max_requests: b.args.creates,
            max_time: Duration::from_secs(120),
        },
        |k| {
            let ids = &ids;
            async move {
                let path = format!("/containers/create?name=bench-{run}-{strategy}-{n}-{k}");
                let a = http
                    .call(awc::http::Method::POST, &path, Some(create_body(k)))
                    .await?;
                if a.status != 201 {
                    return Err(format!(
                        "create: {} {}",
                        a.status,
                        String::from_utf8_lossy(&a.body)
                    ));
                }
                let v: Value = serde_json::from_slice(&a.body).map_err(|e| e.to_string())?;
                ids.borrow_mut()
                    .push(v["Id"].as_str().unwrap_or_default().to_string());
                Ok(())
            }
        },
    )
    .await;
    let ids = ids.into_inner();
    // Starts: routed by the proxy work; until it lands Shoal answers 501.
    let mut start_note = "start not measured: no container created".to_string();
    let mut start_json = Value::Null;
    if let Some(first) = ids.first() {
        let probe = http
            .call(
                awc::http::Method::POST,
                &format!("/containers/{first}/start"),
                None,
            )
            .await;
        match probe {
            Ok(a) if a.status == 204 || a.status == 304 => {
                let starts = drive(
                    Drive {
                        concurrency: b.args.concurrency,
                        max_requests: ids.len() - 1,
                        max_time: Duration::from_secs(120),
                    },
                    |k| {
                        let id = &ids[k + 1];
                        async move {
                            let a = http
                                .call(
                                    awc::http::Method::POST,
                                    &format!("/containers/{id}/start"),
                                    None,
                                )
                                .await?;
                            match a.status {
                                204 | 304 => Ok(()),
                                s => Err(format!("start: {s}")),
                            }
                        }
                    },
                )
                .await;
                start_note = format!(
                    "starts {:.0}/s p50 {:.3} ms p99 {:.3} ms",
                    starts.per_sec(),
                    starts.ms(0.5),
                    starts.ms(0.99)
                );
                start_json = starts.json();
            }
            Ok(a) => {
                start_note = format!("start answers {}: creates only", a.status);
                start_json = json!({"not_measured": format!("start answers {}", a.status)});
            }
            Err(e) => start_note = format!("start failed: {e}"),
        }
    }
    b.report(
        format!(
            "{scenario:<18} N={n:<5} {:>7.0} placements/s, p50 {:.3} ms p99 {:.3} ms ({} created at {} conns, {} refused){}; {start_note}",
            stats.per_sec(),
            stats.ms(0.5),
            stats.ms(0.99),
            stats.count(),
            b.args.concurrency,
            stats.errors,
            stats.first_error.as_deref().map(|e| format!(" first refusal: {e}")).unwrap_or_default(),
        ),
        json!({"scenario": scenario, "nodes": n, "containers_per_node": b.args.containers_per_engine,
               "strategy": strategy, "filters": "all",
               "created": stats.count(), "refused": stats.errors, "concurrency": b.args.concurrency,
               "placements_per_sec": stats.per_sec().round(),
               "p50_ms": round3(stats.ms(0.5)), "p90_ms": round3(stats.ms(0.9)), "p99_ms": round3(stats.ms(0.99)),
               "start": start_json,
               "ok": stats.errors == 0 && stats.count() > 0}),
    );
}

/// Event fan-in: `--events` events from all engines at `--event-rate`, each to be delivered
/// to every one of `--subscribers` `/events` clients.
async fn events(b: &Bench, shoal: &ShoalProc, sims: &mut [SimProc], n: usize) {
    let subs = b.args.subscribers;
    let http = Http::new(&shoal.host, subs + 4);
    let connected = Rc::new(Cell::new(0usize));
    let ended = Rc::new(Cell::new(0usize));
    let counters: Vec<Rc<Cell<u64>>> = (0..subs).map(|_| Rc::new(Cell::new(0))).collect();
    // `{"label":["bench=fanin"]}`: only the benchmark's events.
    let path = "/events?filters=%7B%22label%22%3A%5B%22bench%3Dfanin%22%5D%7D";
    let tasks: Vec<_> = counters
        .iter()
        .map(|c| {
            let (http, c, connected, ended) =
                (http.clone(), c.clone(), connected.clone(), ended.clone());
            actix_rt::spawn(async move {
                connected.set(connected.get() + 1);
                let _ = http.count_lines(path, c).await;
                ended.set(ended.get() + 1);
            })
        })
        .collect();
    // A subscription exists once its request reached the hub; give them time to connect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = b.args.events;
    let per_sim = total / sims.len() as u64;
    let rate = b.args.event_rate / sims.len() as f64;
    let start = Instant::now();
    let mut emitted = 0;
    let nsims = sims.len() as u64;
    for (i, s) in sims.iter_mut().enumerate() {
        let count = if i == 0 {
            total - per_sim * (nsims - 1)
        } else {
            per_sim
        };
        emitted += count;
        if let Err(e) = s.emit(rate, count) {
            b.fail("events", n, &e);
            return;
        }
    }
    let mut emit_s: f64 = 0.0;
    for s in sims.iter_mut() {
        match s.emitted().await {
            Ok(t) => emit_s = emit_s.max(t),
            Err(e) => {
                b.fail("events", n, &e);
                return;
            }
        }
    }
    let want = emitted * subs as u64;
    let sum = |c: &[Rc<Cell<u64>>]| c.iter().map(|x| x.get()).sum::<u64>();
    let mut last = (sum(&counters), Instant::now());
    let mut done_at = start.elapsed();
    while last.0 < want && last.1.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = sum(&counters);
        if now != last.0 {
            last = (now, Instant::now());
            done_at = start.elapsed();
        }
    }
    for t in tasks {
        t.abort();
    }
    let delivered = last.0;
    let lost = want.saturating_sub(delivered);
    let short = counters.iter().filter(|c| c.get() < emitted).count();
    let rate_in = emitted as f64 / emit_s.max(1e-9);
    let out_rate = delivered as f64 / done_at.as_secs_f64().max(1e-9);
    b.report(
        format!(
            "{:<18} N={n:<5} {emitted} events at {rate_in:.0}/s in, {out_rate:.0} deliveries/s to {subs} subscribers; lost {lost} of {want} ({short} subscribers short, {} streams ended); last delivery {:.3} s after the first emit",
            "events",
            ended.get(),
            done_at.as_secs_f64()
        ),
        json!({"scenario": "events", "nodes": n, "containers_per_node": b.args.containers_per_engine,
               "subscribers": subs, "connected": connected.get(), "events": emitted,
               "events_per_sec_in": rate_in.round(), "deliveries_per_sec": out_rate.round(),
               "expected_deliveries": want, "delivered": delivered, "lost": lost,
               "subscribers_short": short, "streams_ended": ended.get(),
               "drain_s": round3(done_at.as_secs_f64()),
               "ok": lost == 0}),
    );
}
