//! Runs the real `docker` CLI against one host with a timeout, and finds the programs
//! the harness needs (a missing one fails the test, it never skips it).

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How long one `docker` CLI call may take before the harness kills it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What one `docker` CLI call printed and how it ended.
#[derive(Debug)]
pub struct DockerOutput {
    pub host: String,
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The call ran past its timeout and was killed.
    pub timed_out: bool,
}

impl DockerOutput {
    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// `stdout` without the trailing newline.
    pub fn out(&self) -> &str {
        self.stdout.trim_end()
    }

    /// Panics with the command and both streams unless it succeeded.
    #[track_caller]
    pub fn expect_success(self) -> Self {
        if !self.success() {
            panic!("{self}");
        }
        self
    }
}

impl fmt::Display for DockerOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ended = if self.timed_out {
            "timed out and was killed".to_string()
        } else {
            format!("ended with {}", self.status)
        };
        write!(
            f,
            "`docker -H {} {}` {ended}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.host,
            self.args.join(" "),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `docker -H <host> <args>` with [`DEFAULT_TIMEOUT`]. `host` is a Docker host URL
/// (`tcp://..`, `unix://..`), a bare `IP:PORT` (taken as TCP) or a socket path.
pub fn docker_cli(host: &str, args: &[&str]) -> DockerOutput {
    docker_cli_timeout(host, args, DEFAULT_TIMEOUT)
}

/// Same as [`docker_cli`] with a chosen timeout.
pub fn docker_cli_timeout(host: &str, args: &[&str], timeout: Duration) -> DockerOutput {
    run(host, args, None, timeout)
}

/// Same as [`docker_cli`] with `input` on the CLI's stdin, closed at its end (`exec -i`,
/// `run -i`).
pub fn docker_cli_stdin(host: &str, args: &[&str], input: &[u8]) -> DockerOutput {
    run(host, args, Some(input), DEFAULT_TIMEOUT)
}

fn run(host: &str, args: &[&str], input: Option<&[u8]>, timeout: Duration) -> DockerOutput {
    let host = host_url(host);
    let mut cmd = Command::new(docker_bin());
    cmd.arg("-H").arg(&host).args(args);
    // The CLI must talk to `host` and nothing else: no context or TLS settings from the
    // caller's environment, and no ~/.docker/config.json (its proxies would be injected
    // into every container's environment).
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_API_VERSION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DOCKER_CONFIG", cli_config_dir())
        .env("DOCKER_CLI_HINTS", "false")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", docker_bin().display()));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // On a thread of its own: a CLI that stops reading must not block the harness
        // past its timeout. Dropping the pipe at the end closes the CLI's stdin.
        let input = input.to_vec();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    output_of(child, host, args, timeout)
}

/// Waits for a spawned `docker` (its stdout and stderr piped) until it ends or `timeout`
/// passes (then it is killed), and answers what it printed. Both pipes are read on their
/// own threads so a chatty command cannot fill one and block.
pub(crate) fn output_of(
    mut child: std::process::Child,
    host: String,
    args: &[&str],
    timeout: Duration,
) -> DockerOutput {
    let read = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped stdout")));
    let err = read(Box::new(child.stderr.take().expect("piped stderr")));
    let (status, timed_out) = wait_timeout(&mut child, timeout);
    DockerOutput {
        host,
        args: args.iter().map(|a| a.to_string()).collect(),
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    }
}

/// Waits for `child`, killing it (SIGKILL) at the deadline. Returns its status and
/// whether it was killed for time.
pub(crate) fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> (ExitStatus, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (status, false),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let status = child.wait().expect("wait for a killed child");
                return (status, true);
            }
        }
    }
}

fn host_url(host: &str) -> String {
    if host.contains("://") {
        host.to_string()
    } else if host.starts_with('/') {
        format!("unix://{host}")
    } else {
        format!("tcp://{host}")
    }
}

/// An empty CLI config directory, shared by all test processes (nothing writes to it
/// unless a test runs `docker login`).
fn cli_config_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("shoal-cli-config");
        std::fs::create_dir_all(&dir).expect("create the docker CLI config dir");
        dir
    })
}

/// The `docker` CLI: `$SHOAL_IT_DOCKER`, or `docker` on `PATH`.
pub fn docker_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| find_program("SHOAL_IT_DOCKER", "docker", "docker.io (or docker-ce-cli)"))
}

/// The Docker daemon: `$SHOAL_IT_DOCKERD`, or `dockerd` on `PATH` or in /usr/sbin.
pub fn dockerd_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| find_program("SHOAL_IT_DOCKERD", "dockerd", "docker.io (or docker-ce)"))
}

/// Finds a program the real-engine tests cannot run without, or panics saying how to
/// get it. Such tests fail rather than skip, so a CI machine missing a tool is noticed.
pub fn find_program(env_var: &str, name: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(
            is_executable(&path),
            "{env_var}={} is not an executable file",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .unwrap_or_else(|| {
            panic!(
                "real-engine tests need `{name}`, which is not on PATH: install the package \
                 {package} (`bash .ci/run` does), or point {env_var} at it"
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
