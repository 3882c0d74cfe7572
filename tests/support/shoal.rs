//! The real `shoal` binary as a child process, killed when dropped (even when the test
//! panics), serving on a free port of 127.0.0.1.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `shoal manage`.
pub struct ShoalDaemon {
    child: Child,
    host: String,
    log: std::path::PathBuf,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl ShoalDaemon {
    /// `shoal manage -H 127.0.0.1:<free port> ARGS...`; answers once `/_ping` does.
    pub fn start(args: &[&str]) -> ShoalDaemon {
        let host = format!("127.0.0.1:{}", free_port());
        let log = std::env::temp_dir().join(format!("shoal-test-{}.log", host.replace(':', "-")));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(["manage", "-H", &host])
            .args(args)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("shoal starts");
        let d = ShoalDaemon { child, host, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&d.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "shoal never listened: {}",
                d.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// The process ID, to read its `/proc` entry (open fds, memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:PORT`, as `docker -H` takes it.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ShoalDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("shoal log tail:\n{}", self.log_tail());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits until `docker info` through Shoal at `host` shows `n` healthy nodes.
pub fn wait_healthy(host: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = super::docker_cli(host, &["info"]);
        if o.stdout.matches("└ Status: Healthy").count() == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {n} healthy nodes: {o}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl ShoalDaemon {
    /// `shoal manage` over every engine of `cluster` (a `nodes://` list), refreshing every
    /// second or two so tests see changes fast, with `extra` flags; answers once every
    /// node is healthy.
    pub fn over(cluster: &super::RealCluster, extra: &[&str]) -> ShoalDaemon {
        let discovery = format!("nodes://{}", cluster.tcp_addrs());
        let mut args = vec![
            discovery.as_str(),
            "--engine-refresh-min-interval",
            "1s",
            "--engine-refresh-max-interval",
            "2s",
        ];
        args.extend_from_slice(extra);
        let shoal = ShoalDaemon::start(&args);
        wait_healthy(shoal.host(), cluster.engines().len());
        shoal
    }
}
