//! Issue 15 with the clients that showed it, through Shoal in front of three real
//! engines: docker-py (Debian's `python3-docker`, `tests/py/compat_sdk.py`) for swarm
//! routes, load, import, inspect of a name no node has, a volume's create answer and
//! `/info`; and a two-stage build with a cache that sits on one node only, through the
//! docker CLI and docker-py: the build must go to that node to use the cache, and the
//! image must run right after the build answers; and a build whose base image only one
//! node has.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::process::Command;
use std::time::Duration;
use support::{docker_cli, docker_cli_timeout, wait_until, RealCluster, ShoalDaemon};

const DOCKERFILE: &str = "FROM busybox AS build
RUN echo built > /out
FROM busybox
COPY --from=build /out /out
CMD [\"cat\", \"/out\"]
";

/// Runs `tests/py/compat_sdk.py <what>` against Shoal and the engines.
fn sdk(what: &str, shoal: &ShoalDaemon, cluster: &RealCluster) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/compat_sdk.py");
    let mut cmd = Command::new("timeout");
    cmd.args(["90", "python3", script, what])
        .arg(format!("tcp://{}", shoal.host()));
    for e in cluster.engines() {
        cmd.arg(format!("tcp://{}", e.tcp_addr()));
    }
    let o = cmd.output().expect("python3 runs (install python3-docker)");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "docker-py {what} failed:\n{out}\n{err}");
    assert!(out.contains("docker-py ok"), "{out}");
}

#[test]
fn docker_py_reads_shoal_as_one_engine() {
    let cluster = RealCluster::new()
        .engines(3)
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    sdk("routes", &shoal, &cluster);
}

#[test]
fn build_goes_where_its_cache_is_and_runs_at_once() {
    let cluster = RealCluster::new()
        .engines(3)
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let host = shoal.host();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let ctx = dir.path().to_str().unwrap();

    // The cache, on node-3 only; two containers there, so a build placed without
    // regard to the cache would go elsewhere.
    let n3 = cluster.engine("node-3");
    n3.docker_timeout(
        &["build", "-q", "-t", "cache:1", ctx],
        Duration::from_secs(60),
    )
    .expect_success();
    for name in ["busy-a", "busy-b"] {
        n3.docker(&["run", "-d", "--name", name, "busybox", "sleep", "300"])
            .expect_success();
    }
    wait_until("shoal lists cache:1", 20, || {
        let o = docker_cli(host, &["images", "-q", "cache:1"]);
        if o.stdout.trim().is_empty() {
            Err(o.to_string())
        } else {
            Ok(())
        }
    });

    // The CLI (classic builder): the cache is used, the image runs right after.
    let o = docker_cli_timeout(
        host,
        &["build", "--cache-from", "cache:1", "-t", "app:2", ctx],
        Duration::from_secs(60),
    )
    .expect_success();
    assert!(
        o.stdout.contains("Using cache"),
        "the cache was not used: {o}"
    );
    let o = docker_cli(host, &["run", "--rm", "app:2"]).expect_success();
    assert_eq!(o.stdout, "built\n", "{o}");
    for e in cluster.engines() {
        let has = e.docker(&["image", "inspect", "app:2"]).success();
        assert_eq!(has, e.name() == "node-3", "app:2 on {}", e.name());
    }

    // A base image only node-3 has (no registry has it): the build must go there.
    n3.docker(&["tag", "busybox", "base:1"]).expect_success();
    wait_until("shoal lists base:1", 20, || {
        let o = docker_cli(host, &["images", "-q", "base:1"]);
        if o.stdout.trim().is_empty() {
            Err(o.to_string())
        } else {
            Ok(())
        }
    });
    let based = tempfile::tempdir().unwrap();
    std::fs::write(based.path().join("a.txt"), "a file before the Dockerfile\n").unwrap();
    std::fs::write(
        based.path().join("Dockerfile"),
        "FROM base:1\nCOPY a.txt /a.txt\nCMD [\"cat\", \"/a.txt\"]\n",
    )
    .unwrap();
    let o = docker_cli_timeout(
        host,
        &["build", "-t", "onbase:1", based.path().to_str().unwrap()],
        Duration::from_secs(60),
    )
    .expect_success();
    assert!(o.stdout.contains("Successfully tagged onbase:1"), "{o}");
    let o = docker_cli(host, &["run", "--rm", "onbase:1"]).expect_success();
    assert_eq!(o.stdout, "a file before the Dockerfile\n", "{o}");

    // docker-py: an untagged build with cache_from, run by its ID right after.
    sdk("build", &shoal, &cluster);
}
