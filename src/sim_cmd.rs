//! `shoal sim`: simulated engines in a process of their own, until killed.
//!
//! `shoal sim --engines 1000 --port-base 20000 --containers-per-engine 30` serves engine
//! `sim-<i>` on 127.0.0.1:(20000 + i), each answering the Docker Engine API like a real
//! engine (the `docker` CLI works against one), so any client or any other manager can be
//! measured against the same fleet. The engines are `shoal_sim` engines: one actix-web
//! server listening on every port.
//!
//! The benchmark harness drives it through stdin, one command a line:
//!
//! - `emit RATE COUNT`: emit COUNT container events (`exec_start`, label `bench=fanin`,
//!   attribute `bench.seq`), spread round-robin over the engines at RATE per second, then
//!   print `emitted COUNT SECONDS`.
//!
//! It prints `ready ENGINES` once every port listens (after writing `--addrs-file`), so a
//! parent knows when to start. A closed stdin (a shell's `&`) changes nothing.

use crate::tls::{ApiTls, ApiTlsFiles, ClientAuth};
use clap::Args;
use shoal_sim::{EngineConfig, FleetOptions, SimEngine, SimError, SimFleet};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// How many engines to serve.
    #[arg(long, env = "SHOAL_SIM_ENGINES", default_value_t = 3)]
    pub engines: usize,

    /// Engine i listens on 127.0.0.1:(PORT_BASE + i); 0 lets the OS pick each port.
    #[arg(long, env = "SHOAL_SIM_PORT_BASE", default_value_t = 20000)]
    pub port_base: u16,

    /// Containers each engine holds at start (two of every three running).
    #[arg(long, env = "SHOAL_SIM_CONTAINERS_PER_ENGINE", default_value_t = 30)]
    pub containers_per_engine: usize,

    /// Engines are named sim-<FIRST_INDEX + i>, so several sim processes can share a cluster.
    #[arg(long, env = "SHOAL_SIM_FIRST_INDEX", default_value_t = 0)]
    pub first_index: usize,

    /// Server threads shared by all engines.
    #[arg(long, env = "SHOAL_SIM_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Emit this many events per second from the start, until killed (0: none).
    #[arg(long, env = "SHOAL_SIM_EMIT_RATE", default_value_t = 0.0)]
    pub emit_rate: f64,

    /// Write `tcp://127.0.0.1:PORT` of every engine here, one a line (a discovery file).
    #[arg(long, env = "SHOAL_SIM_ADDRS_FILE")]
    pub addrs_file: Option<PathBuf>,

    /// Serve every engine with TLS showing this certificate (with --tlskey), as
    /// `dockerd --tls` does; the benchmark measures TLS to engines with it.
    #[arg(long, env = "SHOAL_SIM_TLSCERT", requires = "tlskey")]
    pub tlscert: Option<PathBuf>,

    /// The key of --tlscert.
    #[arg(long, env = "SHOAL_SIM_TLSKEY", requires = "tlscert")]
    pub tlskey: Option<PathBuf>,

    /// Ask every client for a certificate this CA signed, as `dockerd --tlsverify` does.
    #[arg(long, env = "SHOAL_SIM_TLSCACERT", requires = "tlscert")]
    pub tlscacert: Option<PathBuf>,
}

/// Engine `i` of a benchmark fleet: labels the placement expressions of the benchmark use
/// (`zone`, `storage`), 4 CPUs and 8 GiB.
pub fn engine_config(i: usize, containers: usize) -> EngineConfig {
    EngineConfig::new(format!("sim-{i}"))
        .label("zone", format!("z{}", i % 4))
        .label("storage", if i.is_multiple_of(3) { "hdd" } else { "ssd" })
        .containers(containers)
}

/// Why `shoal sim` could not serve its fleet.
#[derive(Debug, thiserror::Error)]
pub enum SimCmdError {
    #[error("--engines must be at least 1")]
    NoEngines,
    #[error("--port-base + --engines goes past port 65535")]
    PortRange,
    #[error("cannot start the engines: {0}")]
    Start(#[from] SimError),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsConfigError),
    #[error("{path}: {source}")]
    AddrsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn run(args: SimArgs) -> ExitCode {
    let result = actix_rt::System::new().block_on(serve(args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal sim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: SimArgs) -> Result<(), SimCmdError> {
    if args.engines == 0 {
        return Err(SimCmdError::NoEngines);
    }
    if args.port_base != 0 && args.port_base as usize + args.engines > 65536 {
        return Err(SimCmdError::PortRange);
    }
    let configs = (0..args.engines)
        .map(|i| engine_config(args.first_index + i, args.containers_per_engine))
        .collect();
    let opts = FleetOptions {
        port_base: (args.port_base != 0).then_some(args.port_base),
        tls: engine_tls(&args)?,
        ..FleetOptions::default()
    }
    .workers(args.workers);
    let fleet = SimFleet::start(configs, opts).await?;
    if let Some(path) = &args.addrs_file {
        let list: String = fleet.engines().iter().map(|e| e.url() + "\n").collect();
        tokio::fs::write(path, list)
            .await
            .map_err(|source| SimCmdError::AddrsFile {
                path: path.clone(),
                source,
            })?;
    }
    let engines = fleet.engines().to_vec();
    println!("ready {}", engines.len());
    let _ = std::io::stdout().flush();

    let mut emitter = Emitter { engines, seq: 0 };
    if args.emit_rate > 0.0 {
        emitter.emit(args.emit_rate, u64::MAX).await;
    }
    // Commands arrive from a plain thread: stdin reads block.
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        #[allow(
            clippy::disallowed_methods,
            reason = "a thread of its own, off the runtime, so its blocking reads stall nothing"
        )]
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["emit", rate, count] => match (rate.parse::<f64>(), count.parse::<u64>()) {
                (Ok(rate), Ok(count)) if rate > 0.0 => {
                    let took = emitter.emit(rate, count).await;
                    println!("emitted {count} {:.6}", took.as_secs_f64());
                }
                _ => println!("error: emit RATE COUNT"),
            },
            [] => {}
            _ => println!("error: unknown command {line:?}"),
        }
        let _ = std::io::stdout().flush();
    }
    // stdin closed: serve until killed.
    std::future::pending::<()>().await;
    Ok(())
}

/// The engines' TLS, as dockerd's `--tlsverify` (a CA given) or `--tls` would serve it.
fn engine_tls(args: &SimArgs) -> Result<Option<Arc<rustls::ServerConfig>>, SimCmdError> {
    let (Some(cert), Some(key)) = (&args.tlscert, &args.tlskey) else {
        return Ok(None);
    };
    let files = ApiTlsFiles {
        auth: match args.tlscacert {
            Some(_) => ClientAuth::Required,
            None => ClientAuth::None,
        },
        ca: args.tlscacert.clone(),
        cert: cert.clone(),
        key: key.clone(),
    };
    Ok(Some(Arc::new(ApiTls::load(&files)?.server_config())))
}

struct Emitter {
    engines: Vec<SimEngine>,
    seq: u64,
}

impl Emitter {
    /// Emits `count` events at `rate` per second, round-robin over the engines; answers how
    /// long it took. Paced every millisecond, so a burst is at most `rate / 1000` events.
    async fn emit(&mut self, rate: f64, count: u64) -> Duration {
        let start = Instant::now();
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while sent < count {
            tick.tick().await;
            let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(count);
            while sent < due {
                let engine = &self.engines[(self.seq % self.engines.len() as u64) as usize];
                let id = format!("{:064x}", self.seq);
                let seq = self.seq.to_string();
                engine.emit_event(
                    "exec_start: sh -c true",
                    &id,
                    &[("bench", "fanin"), ("bench.seq", &seq), ("name", "bench")],
                );
                self.seq += 1;
                sent += 1;
            }
        }
        start.elapsed()
    }
}
