//! `shoal-bench`: Shoal measured through its real HTTP API, in front of simulated engines
//! that run in their own processes (`shoal sim`), so Shoal's memory and CPU are its own.
//!
//! A crate of its own, outside the daemon: the harness (its load client, its process
//! handling, the proxy-overhead fixture on a real dockerd) is a measuring tool, not part of
//! what runs in production. It drives the `shoal` binary from the outside, as `shoal sim`
//! (the fleet) and `shoal manage` (the Shoal under measurement).
//!
//! For each cluster size N it starts the fleet (N engines × M containers), starts
//! `shoal manage` (spread) and measures: start-up to a full view (and checks the view is
//! exact against the engines), `GET /info`, `GET /containers/json?all=1` and
//! `GET /containers/{id}/json`, creates (+ starts) with placement expressions, event fan-in
//! to many `/events` subscribers, peak RSS and CPU; then restarts Shoal with binpack and
//! measures creates again (`cluster`, `creates`, `events`). The proxy scenarios (`proxy`)
//! send one request mix straight to one engine and through Shoal in front of it; the TLS
//! scenarios (`tls_cost`) measure what mutual TLS on both legs and an authorization policy
//! add to a request. Every
//! scenario prints a human line and a JSON line; [`measure`] also hands the JSON records
//! back, for the test suite.
//!
//! Latency figures come from one client making one request at a time (the latency a
//! request sees); requests/s from `--concurrency` clients at once.
#![forbid(unsafe_code)]

mod cluster;
mod creates;
mod dockerd;
mod events;
mod load;
mod pki;
mod procs;
mod proxy;
mod tls_cost;

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The command line of `shoal-bench`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "shoal-bench",
    version,
    about = "Measure Shoal in front of simulated engines through its HTTP API (see BENCHMARKS.md)"
)]
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
    /// resources at each --nodes size), `proxy` (proxy_sim, and proxy_dockerd with
    /// --dockerd; --nodes is then not used) or `tls` (proxy_tls and authz_guard: mutual
    /// TLS on both legs against plaintext, a policy against none), e.g. `--only proxy` to
    /// rerun the proxy figures in a few seconds; `events` runs only the event fan-in at
    /// each --nodes size (a fleet and a Shoal, no reads or creates).
    #[arg(long, value_enum)]
    pub only: Option<Only>,

    /// A small, fast run that checks every figure is produced (the test suite's mode):
    /// 20 engines × 5 containers, OS-picked ports, short durations.
    #[arg(long)]
    pub smoke: bool,

    /// The `shoal` binary to run as `shoal sim` and `shoal manage` (default: the `shoal`
    /// beside this `shoal-bench`, as `cargo build --release` leaves them).
    #[arg(long)]
    pub shoal: Option<PathBuf>,
}

/// The kinds of scenario `--only` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    Cluster,
    Proxy,
    /// What TLS on both legs and the authorization guard add to a request
    /// (`proxy_tls`, `authz_guard`).
    Tls,
    /// Only the event fan-in at each --nodes size (part of `cluster`).
    Events,
}

impl BenchArgs {
    fn runs(&self, kind: Only) -> bool {
        match kind {
            Only::Proxy if self.no_proxy => false,
            // Part of `cluster`; alone only when asked for.
            Only::Events => self.only == Some(Only::Events),
            kind => self.only.is_none_or(|only| only == kind),
        }
    }

    /// `--smoke`: the small sizes of the test suite's mode.
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

/// Why a run could not start at all (a scenario that fails is reported, not an error).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot tell where this program is: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error("no shoal binary at {0} (build it with `cargo build --release`, or give --shoal)")]
    NoShoal(PathBuf),
    #[error("cannot make the work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the benchmark as `shoal-bench` does: prints every scenario, answers the exit status
/// (0 all passed, 1 a scenario failed, 2 some could not run).
pub fn run(args: BenchArgs) -> ExitCode {
    match measure(args) {
        Ok(Outcome { ok: false, .. }) => {
            eprintln!("shoal-bench: some scenario failed (see the lines above)");
            ExitCode::FAILURE
        }
        Ok(Outcome { skipped, .. }) if !skipped.is_empty() => {
            eprintln!("shoal-bench: skipped: {}", skipped.join("; "));
            ExitCode::from(EXIT_SKIPPED)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark on a runtime of its own (one thread: the load client costs at most
/// one core), printing every scenario; answers how it went and every JSON record.
pub fn measure(mut args: BenchArgs) -> Result<Outcome, BenchError> {
    args.apply_smoke();
    let exe = shoal_exe(&args)?;
    actix_rt::System::new().block_on(bench(args, exe))
}

/// How a run ended: whether every scenario passed, the ones that could not run, and the
/// JSON record of every scenario in the order printed.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub skipped: Vec<String>,
    pub records: Vec<Value>,
}

/// Everything one run shares.
struct Bench {
    args: BenchArgs,
    exe: PathBuf,
    dir: PathBuf,
    ok: Cell<bool>,
    /// `scenario: reason` of each scenario that could not run.
    skipped: RefCell<Vec<String>>,
    /// Every JSON line printed, for [`Outcome::records`].
    records: RefCell<Vec<Value>>,
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
        self.records.borrow_mut().push(record);
    }

    /// A scenario that cannot run here: said in both lines, and in the exit status.
    fn skip(&self, scenario: &str, reason: &str) {
        let record = json!({"scenario": scenario, "skipped": true, "reason": reason, "ok": false});
        println!("{scenario:<18} SKIPPED: {reason}");
        println!("{record}");
        self.records.borrow_mut().push(record);
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

/// The `shoal` binary to drive: `--shoal`, or the one beside this program.
fn shoal_exe(args: &BenchArgs) -> Result<PathBuf, BenchError> {
    let exe = match &args.shoal {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(BenchError::CurrentExe)?
            .with_file_name("shoal"),
    };
    #[allow(
        clippy::disallowed_methods,
        reason = "called by `measure` before the runtime starts"
    )]
    let found = exe.is_file();
    if found {
        Ok(exe)
    } else {
        Err(BenchError::NoShoal(exe))
    }
}

async fn bench(args: BenchArgs, exe: PathBuf) -> Result<Outcome, BenchError> {
    let dir = std::env::temp_dir().join(format!("shoal-bench-{}", std::process::id()));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|source| BenchError::WorkDir {
            path: dir.clone(),
            source,
        })?;
    let b = Bench {
        args,
        exe,
        dir: dir.clone(),
        ok: Cell::new(true),
        skipped: RefCell::new(Vec::new()),
        records: RefCell::new(Vec::new()),
    };
    println!(
        "# shoal-bench: {} cores, concurrency {}, {} per measurement",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        b.args.concurrency,
        humantime::format_duration(b.args.duration)
    );
    if b.args.runs(Only::Cluster) {
        for &n in &b.args.nodes {
            if let Err(e) = cluster::cluster(&b, n).await {
                b.fail("cluster", n, &e);
            }
        }
    }
    if b.args.runs(Only::Events) {
        for &n in &b.args.nodes {
            if let Err(e) = events::events_only(&b, n).await {
                b.fail("events", n, &e);
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
    if b.args.runs(Only::Tls) {
        if let Err(e) = tls_cost::tls_cost(&b).await {
            b.fail("proxy_tls", 1, &e);
        }
    }
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok(Outcome {
        ok: b.ok.get(),
        skipped: b.skipped.into_inner(),
        records: b.records.into_inner(),
    })
}
