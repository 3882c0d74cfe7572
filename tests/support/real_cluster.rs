//! `RealCluster`: a pool of real `dockerd` engines for end-to-end tests.
//!
//! ```ignore
//! let cluster = RealCluster::new()
//!     .engine("node-1", &["storage=ssd", "zone=a"])
//!     .engine("node-2", &["storage=disk", "zone=b"])
//!     .start()?;
//! let out = cluster.engines()[0].docker(&["run", "-d", "busybox", "sleep", "60"]);
//! ```
//!
//! Each engine is a `dockerd` child of the test process in its own UTS namespace (so
//! `docker info` reports the node's name) and its own network namespace (see
//! [`super::netns`]: an address of its own, `tcp://<address>:2375`, so no port is ever
//! picked and the host's `docker0` is never touched), with its own data-root, exec-root,
//! unix socket and containerd namespace on the machine's shared containerd. Engines start
//! in parallel; `start` returns once each answers `/_ping` and has `busybox:latest`.
//! Dropping the cluster stops all of it, also when the test panics; a run killed before
//! its `Drop` is cleaned up by the next run's sweep.
//!
//! Environment: `SHOAL_IT_KEEP=1` copies the engines' logs to
//! `test-artifacts/real-cluster/` before removing the rest; `SHOAL_IT_DOCKERD`,
//! `SHOAL_IT_DOCKER`, `SHOAL_IT_BUSYBOX`, `SHOAL_IT_CONTAINERD` point at other binaries
//! or socket; `SHOAL_IT_STORAGE_DRIVER` replaces `fuse-overlayfs`; `SHOAL_IT_NET` (say
//! `10.99`) replaces the engines' /16, `10.213`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::busybox;
use super::docker_cli::{docker_cli_timeout, dockerd_bin, wait_timeout, DockerOutput};
use super::netns::{self, EngineNet, NetError, ENGINE_PORT};
use super::pki::{CertFiles, Pki};
use super::proc::signal;
use super::sweep::{self, BASE_PREFIX, LOCK_FILE};

/// The TCP port of an engine that serves `--tlsverify` (dockerd's conventional one).
const TLS_PORT: u16 = 2376;
/// How long an engine may take to answer `/_ping` after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping engine gets after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Lines of an engine's log quoted in errors and panics.
const LOG_TAIL: usize = 30;

/// Why a cluster could not start.
#[derive(thiserror::Error)]
pub enum HarnessError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("network namespace: {0}")]
    Net(#[from] NetError),
    #[error("engine {engine}: {reason}\n--- last lines of {} ---\n{tail}", log.display())]
    Engine {
        engine: String,
        reason: String,
        log: PathBuf,
        tail: String,
    },
}

// `fn test() -> Result<..>` prints a returned error with `Debug`; make that readable.
impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

struct EngineSpec {
    name: String,
    labels: Vec<String>,
}

/// Builder of a [`RealCluster`]: name the engines, then `start`.
#[must_use]
pub struct RealClusterBuilder {
    engines: Vec<EngineSpec>,
    dockerd_args: Vec<String>,
    /// Engines serve `--tlsverify` on TCP with certificates of this CA.
    tls: Option<Pki>,
}

impl RealClusterBuilder {
    /// Adds an engine whose hostname (and so `docker info` Name) is `name`, with engine
    /// labels such as `"storage=ssd"`.
    pub fn engine(mut self, name: &str, labels: &[&str]) -> Self {
        self.engines.push(EngineSpec {
            name: name.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
        });
        self
    }

    /// Adds `n` engines without labels, named `node-<i>` after those already added.
    pub fn engines(mut self, n: usize) -> Self {
        for _ in 0..n {
            let name = format!("node-{}", self.engines.len() + 1);
            self = self.engine(&name, &[]);
        }
        self
    }

    /// Engines listen with `dockerd --tlsverify` on `tcp://ADDRESS:2376`, each with a
    /// certificate `pki` signs for its address; they take only clients with a certificate of
    /// the same CA. The harness's own calls go through each engine's unix socket.
    pub fn tls(mut self, pki: &Pki) -> Self {
        self.tls = Some(pki.clone());
        self
    }

    /// Passes an extra flag to every engine's `dockerd`.
    pub fn dockerd_arg(mut self, arg: &str) -> Self {
        self.dockerd_args.push(arg.to_string());
        self
    }

    /// Starts all engines in parallel and waits until each answers `/_ping` and has
    /// `busybox:latest`. On failure everything started is stopped again, and the error
    /// quotes the failing engine's log.
    pub fn start(self) -> Result<RealCluster, HarnessError> {
        let began = Instant::now();
        check_prerequisites()?;
        sweep::sweep_stale_once();
        let containerd = sweep::containerd_socket().ok_or_else(|| {
            HarnessError::Setup(
                "no containerd socket (/var/run/docker/containerd/containerd.sock or \
                 /run/containerd/containerd.sock): the machine's Docker daemon must be \
                 running (`bash .ci/run` starts it), or set SHOAL_IT_CONTAINERD"
                    .into(),
            )
        })?;

        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        // "/tmp/shoal-it-<pid>-<seq>"; its last component also prefixes the namespaces.
        let dir = PathBuf::from(format!("{BASE_PREFIX}{id}"));
        let name = dir
            .file_name()
            .expect("a dir name")
            .to_string_lossy()
            .into_owned();
        let io = |what: String| move |source| HarnessError::Io { what, source };
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let lock = File::create(dir.join(LOCK_FILE)).map_err(io("create the owner lock".into()))?;
        lock.lock().map_err(io("lock the owner lock".into()))?;

        // From here on, `Drop` of the cluster cleans up whatever happens next.
        let mut cluster = RealCluster {
            name: name.clone(),
            dir: dir.clone(),
            engines: Vec::new(),
            started_in: Duration::ZERO,
            _lock: lock,
        };
        let tar = busybox::build_tar(&dir)?;
        for (index, spec) in self.engines.into_iter().enumerate() {
            let engine_dir = dir.join(index.to_string());
            std::fs::create_dir_all(&engine_dir)
                .map_err(io(format!("create {}", engine_dir.display())))?;
            // An empty config: the machine's /etc/docker/daemon.json sets its data-root.
            std::fs::write(engine_dir.join("daemon.json"), "{}\n")
                .map_err(io("write daemon.json".into()))?;
            cluster.engines.push(RealEngine {
                name: spec.name,
                labels: spec.labels,
                namespace: format!("{name}-{index}"),
                dir: engine_dir,
                containerd: containerd.clone(),
                extra_args: self.dockerd_args.clone(),
                net: EngineNet::create()?,
                tls: None,
                log_mark: AtomicU64::new(0),
                child: Mutex::new(None),
            });
        }

        if let Some(pki) = &self.tls {
            for engine in &mut cluster.engines {
                let ip = engine.net.engine_ip().to_string();
                engine.tls = Some(pki.engine(&engine.namespace, &ip));
            }
        }

        let results: Vec<Result<(), HarnessError>> = thread::scope(|s| {
            let handles: Vec<_> = cluster
                .engines
                .iter()
                .map(|engine| s.spawn(|| engine.first_start(&tar)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("engine start thread"))
                .collect()
        });
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        cluster.started_in = began.elapsed();
        Ok(cluster)
    }
}

/// Running engines; stopped and removed on drop.
pub struct RealCluster {
    name: String,
    dir: PathBuf,
    engines: Vec<RealEngine>,
    started_in: Duration,
    /// Held for the cluster's life: tells other runs' sweeps that it is alive.
    _lock: File,
}

impl RealCluster {
    #[allow(
        clippy::new_ret_no_self,
        reason = "`RealCluster::new()` starts the builder, as a builder's entry point reads"
    )]
    pub fn new() -> RealClusterBuilder {
        RealClusterBuilder {
            engines: Vec::new(),
            dockerd_args: Vec::new(),
            tls: None,
        }
    }

    /// The issue's cluster: `node-1` (storage=ssd, zone=a), `node-2` (storage=disk,
    /// zone=a), `node-3` (storage=disk, zone=b).
    pub fn three_labelled() -> RealClusterBuilder {
        Self::new()
            .engine("node-1", &["storage=ssd", "zone=a"])
            .engine("node-2", &["storage=disk", "zone=a"])
            .engine("node-3", &["storage=disk", "zone=b"])
    }

    pub fn engines(&self) -> &[RealEngine] {
        &self.engines
    }

    /// The engine with hostname `name`.
    #[track_caller]
    pub fn engine(&self, name: &str) -> &RealEngine {
        self.engines
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no engine named {name}"))
    }

    /// An address of this host that every engine of the cluster reaches and that no other
    /// cluster has: bind a server the engines must reach (a registry, say) here, on any
    /// port. The engines take it as an insecure registry.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.engines
            .first()
            .map_or(Ipv4Addr::LOCALHOST, |e| e.net.host_ip())
    }

    /// The engines' TCP addresses joined by commas, as in `nodes://a,b,c` discovery.
    pub fn tcp_addrs(&self) -> String {
        self.engines
            .iter()
            .map(|e| e.tcp_addr())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The cluster's directory; every engine process names it in its command line.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long `start` took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        thread::scope(|s| {
            for engine in &self.engines {
                s.spawn(|| engine.stop());
            }
        });
        if thread::panicking() {
            for engine in &self.engines {
                eprintln!(
                    "--- {} ({}), last lines of {} ---\n{}",
                    engine.name,
                    engine.tcp_addr(),
                    engine.log_path().display(),
                    engine.log_tail(LOG_TAIL)
                );
            }
        }
        if std::env::var_os("SHOAL_IT_KEEP").is_some_and(|v| v == "1") {
            self.keep_logs();
        }
        sweep::clean_dir(&self.dir, &self.name);
    }
}

impl RealCluster {
    fn keep_logs(&self) {
        let to = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("test-artifacts/real-cluster")
            .join(&self.name);
        if std::fs::create_dir_all(&to).is_ok() {
            for engine in &self.engines {
                let _ = std::fs::copy(engine.log_path(), to.join(format!("{}.log", engine.name)));
            }
            eprintln!("shoal test harness: engine logs kept in {}", to.display());
        }
    }
}

/// One real `dockerd`.
pub struct RealEngine {
    name: String,
    labels: Vec<String>,
    namespace: String,
    dir: PathBuf,
    containerd: PathBuf,
    extra_args: Vec<String>,
    /// Its network namespace; dropped (removed) after the engine has stopped.
    net: EngineNet,
    /// Length of the log when the current process was spawned.
    log_mark: AtomicU64,
    child: Mutex<Option<Child>>,
    /// Its certificate when it serves `--tlsverify` on TCP.
    tls: Option<CertFiles>,
}

impl RealEngine {
    /// The hostname, which the engine reports as its `Name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// `ADDRESS:2375`, plain HTTP, the engine's own address in its namespace.
    pub fn tcp_addr(&self) -> String {
        let port = if self.tls.is_some() {
            TLS_PORT
        } else {
            ENGINE_PORT
        };
        format!("{}:{port}", self.net.engine_ip())
    }

    /// The engine's network namespace (`ip netns exec NAME ...`).
    pub fn netns(&self) -> String {
        self.net.namespace()
    }

    /// `tcp://ADDRESS:2375`.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.tcp_addr())
    }

    /// Where the harness's own CLI calls go: the TCP address, or the unix socket of an
    /// engine that takes only TLS clients on TCP.
    fn cli_host(&self) -> String {
        if self.tls.is_some() {
            format!("unix://{}", self.unix_socket().display())
        } else {
            self.url()
        }
    }

    /// The engine's certificate, when it serves TLS.
    pub fn tls(&self) -> Option<&CertFiles> {
        self.tls.as_ref()
    }

    /// The engine's unix socket.
    pub fn unix_socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }

    /// The last `lines` lines of the engine's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The pid of the running `dockerd`, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(|c| c.id())
    }

    /// Runs the `docker` CLI against this engine (60 s timeout).
    pub fn docker(&self, args: &[&str]) -> DockerOutput {
        docker_cli_timeout(&self.cli_host(), args, super::DEFAULT_TIMEOUT)
    }

    /// Runs the `docker` CLI against this engine with a chosen timeout.
    pub fn docker_timeout(&self, args: &[&str], timeout: Duration) -> DockerOutput {
        docker_cli_timeout(&self.cli_host(), args, timeout)
    }

    /// SIGSTOP: the engine still accepts connections but answers nothing (a hung engine).
    pub fn freeze(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "STOP");
        }
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "CONT");
        }
    }

    /// SIGKILL, as in a crash: its containers keep running in containerd until the
    /// engine is restarted (which stops them, live-restore being off) or dropped.
    pub fn kill(&self) {
        let taken = self.child.lock().unwrap().take();
        if let Some(mut child) = taken {
            signal(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Stops the engine as `Drop` does: kills its running containers (a `sleep` as
    /// PID 1 ignores SIGTERM, and dockerd would give each 10 s at shutdown), then
    /// SIGTERM, then SIGKILL after 10 s. A no-op when not running.
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().unwrap().take() else {
            return;
        };
        signal(child.id(), "CONT");
        if let Ok(None) = child.try_wait() {
            let short = Duration::from_secs(10);
            let ps = docker_cli_timeout(&self.cli_host(), &["ps", "-q"], short);
            let ids: Vec<&str> = ps.stdout.split_whitespace().collect();
            if ps.success() && !ids.is_empty() {
                let mut args = vec!["kill"];
                args.extend(&ids);
                docker_cli_timeout(&self.cli_host(), &args, short);
            }
        }
        signal(child.id(), "TERM");
        let (_, killed) = wait_timeout(&mut child, STOP_GRACE);
        if killed {
            eprintln!(
                "shoal test harness: {} ignored SIGTERM for {STOP_GRACE:?}; killed",
                self.name
            );
        }
        // A dockerd that died hard leaves its containers' tasks in containerd.
        sweep::clean_namespace(&self.namespace);
    }

    /// Starts the engine again on the same address and data (after `stop` or `kill`), as
    /// after a reboot: containers left running by a `kill` are killed first (through
    /// containerd), so the engine comes back at once with them exited, instead of
    /// giving each its 10 s stop timeout while it loads them.
    pub fn restart(&self) -> Result<(), HarnessError> {
        self.stop();
        sweep::clean_namespace(&self.namespace);
        self.spawn()?;
        self.wait_ready()
    }

    /// First start: waits for `/_ping`, imports busybox.
    fn first_start(&self, busybox_tar: &Path) -> Result<(), HarnessError> {
        self.spawn()?;
        self.wait_ready()?;
        let tar = busybox_tar.to_string_lossy();
        let out = self.docker(&["import", "--change", "CMD [\"sh\"]", &tar, "busybox:latest"]);
        if !out.success() {
            return Err(self.error(format!("importing busybox failed: {out}")));
        }
        Ok(())
    }

    fn spawn(&self) -> Result<(), HarnessError> {
        let io = |what: &str| {
            let what = format!("{what} for engine {}", self.name);
            move |source| HarnessError::Io { what, source }
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(io("open the log"))?;
        let mark = log.metadata().map(|m| m.len()).unwrap_or(0);
        self.log_mark.store(mark, Ordering::Relaxed);
        let _ = writeln!(
            log,
            "=== shoal test harness: starting dockerd on {} ===",
            self.tcp_addr()
        );

        let d = |sub: &str| self.dir.join(sub).display().to_string();
        let driver =
            std::env::var("SHOAL_IT_STORAGE_DRIVER").unwrap_or_else(|_| "fuse-overlayfs".into());
        let mut cmd = Command::new("nsenter");
        // Its own network namespace (only that: its mounts must stay visible to the
        // shared containerd, which `ip netns exec` would hide in a mount namespace).
        cmd.arg(format!("--net={}", self.net.namespace_path().display()))
            .arg("unshare");
        // Own UTS namespace, so the engine's hostname (its `Name`) is the node's name.
        cmd.args([
            "--uts",
            "/bin/sh",
            "-c",
            "hostname \"$0\" && exec \"$@\"",
            &self.name,
        ])
        .arg(dockerd_bin())
        .args(["--config-file", &d("daemon.json")])
        .args(["--data-root", &d("data")])
        .args(["--exec-root", &d("exec")])
        .args(["--pidfile", &d("pid")])
        .args(["-H", &format!("unix://{}", d("sock"))])
        .args(["-H", &self.url()])
        .args(self.tls_args())
        // In the engine's own namespace: `--bridge=none` removes no one else's bridge.
        .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
        .arg(format!("--insecure-registry={}", self.net.subnet()))
        .arg("--containerd")
        .arg(&self.containerd)
        .args(["--containerd-namespace", &self.namespace])
        .args([
            "--containerd-plugins-namespace",
            &format!("{}-p", self.namespace),
        ])
        .args(["--storage-driver", &driver]);
        for label in &self.labels {
            cmd.args(["--label", label]);
        }
        cmd.args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("clone the log"))?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(io("spawn nsenter + unshare + dockerd"))?;
        *self.child.lock().unwrap() = Some(child);
        Ok(())
    }

    /// `--tlsverify` and the engine's files, when it serves TLS.
    fn tls_args(&self) -> Vec<String> {
        match &self.tls {
            None => Vec::new(),
            Some(c) => vec![
                "--tlsverify".into(),
                format!("--tlscacert={}", c.ca.display()),
                format!("--tlscert={}", c.cert.display()),
                format!("--tlskey={}", c.key.display()),
            ],
        }
    }

    fn wait_ready(&self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr: SocketAddr = self.tcp_addr().parse().expect("an IP:port");
        loop {
            match self.child.lock().unwrap().as_mut().map(|c| c.try_wait()) {
                None => return Err(self.error("dockerd is not running".into())),
                Some(Ok(Some(status))) => {
                    return Err(self.error(format!("dockerd exited during start: {status}")))
                }
                Some(_) => {}
            }
            let answered = if self.tls.is_some() {
                // TCP takes only TLS clients: ask the unix socket, then check TCP accepts.
                ping_unix(&self.unix_socket()) && TcpStream::connect(addr).is_ok()
            } else {
                ping(addr)
            };
            if answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(self.error(format!(
                    "no answer to /_ping on {addr} within {READY_TIMEOUT:?}"
                )));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_since_spawn(&self) -> String {
        let text = std::fs::read(self.log_path()).unwrap_or_default();
        let from = (self.log_mark.load(Ordering::Relaxed) as usize).min(text.len());
        String::from_utf8_lossy(&text[from..]).into_owned()
    }

    fn error(&self, reason: String) -> HarnessError {
        HarnessError::Engine {
            engine: self.name.clone(),
            reason,
            log: self.log_path(),
            tail: self.log_tail(LOG_TAIL),
        }
    }
}

/// One `GET /_ping` over plain HTTP; true on `200 OK`.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.") && reply.lines().next().is_some_and(|l| l.contains(" 200 "))
}

/// One `GET /_ping` over a unix socket; true on `200 OK`.
fn ping_unix(path: &Path) -> bool {
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(path) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.lines().next().is_some_and(|l| l.contains(" 200 "))
}

/// Root, `dockerd`, `docker`: without them the test fails and says what is missing.
fn check_prerequisites() -> Result<(), HarnessError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("");
    if euid != "0" {
        return Err(HarnessError::Setup(
            "real-engine tests start dockerd and must run as root".into(),
        ));
    }
    dockerd_bin();
    super::docker_cli::docker_bin();
    Ok(())
}
