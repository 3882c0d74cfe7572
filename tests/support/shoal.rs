//! The real `shoal` binary as a child process, killed when dropped (even when the test
//! panics), serving on a port of 127.0.0.1 that the OS picks.
//!
//! Shoal is started with `-H 127.0.0.1:0` and the test reads the address it got from its
//! start-up log line, so no two Shoals (of this test binary, of another one, of another
//! engineer's run) can be handed the same port: picking a "free" port by binding `:0` and
//! closing it again races with every other process until the daemon binds it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `shoal manage`.
pub struct ShoalDaemon {
    child: Child,
    host: String,
    log: std::path::PathBuf,
    /// Holds the log file's directory for the daemon's life.
    _dir: tempfile::TempDir,
}

/// The message of the line Shoal logs once it serves; its `addr` field is the bound one.
const SERVING: &str = "shoal is serving the Docker API";

/// The `addr` of Shoal's "serving" line in `log` (text or JSON format, colours or not).
pub fn served_addr(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains(SERVING))?;
    let plain = strip_ansi(line);
    let value = if let Some((_, rest)) = plain.split_once("\"addr\":\"") {
        rest.split('"').next()?
    } else {
        let (_, rest) = plain.split_once(" addr=")?;
        rest.split_whitespace().next()?
    };
    Some(value.to_string()).filter(|v| !v.is_empty())
}

/// `line` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl ShoalDaemon {
    /// `shoal manage -H 127.0.0.1:0 ARGS...`; answers once Shoal has said which port it
    /// got and `/_ping` is answered there.
    pub fn start(args: &[&str]) -> ShoalDaemon {
        let dir = tempfile::Builder::new()
            .prefix("shoal-test-")
            .tempdir()
            .expect("a temp dir for the log");
        let log = dir.path().join("shoal.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(["manage", "-H", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("shoal starts");
        let mut d = ShoalDaemon {
            child,
            host: String::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(addr) = served_addr(&std::fs::read_to_string(&d.log).unwrap_or_default()) {
                d.host = addr;
                break;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("shoal exited ({status}) before serving: {}", d.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "shoal never said where it listens: {}",
                d.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        while std::net::TcpStream::connect(&d.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "shoal never listened on {}: {}",
                d.host,
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

    /// Everything Shoal logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
