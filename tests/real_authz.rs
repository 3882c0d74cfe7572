//! Per-client authorization against real engines, with the real docker CLI over mutual
//! TLS: Shoal with `--tlsverify --authz-policy` over two TLS engines (`pool=web`,
//! `pool=batch`), clients `team-a` and `team-b` (tenants `a` and `b`), a read-only
//! `auditor`, and a `stranger` the policy does not list (`default = "deny"`).

#![allow(
    clippy::disallowed_methods,
    reason = "test set-up (certificates, the policy file) blocks only the test's own thread; Shoal and the engines under test are served apart"
)]

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::authz::{AuthzPki, POLICY};
use support::{DockerTls, HarnessError, RealCluster, ShoalDaemon};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every container on every engine, asked of the engines themselves.
fn engine_containers(cluster: &RealCluster) -> usize {
    cluster
        .engines()
        .iter()
        .map(|e| {
            e.docker(&["ps", "-aq"])
                .expect_success()
                .stdout
                .lines()
                .count()
        })
        .sum()
}

#[test]
fn tenants_read_only_clients_and_create_rules_with_the_docker_cli() -> Result<(), HarnessError> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let certs = AuthzPki::new(&dir.path().join("pki"));
    let cluster = RealCluster::new()
        .engine("web-node", &["pool=web"])
        .engine("batch-node", &["pool=batch"])
        .tls(&certs.pki)
        .start()?;
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).expect("policy written");
    let shoal_cert = &certs.shoal;
    let path = |p: &std::path::Path| p.display().to_string();
    let discovery = format!("nodes://{}", cluster.tcp_addrs());
    let shoal = ShoalDaemon::start(&[
        "--tlsverify",
        "--tlscacert",
        &path(&shoal_cert.ca),
        "--tlscert",
        &path(&shoal_cert.cert),
        "--tlskey",
        &path(&shoal_cert.key),
        "--authz-policy",
        &path(&policy),
        "--engine-refresh-min-interval",
        "1s",
        "--engine-refresh-max-interval",
        "2s",
        &discovery,
    ]);
    let cli = |cn: &str| DockerTls::new(shoal.host(), &certs.client(cn).docker_cert_path());
    let (a, b, auditor, stranger) = (
        cli("team-a"),
        cli("team-b"),
        cli("auditor"),
        cli("stranger"),
    );
    support::wait_until("two healthy nodes for the auditor", 60, || {
        let o = auditor.run(&["info"]);
        let healthy = o.stdout.matches("Status: Healthy").count();
        (o.success() && healthy == 2)
            .then_some(())
            .ok_or(format!("{healthy} healthy: {o}"))
    });
    let since = now().to_string();

    // An unlisted identity under default = "deny".
    let o = stranger.run(&["ps"]);
    assert!(
        !o.success()
            && o.stderr
                .contains("authorization denied by shoal policy: default"),
        "{o}"
    );

    // Tenant a: its label forced (over the one it wrote), its constraint applied.
    a.run(&[
        "run",
        "-d",
        "--name",
        "web-a",
        "--label",
        "com.shoal.tenant=b",
        "busybox",
        "sleep",
        "600",
    ])
    .expect_success();
    let batch = cluster.engine("batch-node");
    let o = batch.docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"com.shoal.tenant\"}}",
        "web-a",
    ]);
    assert_eq!(
        o.expect_success().out(),
        "a",
        "on the pool=batch engine, labelled a"
    );
    let o = a.run(&["exec", "web-a", "echo", "inside"]);
    assert_eq!(o.expect_success().out(), "inside");
    let o = a.run(&["exec", "--privileged", "web-a", "true"]);
    assert!(
        !o.success()
            && o.stderr
                .contains("authorization denied by shoal policy: allow_privileged"),
        "{o}"
    );

    // An exec is its container's tenant's: b cannot inspect, start or resize a's.
    execs_are_their_containers_tenants(&certs, shoal.host());

    // Tenant b: a's container does not exist for it.
    let o = b.run(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!o.expect_success().stdout.contains("web-a"));
    // Exactly as a container that does not exist: the same error, name for name.
    for args in [
        &["inspect", "web-a"][..],
        &["container", "inspect", "web-a"],
        &["exec", "web-a", "true"],
        &["stop", "web-a"],
        &["rm", "-f", "web-a"],
        &["logs", "web-a"],
        &["attach", "web-a"],
    ] {
        let o = b.run(args);
        let missing: Vec<&str> = args
            .iter()
            .map(|a| if *a == "web-a" { "no-such-one" } else { a })
            .collect();
        let m = b.run(&missing);
        // (`rm -f` of a missing container succeeds: the same here.)
        assert_eq!(o.success(), m.success(), "{args:?}: {o}");
        assert!(
            o.stderr.contains("No such") && o.stderr.contains("web-a"),
            "{o}"
        );
        assert_eq!(
            o.stderr.replace("web-a", "no-such-one"),
            m.stderr,
            "{args:?}"
        );
    }
    let o = a.run(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(
        o.expect_success().out(),
        "batch-node/web-a running",
        "untouched by b"
    );
    // The engines' events reach Shoal's hub a moment after the calls that caused them:
    // ask again (with a later `--until`) until a's own show, then ask b for the same span.
    let waited = Instant::now();
    let until = loop {
        let until = (now() + 1).to_string();
        let seen = a
            .run(&["events", "--since", &since, "--until", &until])
            .expect_success()
            .stdout;
        if seen.contains("web-a") {
            break until;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(15),
            "a sees its own events: {seen}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let o = b.run(&["events", "--since", &since, "--until", &until]);
    assert!(!o.expect_success().stdout.contains("web-a"));

    // A tenant's prune removes its own stopped containers only.
    a.run(&["create", "--name", "stopped-a", "busybox", "true"])
        .expect_success();
    b.run(&["create", "--name", "stopped-b", "busybox", "true"])
        .expect_success();
    b.run(&["container", "prune", "-f"]).expect_success();
    let o = a.run(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        o.expect_success().stdout.contains("stopped-a"),
        "b pruned a's"
    );
    let o = b.run(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !o.expect_success().stdout.contains("stopped-b"),
        "b's own is pruned"
    );
    a.run(&["rm", "stopped-a"]).expect_success();

    // The auditor reads, and changes nothing.
    let o = auditor.run(&["ps", "--format", "{{.Names}}"]);
    assert!(o.expect_success().stdout.contains("web-a"));
    let before = engine_containers(&cluster);
    for args in [
        &["create", "busybox"][..],
        &["start", "web-a"],
        &["rm", "-f", "web-a"],
        &["exec", "web-a", "true"],
    ] {
        let o = auditor.run(args);
        assert!(
            !o.success()
                && o.stderr
                    .contains("authorization denied by shoal policy: read_only"),
            "{args:?}: {o}"
        );
    }

    // Create rules: 403, and nothing created on any engine.
    for (flags, rule) in [
        (&["--privileged"][..], "allow_privileged"),
        (&["-v", "/:/host"], "allow_host_mounts"),
        (&["--net=host"], "allow_host_namespaces"),
        (&["--pid=host"], "allow_host_namespaces"),
        (&["--cap-add", "SYS_ADMIN"], "allow_capabilities"),
    ] {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let o = a.run(&args);
        assert!(
            !o.success()
                && o.stderr
                    .contains(&format!("authorization denied by shoal policy: {rule}")),
            "{flags:?}: {o}"
        );
    }
    assert_eq!(engine_containers(&cluster), before);

    // Networks: labelled on create, hidden from the other tenant.
    a.run(&["network", "create", "net-a"]).expect_success();
    let o = b.run(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!o.expect_success().stdout.contains("net-a"));
    assert!(!b.run(&["network", "inspect", "net-a"]).success());
    let o = a.run(&[
        "network",
        "inspect",
        "-f",
        "{{index .Labels \"com.shoal.tenant\"}}",
        "net-a",
    ]);
    assert_eq!(o.expect_success().out(), "a");

    // A reload on SIGHUP: the auditor may now stop containers, from its next request.
    std::fs::write(&policy, POLICY.replace("read_only = true", "")).expect("policy");
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &shoal.pid().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok);
    support::wait_until("the reloaded policy", 10, || {
        let o = auditor.run(&["stop", "-t", "0", "web-a"]);
        o.success().then_some(()).ok_or(o.to_string())
    });
    a.run(&["rm", "-f", "web-a"]).expect_success();
    a.run(&["network", "rm", "net-a"]).expect_success();
    Ok(())
}

/// Over the API (the CLI never shows an exec ID): a's exec in `web-a` is a 404 to b for
/// inspect, detached and hijacked start, and resize, in the words of a missing exec; a
/// inspects it; b's exec create in a's container is a 404 too.
fn execs_are_their_containers_tenants(certs: &AuthzPki, host: &str) {
    use serde_json::{json, Value};
    let client = |cn: &str| {
        let files = certs.client(cn);
        let tls = shoal_actors::engine::tls::EngineTls::load(
            &shoal_actors::engine::tls::EngineTlsFiles {
                ca: files.ca.clone(),
                cert_key: Some((files.cert.clone(), files.key.clone())),
            },
        )
        .expect("client TLS");
        awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(tls.client_config()))
            .timeout(Duration::from_secs(20))
            .finish()
    };
    let base = format!("https://{host}/v1.41");
    actix_rt::System::new().block_on(async {
        let (a, b) = (client("team-a"), client("team-b"));
        let call =
            |c: &awc::Client, method: &str, path: &str, upgrade: bool, body: Option<Value>| {
                let mut req = c.request(method.parse().expect("method"), format!("{base}{path}"));
                if upgrade {
                    req = req
                        .insert_header(("Connection", "Upgrade"))
                        .insert_header(("Upgrade", "tcp"));
                }
                async move {
                    let mut r = match body {
                        Some(b) => req.send_json(&b).await,
                        None => req.send().await,
                    }
                    .expect("an answer");
                    let bytes = r.body().limit(1 << 20).await.expect("a body");
                    let v = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
                    (r.status().as_u16(), v)
                }
            };
        let (s, created) = call(
            &a,
            "POST",
            "/containers/web-a/exec",
            false,
            Some(json!({"Cmd": ["true"]})),
        )
        .await;
        assert_eq!(s, 201, "{created}");
        let id = created["Id"].as_str().expect("an exec ID").to_string();
        let missing = json!({ "message": format!("No such exec instance: {id}") });
        let start = json!({"Detach": false, "Tty": false});
        for (method, path, upgrade, body) in [
            ("GET", format!("/exec/{id}/json"), false, None),
            (
                "POST",
                format!("/exec/{id}/start"),
                false,
                Some(json!({"Detach": true})),
            ),
            (
                "POST",
                format!("/exec/{id}/start"),
                true,
                Some(start.clone()),
            ),
            ("POST", format!("/exec/{id}/resize?h=10&w=10"), false, None),
        ] {
            let (s, v) = call(&b, method, &path, upgrade, body).await;
            assert_eq!(
                (s, &v),
                (404, &missing),
                "b: {method} {path} upgrade={upgrade}"
            );
        }
        let (s, v) = call(&a, "GET", &format!("/exec/{id}/json"), false, None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["Running"], false, "b's calls never started it: {v}");
        let (s, v) = call(
            &a,
            "POST",
            &format!("/exec/{id}/start"),
            false,
            Some(json!({"Detach": true})),
        )
        .await;
        assert!(s == 200 || s == 204, "a starts its own exec: {s} {v}");
    });
}
