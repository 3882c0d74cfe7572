//! The foundation against real engines: three labelled `dockerd` engines, containers made
//! directly on them, then Shoal over them and the real `docker` CLI pointed at Shoal.

mod support;

use support::{docker_cli, DockerOutput, RealCluster, ShoalDaemon};

#[test]
fn the_docker_cli_sees_three_real_engines_as_one() {
    let cluster = RealCluster::three_labelled()
        .start()
        .expect("three dockerd engines start");
    let [n1, n2, n3] = [
        &cluster.engines()[0],
        &cluster.engines()[1],
        &cluster.engines()[2],
    ];
    let web = n1
        .docker(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"])
        .expect_success();
    let web_id = web.out().to_string();
    n2.docker(&["create", "--name", "db", "busybox", "true"])
        .expect_success();
    n3.docker(&[
        "run",
        "-d",
        "--name",
        "cache",
        "-l",
        "tier=cache",
        "busybox",
        "sleep",
        "1000",
    ])
    .expect_success();

    let shoal = ShoalDaemon::over(&cluster, &[]);
    let docker = |args: &[&str]| -> DockerOutput { docker_cli(shoal.host(), args) };

    let o = docker(&["version"]).expect_success();
    assert!(o.stdout.contains("Version:          shoal/"), "{o}");
    assert!(o.stdout.contains("API version:       1.41"), "{o}");
    assert!(o.stderr.is_empty(), "{o}");

    let o = docker(&["info"]).expect_success();
    assert!(o.stderr.is_empty(), "the CLI warned or failed: {o}");
    let addr_of = |node: &str| format!("  {node}: {}", cluster.engine(node).tcp_addr());
    for needle in [
        " Nodes: 3",
        " Containers: 3",
        "  Running: 2",
        &addr_of("node-1"),
        &addr_of("node-2"),
        &addr_of("node-3"),
        "storage=ssd",
        "zone=b",
        "storagedriver=fuse-overlayfs",
        "└ Containers: 1 (1 Running, 0 Paused, 0 Stopped)",
        "└ ServerVersion: 20.10",
    ] {
        assert!(o.stdout.contains(needle), "no {needle:?} in: {o}");
    }

    let o = docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).expect_success();
    let mut rows: Vec<&str> = o.stdout.lines().collect();
    rows.sort_unstable();
    assert_eq!(rows.len(), 3, "{o}");
    assert!(rows[0].starts_with("node-1/web Up"), "{o}");
    assert!(rows[1].starts_with("node-2/db Created"), "{o}");
    assert!(rows[2].starts_with("node-3/cache Up"), "{o}");
    let o = docker(&["ps", "--format", "{{.Names}}"]).expect_success();
    assert_eq!(o.stdout.lines().count(), 2, "{o}");
    let o = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=tier=cache",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(o.out(), "node-3/cache", "{o}");

    let o = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).expect_success();
    assert!(o.stdout.lines().all(|l| l == "busybox:latest"), "{o}");
    assert!(o.stdout.lines().count() >= 1, "{o}");
    assert!(o.stderr.is_empty(), "{o}");

    for reference in ["web", web_id.as_str(), &web_id[..8], "node-1/web"] {
        let o = docker(&[
            "inspect",
            "--format",
            "{{.Id}} {{.Node.Name}} {{.State.Running}}",
            reference,
        ]);
        assert_eq!(o.out(), format!("{web_id} node-1 true"), "{reference}: {o}");
    }
    let o = docker(&["inspect", "nothing-like-this"]);
    assert!(
        !o.success() && o.stderr.contains("No such object: nothing-like-this"),
        "{o}"
    );

    // A change made straight on an engine shows through Shoal by the engine's events,
    // well before the next refresh.
    n2.docker(&["run", "-d", "--name", "late", "busybox", "sleep", "1000"])
        .expect_success();
    support::wait_until("late listed", 5, || {
        let o = docker(&["ps", "--format", "{{.Names}}"]);
        if o.stdout.lines().any(|l| l == "node-2/late") {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });

    // One engine dying is that node's problem only.
    n3.kill();
    support::wait_until("node-3 unhealthy", 20, || {
        let o = docker(&["info"]);
        let healthy = o.stdout.matches("└ Status: Healthy").count();
        let unhealthy = o.stdout.matches("└ Status: Unhealthy").count();
        if (healthy, unhealthy) == (2, 1) {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    let o = docker(&["inspect", "--format", "{{.Node.Name}}", "web"]);
    assert_eq!(o.out(), "node-1", "{o}");
}
