//! Placement against real engines with the real `docker` CLI: constraints on engine labels
//! and on `node==`, affinity to a container, host-port conflicts, CPU reservations,
//! node-local networks and volumes, binpack and spread.

mod support;

use support::{docker_cli, DockerOutput, RealCluster, ShoalDaemon};

fn node_of(shoal: &ShoalDaemon, reference: &str) -> String {
    docker_cli(
        shoal.host(),
        &["inspect", "--format", "{{.Node.Name}}", reference],
    )
    .expect_success()
    .out()
    .to_string()
}

fn created(o: DockerOutput) -> String {
    o.expect_success().out().to_string()
}

#[test]
fn placement_by_the_docker_cli_on_labelled_engines() {
    let cluster = RealCluster::three_labelled()
        .start()
        .expect("three dockerd engines start");
    let n3 = cluster.engine("node-3");
    n3.docker(&["network", "create", "backend"])
        .expect_success();
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let docker = |args: &[&str]| docker_cli(shoal.host(), args);

    // Spread: three plain containers, one a node.
    let mut spread: Vec<String> = (0..3)
        .map(|_| created(docker(&["create", "busybox", "sleep", "1000"])))
        .map(|id| node_of(&shoal, &id))
        .collect();
    spread.sort();
    assert_eq!(spread, ["node-1", "node-2", "node-3"]);

    // Constraints on an engine label, on the node name, negated, soft.
    let id = created(docker(&[
        "create",
        "-e",
        "constraint:storage==ssd",
        "busybox",
        "true",
    ]));
    assert_eq!(node_of(&shoal, &id), "node-1");
    let id = created(docker(&[
        "create",
        "--name",
        "web",
        "-e",
        "constraint:node==node-2",
        "busybox",
        "true",
    ]));
    assert_eq!(node_of(&shoal, &id), "node-2");
    let id = created(docker(&[
        "create",
        "-e",
        "constraint:zone!=a",
        "busybox",
        "true",
    ]));
    assert_eq!(node_of(&shoal, &id), "node-3");
    let id = created(docker(&[
        "create",
        "-e",
        "constraint:storage==~tape",
        "busybox",
        "true",
    ]));
    assert!(node_of(&shoal, &id).starts_with("node-"));
    let env = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Env}} {{index .Config.Labels \"com.docker.swarm.constraints\"}}",
        &id,
    ]);
    assert!(
        !env.out().contains("constraint:"),
        "placement env reached the engine: {env}"
    );
    assert!(env.out().contains("storage==~tape"), "{env}");

    // Affinity to a container, both ways.
    let id = created(docker(&[
        "create",
        "-e",
        "affinity:container==web",
        "busybox",
        "true",
    ]));
    assert_eq!(node_of(&shoal, &id), "node-2");
    let id = created(docker(&[
        "create",
        "--name",
        "db",
        "-e",
        "affinity:container!=web",
        "busybox",
        "true",
    ]));
    assert_ne!(node_of(&shoal, &id), "node-2");

    // No node fits: a 4xx listing the conditions; a malformed expression names itself.
    let o = docker(&[
        "create",
        "-e",
        "constraint:storage==tape",
        "busybox",
        "true",
    ]);
    assert!(!o.success());
    assert!(
        o.stderr
            .contains("Unable to find a node that satisfies the following conditions"),
        "{o}"
    );
    assert!(o.stderr.contains("storage==tape"), "{o}");
    let o = docker(&["create", "-e", "constraint:==x", "busybox", "true"]);
    assert!(!o.success() && o.stderr.contains("==x"), "{o}");
    let o = docker(&["create", "--name", "web", "busybox", "true"]);
    assert!(
        !o.success() && o.stderr.contains("is already in use"),
        "{o}"
    );

    // A host port: one a node, then refused, with classic Swarm's words.
    let mut port_nodes: Vec<String> = (0..3)
        .map(|_| created(docker(&["create", "-p", "8080:80", "busybox", "true"])))
        .map(|id| node_of(&shoal, &id))
        .collect();
    port_nodes.sort();
    assert_eq!(port_nodes, ["node-1", "node-2", "node-3"]);
    let o = docker(&["create", "-p", "8080:80", "busybox", "true"]);
    assert!(!o.success() && o.stderr.contains("port 8080"), "{o}");

    // CPU reservations (each engine has this machine's CPUs); cpu-shares pass unchanged.
    let ncpu = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .to_string();
    let mut cpu_nodes: Vec<String> = (0..3)
        .map(|_| {
            created(docker(&[
                "create", "--cpus", &ncpu, "-c", "512", "busybox", "true",
            ]))
        })
        .map(|id| node_of(&shoal, &id))
        .collect();
    cpu_nodes.sort();
    assert_eq!(cpu_nodes, ["node-1", "node-2", "node-3"]);
    let o = docker(&["create", "--cpus", &ncpu, "busybox", "true"]);
    assert!(
        !o.success()
            && o.stderr
                .contains("no resources available to schedule container"),
        "{o}"
    );
    let o = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.CpuShares}}",
        &created(docker(&["create", "-c", "512", "busybox", "true"])),
    ]);
    assert_eq!(o.out(), "512");
    let o = docker(&["info"]).expect_success();
    assert!(
        o.stdout
            .contains(&format!("└ Reserved CPUs: {ncpu} / {ncpu}")),
        "{o}"
    );
    assert!(o.stdout.contains("Strategy: spread"), "{o}");

    // A network that exists on one node pulls the container there; a volume that exists
    // nowhere is made on the node the container lands on.
    let id = created(docker(&[
        "create",
        "--network",
        "backend",
        "busybox",
        "true",
    ]));
    assert_eq!(node_of(&shoal, &id), "node-3");
    let id = created(docker(&[
        "create",
        "-v",
        "fresh-vol:/data",
        "busybox",
        "true",
    ]));
    let home = node_of(&shoal, &id);
    let vols = cluster
        .engine(&home)
        .docker(&["volume", "ls", "-q"])
        .expect_success();
    assert!(vols.stdout.lines().any(|v| v == "fresh-vol"), "{vols}");
}

#[test]
fn binpack_fills_one_node_first() {
    let cluster = RealCluster::new()
        .engines(3)
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &["--strategy", "binpack"]);
    let nodes: Vec<String> = (0..4)
        .map(|_| {
            created(docker_cli(
                shoal.host(),
                &["create", "-m", "64m", "busybox", "true"],
            ))
        })
        .map(|id| node_of(&shoal, &id))
        .collect();
    assert!(nodes.iter().all(|n| *n == nodes[0]), "{nodes:?}");
    let o = docker_cli(shoal.host(), &["info"]).expect_success();
    assert!(o.stdout.contains("Strategy: binpack"), "{o}");
}
