//! The processes a benchmark runs: `shoal sim` fleets and `shoal manage` under test, each a
//! child of the harness (so Shoal's RSS and CPU are its own), killed when dropped.

use super::load::Http;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A `shoal sim` process: its stdin takes commands, its stdout lines come back here.
pub struct SimProc {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// `tcp://127.0.0.1:PORT` of each engine, in order (engine sim-<first + i>).
    pub addrs: Vec<String>,
}

impl SimProc {
    /// Starts `engines` engines named from `first`, and waits until they listen.
    pub async fn start(
        exe: &Path,
        dir: &Path,
        first: usize,
        engines: usize,
        per_engine: usize,
        port_base: u16,
        extra: &[String],
    ) -> Result<SimProc, String> {
        let addrs_file = dir.join(format!("sim-{first}.addrs"));
        let mut child = Command::new(exe)
            .args(["sim", "--engines", &engines.to_string()])
            .args(["--containers-per-engine", &per_engine.to_string()])
            .args(["--first-index", &first.to_string()])
            .args(["--port-base", &port_base.to_string()])
            .arg("--addrs-file")
            .arg(&addrs_file)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {} sim: {e}", exe.display()))?;
        let stdin = child.stdin.take().ok_or("sim: no stdin")?;
        let stdout = child.stdout.take().ok_or("sim: no stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut sim = SimProc {
            child,
            stdin,
            lines,
            addrs: Vec::new(),
        };
        let ready = sim.next_line(Duration::from_secs(120)).await?;
        if !ready.starts_with("ready ") {
            return Err(format!("sim said {ready:?} instead of ready"));
        }
        let text = tokio::fs::read_to_string(&addrs_file)
            .await
            .map_err(|e| e.to_string())?;
        sim.addrs = text.lines().map(str::to_string).collect();
        Ok(sim)
    }

    async fn next_line(&mut self, limit: Duration) -> Result<String, String> {
        match tokio::time::timeout(limit, self.lines.recv()).await {
            Ok(Some(l)) => Ok(l),
            Ok(None) => Err(format!("sim exited: {:?}", self.child.try_wait())),
            Err(_) => Err("sim did not answer in time".into()),
        }
    }

    /// Asks for `count` events at `rate` per second; answers when they are all emitted.
    pub fn emit(&mut self, rate: f64, count: u64) -> Result<(), String> {
        writeln!(self.stdin, "emit {rate} {count}").map_err(|e| e.to_string())
    }

    /// Waits for the end of an `emit`: seconds it took.
    pub async fn emitted(&mut self) -> Result<f64, String> {
        let line = self.next_line(Duration::from_secs(600)).await?;
        line.split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .filter(|_| line.starts_with("emitted "))
            .ok_or_else(|| format!("sim said {line:?}"))
    }
}

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        #[allow(
            clippy::disallowed_methods,
            reason = "after SIGKILL the wait only reaps the child, at once; a drop cannot await"
        )]
        let _ = self.child.wait();
    }
}

/// A `shoal manage` under test.
pub struct ShoalProc {
    child: Child,
    pub host: String,
    pub log: PathBuf,
    pub started: Instant,
    /// The client side of its TLS, when it serves TLS.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ShoalProc {
    /// `shoal manage file://DISCOVERY -H 127.0.0.1:0 EXTRA...`; answers once it listens
    /// on the port it says it got (a port picked here and freed could be taken by another
    /// process before Shoal binds it). `started` is taken just before the spawn.
    pub async fn start(
        exe: &Path,
        log: PathBuf,
        discovery: &str,
        extra: &[String],
    ) -> Result<ShoalProc, String> {
        Self::start_with(exe, log, discovery, extra, None).await
    }

    /// As [`ShoalProc::start`], for a Shoal that serves TLS (its flags in `extra`): `tls`
    /// is what a client of it shows and trusts.
    pub async fn start_with(
        exe: &Path,
        log: PathBuf,
        discovery: &str,
        extra: &[String],
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<ShoalProc, String> {
        let out = tokio::fs::File::create(&log)
            .await
            .map_err(|e| e.to_string())?
            .into_std()
            .await;
        let started = Instant::now();
        let child = Command::new(exe)
            .args(["manage", discovery, "-H", "127.0.0.1:0"])
            .args([
                "--log-level",
                "warn,shoal::listen=info",
                "--log-format",
                "json",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot run {} manage: {e}", exe.display()))?;
        let mut p = ShoalProc {
            child,
            host: String::new(),
            log,
            started,
            tls,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while p.host.is_empty() {
            let text = tokio::fs::read_to_string(&p.log).await.unwrap_or_default();
            if let Some(addr) = text.lines().find_map(served_addr) {
                p.host = addr;
                break;
            }
            if let Ok(Some(st)) = p.child.try_wait() {
                return Err(format!("shoal exited ({st}); see {}", p.log.display()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "shoal never said where it listens; see {}",
                    p.log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        while tokio::net::TcpStream::connect(&p.host).await.is_err() {
            if let Ok(Some(st)) = p.child.try_wait() {
                return Err(format!("shoal exited ({st}); see {}", p.log.display()));
            }
            if Instant::now() > deadline {
                return Err(format!("shoal never listened; see {}", p.log.display()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(p)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client of this Shoal, over TLS when it serves TLS.
    pub fn http(&self, conns: usize) -> Http {
        match &self.tls {
            Some(tls) => Http::tls(&self.host, conns, tls.clone()),
            None => Http::new(&self.host, conns),
        }
    }

    /// Peak resident memory (`VmHWM`) in MiB and CPU seconds (user + system) so far.
    pub async fn usage(&self) -> (f64, f64) {
        usage_of(self.pid()).await
    }

    /// Resident memory now (`VmRSS`) in MiB.
    pub async fn rss_mib(&self) -> f64 {
        let status = tokio::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .await
            .unwrap_or_default();
        status_kb(&status, "VmRSS:") / 1024.0
    }

    /// Descriptors open now: what 10,000 engines run into (the hard limit here is 20,000).
    pub async fn open_files(&self) -> usize {
        let Ok(mut dir) = tokio::fs::read_dir(format!("/proc/{}/fd", self.pid())).await else {
            return 0;
        };
        let mut n = 0;
        while let Ok(Some(_)) = dir.next_entry().await {
            n += 1;
        }
        n
    }
}

/// A `kB` field of a `/proc/<pid>/status` text (NaN when missing).
fn status_kb(status: &str, key: &str) -> f64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

impl Drop for ShoalProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        #[allow(
            clippy::disallowed_methods,
            reason = "after SIGKILL the wait only reaps the child, at once; a drop cannot await"
        )]
        let _ = self.child.wait();
    }
}

/// The bound address in Shoal's JSON "serving" log line (`fields.addr`).
fn served_addr(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = &v["fields"];
    (fields["message"] == "shoal is serving the Docker API")
        .then(|| fields["addr"].as_str().map(str::to_string))
        .flatten()
}

/// Shoal's CPU time (user + system) per operation, in µs, over a span of operations: the
/// cost of an operation that the machine's load does not change, unlike its wall time.
/// Every scenario that reports `cpu_us_per_op` reads it this way.
pub struct CpuMeter {
    pid: u32,
    from: f64,
}

impl CpuMeter {
    /// Starts a span: reads process `pid`'s CPU time now.
    pub async fn start(pid: u32) -> CpuMeter {
        CpuMeter {
            pid,
            from: usage_of(pid).await.1,
        }
    }

    /// µs of CPU per operation since the span started, `ops` operations done; the next
    /// span starts now. (The kernel counts in 10 ms ticks: spans should cost far more.)
    pub async fn per_op_us(&mut self, ops: usize) -> f64 {
        let now = usage_of(self.pid).await.1;
        let spent = now - std::mem::replace(&mut self.from, now);
        spent * 1e6 / ops.max(1) as f64
    }
}

/// `VmHWM` in MiB and utime + stime in seconds of process `pid`, from `/proc`.
pub async fn usage_of(pid: u32) -> (f64, f64) {
    let status = tokio::fs::read_to_string(format!("/proc/{pid}/status"))
        .await
        .unwrap_or_default();
    let hwm_kb = status_kb(&status, "VmHWM:");
    let stat = tokio::fs::read_to_string(format!("/proc/{pid}/stat"))
        .await
        .unwrap_or_default();
    // Fields after the `(comm)`, which may hold spaces: utime and stime are 14th and 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // USER_HZ is 100 on every Linux this runs on.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    (hwm_kb / 1024.0, cpu)
}
