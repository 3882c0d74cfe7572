//! Shared fixtures for Shoal's integration tests; each test file includes it with
//! `mod support;`.
//!
//! - [`RealCluster`]: a builder that starts real `dockerd` engines (one per node, each
//!   with its own hostname, labels, data-root, containerd namespace, and network
//!   namespace with an address of its own),
//!   loads a `busybox:latest` image into each, and stops and removes all of it on drop,
//!   even when the test panics.
//! - [`ShoalDaemon`]: the real `shoal` binary on a port the OS picks, killed on drop.
//! - [`docker_cli`]: runs the real `docker` CLI against any host (an engine or Shoal)
//!   with a timeout.
//!
//! Real engines need root, `dockerd`, `docker`, a running containerd (the machine's
//! Docker daemon provides one) and `busybox` (static). When one is missing the test
//! fails with a message saying what to install; `.ci/run` installs them.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of the support module"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "the fixtures of plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

pub mod authz;
mod busybox;
mod docker_cli;
mod docker_tls;
pub mod etcd;
pub mod http;
pub mod join;
mod netns;
pub mod pki;
mod proc;
mod real_cluster;
pub mod registry;
mod shoal;
mod sweep;
pub mod ws_attach;

pub use docker_cli::{
    docker_cli, docker_cli_stdin, docker_cli_timeout, find_program, DockerOutput, DEFAULT_TIMEOUT,
};
pub use docker_tls::DockerTls;
pub use real_cluster::{HarnessError, RealCluster, RealClusterBuilder, RealEngine};
pub use shoal::{served_addr, wait_healthy, ShoalDaemon};

/// Checks `check` every 100 ms until it holds; panics with `what` and the last reason after
/// `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if std::time::Instant::now() > deadline => {
                panic!("timed out waiting for {what}: {last}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}
