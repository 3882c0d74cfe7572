//! Images, networks, volumes and `system df` through Shoal, against three real engines,
//! with the real `docker` CLI, and a local registry (Debian's `docker-registry`) for push
//! and pull. Every change is checked on the engines themselves: where it landed, or that
//! it happened everywhere.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::io::{Read, Write};
use std::time::Duration;
use support::registry::Registry;
use support::{docker_cli, docker_cli_timeout, DockerOutput, RealCluster, ShoalDaemon};

/// One raw HTTP/1.0 request to Shoal: status line and body.
fn raw_http(host: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(host).expect("connect to shoal");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The engines (by name) where `docker <args>` on the engine prints `needle` as a line.
fn engines_listing(cluster: &RealCluster, args: &[&str], needle: &str) -> Vec<String> {
    cluster
        .engines()
        .iter()
        .filter(|e| {
            e.docker(args)
                .expect_success()
                .stdout
                .lines()
                .any(|l| l.trim() == needle)
        })
        .map(|e| e.name().to_string())
        .collect()
}

fn images_on(cluster: &RealCluster, image: &str) -> Vec<String> {
    engines_listing(
        cluster,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
        image,
    )
}

#[test]
fn images_networks_and_volumes_through_shoal() {
    let cluster = RealCluster::new()
        .engine("node-1", &["zone=a"])
        .engine("node-2", &["zone=a"])
        .engine("node-3", &["zone=b"])
        .start()
        .expect("three dockerd engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let docker = |args: &[&str]| -> DockerOutput { docker_cli(shoal.host(), args) };

    // --- networks ---------------------------------------------------------------
    let o = docker(&["network", "create", "net1"]).expect_success();
    let net1_id = o.out().to_string();
    let holders = engines_listing(
        &cluster,
        &["network", "ls", "--format", "{{.Name}}"],
        "net1",
    );
    assert_eq!(holders.len(), 1, "net1 on exactly one engine: {holders:?}");
    let o = docker(&["network", "create", "net1"]);
    assert!(!o.success() && o.stderr.contains("already exists"), "{o}");
    let o = docker(&["network", "ls", "--format", "{{.Name}}"]).expect_success();
    assert_eq!(o.stdout.lines().filter(|l| *l == "net1").count(), 1, "{o}");
    let o = docker(&[
        "network",
        "inspect",
        "--format",
        "{{.Id}} {{.Node.Name}}",
        "net1",
    ])
    .expect_success();
    assert_eq!(o.out(), format!("{net1_id} {}", holders[0]), "{o}");
    let o = docker(&[
        "network",
        "inspect",
        "--format",
        "{{.Name}}",
        &net1_id[..12],
    ]);
    assert_eq!(o.out(), "net1", "{o}");
    let o = docker(&["network", "inspect", "no-such-net"]);
    assert!(
        !o.success() && o.stderr.contains("network no-such-net not found"),
        "{o}"
    );

    // connect / disconnect go to the container's node.
    let net_node = cluster.engine(&holders[0]);
    net_node
        .docker(&["create", "--name", "joiner", "busybox", "true"])
        .expect_success();
    support::wait_until("joiner listed", 10, || {
        let o = docker(&["ps", "-a", "--format", "{{.Names}}"]);
        if o.stdout.lines().any(|l| l.ends_with("/joiner")) {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    docker(&["network", "connect", "net1", "joiner"]).expect_success();
    let o = net_node
        .docker(&[
            "inspect",
            "--format",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            "joiner",
        ])
        .expect_success();
    assert!(o.stdout.contains("net1"), "{o}");
    docker(&["network", "disconnect", "net1", "joiner"]).expect_success();
    let o = net_node
        .docker(&[
            "inspect",
            "--format",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            "joiner",
        ])
        .expect_success();
    assert!(!o.stdout.contains("net1"), "{o}");
    net_node.docker(&["rm", "joiner"]).expect_success();

    docker(&["network", "rm", "net1"]).expect_success();
    let holders = engines_listing(
        &cluster,
        &["network", "ls", "--format", "{{.Name}}"],
        "net1",
    );
    assert!(holders.is_empty(), "{holders:?}");
    let o = docker(&["network", "ls", "--format", "{{.Name}}"]).expect_success();
    assert!(!o.stdout.lines().any(|l| l == "net1"), "{o}");

    // --- volumes ----------------------------------------------------------------
    let o = docker(&["volume", "create", "vol1"]).expect_success();
    assert_eq!(o.out(), "vol1");
    let vol_holders = engines_listing(&cluster, &["volume", "ls", "--format", "{{.Name}}"], "vol1");
    assert_eq!(vol_holders.len(), 1, "{vol_holders:?}");
    // A second create of the same name answers the existing volume, as one engine does.
    docker(&["volume", "create", "vol1"]).expect_success();
    let again = engines_listing(&cluster, &["volume", "ls", "--format", "{{.Name}}"], "vol1");
    assert_eq!(again, vol_holders);
    let o = docker(&["volume", "ls", "--format", "{{.Name}}"]).expect_success();
    assert_eq!(o.stdout.lines().filter(|l| *l == "vol1").count(), 1, "{o}");
    let o = docker(&[
        "volume",
        "inspect",
        "--format",
        "{{.Name}} {{.Driver}}",
        "vol1",
    ])
    .expect_success();
    assert_eq!(o.out(), "vol1 local", "{o}");
    // The CLI decodes volumes into its own type, so the node shows in the API's JSON only.
    let (status, body) = raw_http(shoal.host(), "GET", "/volumes/vol1", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("inspect JSON");
    assert_eq!(v["Node"]["Name"], vol_holders[0].as_str(), "{body}");
    let o = docker(&["volume", "inspect", "no-such-vol"]);
    assert!(!o.success() && o.stderr.contains("no such volume"), "{o}");
    docker(&["volume", "rm", "vol1"]).expect_success();
    assert!(
        engines_listing(&cluster, &["volume", "ls", "--format", "{{.Name}}"], "vol1").is_empty()
    );
    let o = docker(&["volume", "rm", "vol1"]);
    assert!(!o.success() && o.stderr.contains("no such volume"), "{o}");

    // --- images: tag, inspect, history, rmi -------------------------------------
    docker(&["tag", "busybox", "mybb:1"]).expect_success();
    assert_eq!(images_on(&cluster, "mybb:1").len(), 3);
    let o = docker(&["image", "inspect", "--format", "{{.RepoTags}}", "mybb:1"]).expect_success();
    assert!(o.stdout.contains("mybb:1"), "{o}");
    let o = docker(&["history", "mybb:1"]).expect_success();
    assert!(o.stdout.contains("CREATED BY"), "{o}");
    let o = docker(&["rmi", "mybb:1"]).expect_success();
    assert!(o.stdout.contains("Untagged: mybb:1"), "{o}");
    assert!(images_on(&cluster, "mybb:1").is_empty());
    let o = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).expect_success();
    assert!(!o.stdout.contains("mybb:1"), "{o}");
    for args in [
        &["rmi", "no-such-image"][..],
        &["image", "inspect", "no-such-image"],
        &["history", "no-such-image"],
    ] {
        let o = docker(args);
        assert!(
            !o.success() && o.stderr.contains("No such image: no-such-image"),
            "{o}"
        );
    }

    // --- save | load ------------------------------------------------------------
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("saved.tar");
    docker(&["tag", "busybox", "saved:1"]).expect_success();
    let o = docker(&["save", "-o", tar.to_str().unwrap(), "saved:1"]).expect_success();
    let size = std::fs::metadata(&tar).map(|m| m.len());
    assert!(size.as_ref().is_ok_and(|s| *s > 100_000), "{size:?} {o}");
    docker(&["rmi", "saved:1"]).expect_success();
    assert!(images_on(&cluster, "saved:1").is_empty());
    let o = docker(&["load", "-i", tar.to_str().unwrap()]).expect_success();
    assert!(o.stdout.contains("Loaded image: saved:1"), "{o}");
    assert_eq!(
        images_on(&cluster, "saved:1").len(),
        3,
        "loaded on every node"
    );
    docker(&["rmi", "saved:1"]).expect_success();

    // --- commit on the container's node -----------------------------------------
    let n2 = cluster.engine("node-2");
    n2.docker(&["create", "--name", "tocommit", "busybox", "true"])
        .expect_success();
    support::wait_until("tocommit listed", 10, || {
        let o = docker(&["ps", "-a", "--format", "{{.Names}}"]);
        if o.stdout.lines().any(|l| l == "node-2/tocommit") {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    docker(&["commit", "tocommit", "committed:1"]).expect_success();
    assert_eq!(
        images_on(&cluster, "committed:1"),
        vec!["node-2".to_string()]
    );
    docker(&["image", "inspect", "committed:1"]).expect_success();
    n2.docker(&["rm", "tocommit"]).expect_success();

    // --- build on one node --------------------------------------------------------
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo hi > /x\n",
    )
    .unwrap();
    let o = docker_cli_timeout(
        shoal.host(),
        &["build", "-t", "built:1", ctx.path().to_str().unwrap()],
        Duration::from_secs(120),
    )
    .expect_success();
    assert!(o.stdout.contains("Successfully tagged built:1"), "{o}");
    let built_on = images_on(&cluster, "built:1");
    assert_eq!(built_on.len(), 1, "{built_on:?}");
    docker(&["image", "inspect", "built:1"]).expect_success();

    // --- system df, prunes -------------------------------------------------------
    let o = docker(&["system", "df"]).expect_success();
    assert!(
        o.stdout.contains("Images") && o.stdout.contains("Local Volumes"),
        "{o}"
    );
    docker(&["network", "create", "unused"]).expect_success();
    let o = docker(&["network", "prune", "-f"]).expect_success();
    assert!(o.stdout.contains("unused"), "{o}");
    assert!(engines_listing(
        &cluster,
        &["network", "ls", "--format", "{{.Name}}"],
        "unused"
    )
    .is_empty());
    docker(&["volume", "create", "unusedvol"]).expect_success();
    let o = docker(&["volume", "prune", "-f"]).expect_success();
    assert!(o.stdout.contains("Total reclaimed space"), "{o}");
    assert!(engines_listing(
        &cluster,
        &["volume", "ls", "--format", "{{.Name}}"],
        "unusedvol"
    )
    .is_empty());
    docker(&["rmi", "built:1"]).expect_success();
    let o = docker(&["image", "prune", "-f"]).expect_success();
    assert!(o.stdout.contains("Total reclaimed space"), "{o}");

    // --- push from one node, pull on all -----------------------------------------
    let registry = Registry::start(&cluster);
    let remote = format!("{}/busybox", registry.addr);
    let tagged = format!("{remote}:latest");
    docker(&["tag", "busybox", &remote]).expect_success();
    let o = docker_cli_timeout(shoal.host(), &["push", &remote], Duration::from_secs(120))
        .expect_success();
    assert!(o.stdout.contains("digest: sha256:"), "{o}");
    docker(&["rmi", &remote]).expect_success();
    assert!(images_on(&cluster, &tagged).is_empty());
    let o = docker_cli_timeout(shoal.host(), &["pull", &remote], Duration::from_secs(120))
        .expect_success();
    for node in ["node-1", "node-2", "node-3"] {
        assert!(
            o.stdout.contains(&format!("{node}: ")),
            "no progress of {node}: {o}"
        );
    }
    assert_eq!(
        images_on(&cluster, &tagged).len(),
        3,
        "pulled on every node"
    );
    let o = docker(&["pull", &format!("{}/nothing-here", registry.addr)]);
    assert!(!o.success(), "{o}");

    // --- bad input ----------------------------------------------------------------
    for path in ["/networks/create", "/volumes/create"] {
        let (status, body) = raw_http(shoal.host(), "POST", path, "{not json");
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("\"message\""), "{path}: {body}");
    }
    let (status, body) = raw_http(shoal.host(), "GET", "/volumes/nope", "");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body, r#"{"message":"get nope: no such volume"}"#);
    let (status, body) = raw_http(shoal.host(), "GET", "/networks?filters=%7Bx", "");
    assert_eq!(status, 400, "{body}");
}
