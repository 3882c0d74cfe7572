//! A real etcd (Debian's `etcd-server`, `/usr/bin/etcd`) for tests: one member, or a
//! cluster of several, in a network namespace of its own ([`EngineNet`], as the
//! harness engines), so it listens on fixed ports (2379, 2381, ... for clients) at an
//! address nobody else has and no "free" port is ever picked. Its data lives in
//! `/tmp/shoal-it-etcd-<pid>-<seq>/`, locked by its owner like a cluster directory, so a
//! run killed before `Drop` is cleaned up by the next run's sweep.
//!
//! `EtcdCluster::start(1)` or `EtcdCluster::start(3)`; `endpoints()`, `url(prefix)`;
//! `stop()` and `start_again()` (all members, same data: "etcd down for a while");
//! `freeze()` and `thaw()` (SIGSTOP/SIGCONT: etcd hung, connections open);
//! `stop_member(i)` / `start_member(i)`. Dropping it kills every member and removes
//! its files, also when the test panics.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::netns::EngineNet;
use super::pki::{CertFiles, Pki};
use super::proc::{signal, terminate};
use super::sweep::{self, BASE_PREFIX, LOCK_FILE};

/// Where Debian's `etcd-server` puts the binary.
const ETCD: &str = "/usr/bin/etcd";
/// Member `i` serves clients on `CLIENT_PORT + 2 i` and peers on the port after it.
pub const CLIENT_PORT: u16 = 2379;
/// How long a member may take to answer `/health` after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// TLS on the client port: etcd's certificate and the CA clients must show one of.
struct ClientTls {
    server: CertFiles,
    /// A client certificate of the same CA (CN `etcd-client`).
    client: CertFiles,
}

struct Member {
    name: String,
    data: PathBuf,
    log: PathBuf,
    client_port: u16,
    peer_port: u16,
    child: Mutex<Option<Child>>,
}

/// Running etcd members; killed and removed on drop.
pub struct EtcdCluster {
    dir: PathBuf,
    net: EngineNet,
    members: Vec<Member>,
    tls: Option<ClientTls>,
    _lock: File,
}

impl EtcdCluster {
    /// Starts `members` members (1 for most tests) and waits until each answers
    /// `/health`. Panics with the member's log when one does not.
    pub fn start(members: usize) -> EtcdCluster {
        Self::start_with(members, None)
    }

    /// As `start`, with TLS on the client port: a certificate from `pki` for the members'
    /// address, and clients must show one signed by `pki` (`--client-cert-auth`).
    pub fn start_tls(members: usize, pki: &Pki) -> EtcdCluster {
        Self::start_with(members, Some(pki))
    }

    fn start_with(members: usize, pki: Option<&Pki>) -> EtcdCluster {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install Debian's etcd-server (`bash .ci/run` does)"
        );
        sweep::sweep_stale_once();
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(format!(
            "{BASE_PREFIX}etcd-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the etcd directory");
        let lock = File::create(dir.join(LOCK_FILE)).expect("create the owner lock");
        lock.lock().expect("lock the owner lock");
        let net = EngineNet::create().expect("a network namespace for etcd");
        let members = (0..members)
            .map(|i| {
                let client_port = CLIENT_PORT + 2 * i as u16;
                Member {
                    name: format!("m{i}"),
                    data: dir.join(format!("m{i}")),
                    log: dir.join(format!("m{i}.log")),
                    client_port,
                    peer_port: client_port + 1,
                    child: Mutex::new(None),
                }
            })
            .collect();
        let tls = pki.map(|pki| ClientTls {
            server: pki.engine("etcd", &net.engine_ip().to_string()),
            client: pki.client("etcd-client"),
        });
        let cluster = EtcdCluster {
            dir,
            net,
            members,
            tls,
            _lock: lock,
        };
        for i in 0..cluster.members.len() {
            cluster.spawn(i);
        }
        for i in 0..cluster.members.len() {
            cluster.wait_ready(i);
        }
        cluster
    }

    /// The members' address (each listens on a port of its own there).
    pub fn ip(&self) -> Ipv4Addr {
        self.net.engine_ip()
    }

    /// `ip:2379,ip:2381,...`: every member's client address.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}:{}", self.ip(), m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `etcd://<endpoints>/<prefix>`, the discovery URI of this cluster.
    pub fn url(&self, prefix: &str) -> String {
        format!(
            "etcd://{}/{}",
            self.endpoints(),
            prefix.trim_start_matches('/')
        )
    }

    /// Kills every member (SIGKILL, as a crash): clients see connections refused.
    pub fn stop(&self) {
        for i in 0..self.members.len() {
            self.stop_member(i);
        }
    }

    /// Starts every stopped member again on its data and ports; waits for `/health`.
    pub fn start_again(&self) {
        for i in 0..self.members.len() {
            if self.members[i].child.lock().unwrap().is_none() {
                self.spawn(i);
            }
        }
        for i in 0..self.members.len() {
            self.wait_ready(i);
        }
    }

    /// SIGSTOP to every member: connections stay open and nothing answers (a hung host or
    /// a cut network, as clients see it). `Drop` resumes them before stopping them.
    pub fn freeze(&self) {
        self.signal_all("STOP");
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        self.signal_all("CONT");
    }

    fn signal_all(&self, sig: &str) {
        for m in &self.members {
            if let Some(child) = m.child.lock().unwrap().as_ref() {
                signal(child.id(), sig);
            }
        }
    }

    /// Kills member `i`.
    pub fn stop_member(&self, i: usize) {
        if let Some(mut child) = self.members[i].child.lock().unwrap().take() {
            signal(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Starts member `i` again (no wait: with one member of three down, the others
    /// serve; with a majority down nobody does until enough are back).
    pub fn start_member(&self, i: usize) {
        if self.members[i].child.lock().unwrap().is_none() {
            self.spawn(i);
        }
    }

    /// The last `lines` lines of member `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn spawn(&self, i: usize) {
        let ip = self.ip();
        let m = &self.members[i];
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|p| format!("{}=http://{ip}:{}", p.name, p.peer_port))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("etcd log file");
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://{ip}:{}", m.client_port);
        let peer = format!("http://{ip}:{}", m.peer_port);
        let token = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.net.namespace(), ETCD]);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server.cert)
                .arg("--key-file")
                .arg(&tls.server.key)
                .arg("--trusted-ca-file")
                .arg(&tls.server.ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &token])
            // Fast elections: a test's cluster is on one host.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--log-level", "warn", "--logger", "zap"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .expect("start etcd");
        *m.child.lock().unwrap() = Some(child);
    }

    fn wait_ready(&self, i: usize) {
        let m = &self.members[i];
        let host = format!("{}:{}", self.ip(), m.client_port);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.healthy(&host) {
                return;
            }
            let exited = m
                .child
                .lock()
                .unwrap()
                .as_mut()
                .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited || Instant::now() > deadline {
                panic!(
                    "etcd member {} at {host} is not healthy (exited: {exited}); its log:\n{}",
                    m.name,
                    self.log_tail(i, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl EtcdCluster {
    /// `/health` answers true (over TLS with `curl` and the client certificate, as the
    /// test's HTTP client speaks no TLS).
    fn healthy(&self, host: &str) -> bool {
        let Some(tls) = &self.tls else {
            return super::http::get(host, "/health", Duration::from_secs(2))
                .map(|a| a.is_success() && a.text().contains("true"))
                .unwrap_or(false);
        };
        Command::new("curl")
            .args(["-sS", "--max-time", "2", "--cacert"])
            .arg(&tls.client.ca)
            .arg("--cert")
            .arg(&tls.client.cert)
            .arg("--key")
            .arg(&tls.client.key)
            .arg(format!("https://{host}/health"))
            .output()
            .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("true"))
            .unwrap_or(false)
    }

    /// A client certificate etcd accepts (with `start_tls`).
    pub fn client_cert(&self) -> Option<&CertFiles> {
        self.tls.as_ref().map(|t| &t.client)
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        let pids: Vec<u32> = self
            .members
            .iter()
            .filter_map(|m| m.child.lock().ok()?.as_ref().map(Child::id))
            .collect();
        terminate(&pids, Duration::from_secs(5));
        for m in &self.members {
            if let Ok(mut slot) = m.child.lock() {
                if let Some(mut c) = slot.take() {
                    let _ = c.wait();
                }
            }
        }
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sweep::clean_dir(&self.dir, &name);
    }
}
