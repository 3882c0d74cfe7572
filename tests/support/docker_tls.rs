//! The real `docker` CLI with TLS, set up the way users do it: `DOCKER_HOST`,
//! `DOCKER_TLS_VERIFY=1` and `DOCKER_CERT_PATH` (a directory with `ca.pem`, `cert.pem`,
//! `key.pem`), optionally with text on its stdin.

use super::docker_cli::{docker_bin, output_of, DockerOutput, DEFAULT_TIMEOUT};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

/// The docker CLI pointed at one TLS endpoint with one client's certificates.
#[derive(Debug, Clone)]
pub struct DockerTls {
    /// `tcp://host:port`.
    pub host: String,
    pub cert_path: PathBuf,
    /// An empty CLI config directory (no contexts, no proxies from the machine's).
    config: PathBuf,
}

impl DockerTls {
    pub fn new(host: &str, cert_path: &Path) -> DockerTls {
        let config = cert_path.join("cli-config");
        std::fs::create_dir_all(&config).expect("a CLI config dir");
        DockerTls {
            host: if host.contains("://") {
                host.to_string()
            } else {
                format!("tcp://{host}")
            },
            cert_path: cert_path.to_path_buf(),
            config,
        }
    }

    /// `docker ARGS` with the default timeout.
    pub fn run(&self, args: &[&str]) -> DockerOutput {
        self.run_with(args, None, DEFAULT_TIMEOUT)
    }

    /// `docker ARGS` with `input` written to its stdin, then stdin closed.
    pub fn with_stdin(&self, args: &[&str], input: &[u8]) -> DockerOutput {
        self.run_with(args, Some(input), DEFAULT_TIMEOUT)
    }

    pub fn run_with(&self, args: &[&str], input: Option<&[u8]>, timeout: Duration) -> DockerOutput {
        let mut cmd = Command::new(docker_bin());
        cmd.args(args);
        for var in ["DOCKER_CONTEXT", "DOCKER_API_VERSION"] {
            cmd.env_remove(var);
        }
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &self.cert_path)
            .env("DOCKER_CONFIG", &self.config)
            .env("DOCKER_CLI_HINTS", "false")
            // The classic builder: `build` streams its context through `POST /build`.
            .env("DOCKER_BUILDKIT", "0")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("docker runs");
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            let input = input.to_vec();
            thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        output_of(
            child,
            format!("{} (TLS, {})", self.host, self.cert_path.display()),
            args,
            timeout,
        )
    }
}
