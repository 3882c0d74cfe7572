//! Mutual TLS on both legs against real engines: three `dockerd --tlsverify` on TCP, Shoal
//! with `--tlsverify` in front of them, the real docker CLI with `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH` (certificates made with the openssl CLI, as the README says).
//! `run --rm`, `run -i` (a hijack with stdin), `exec -i`, WebSocket attach, `logs -f`,
//! `events`, `build`, `push` and `pull` with a local registry; a client without a certificate, or with one of another CA, fails at
//! the handshake and no engine sees its request; credentials never reach Shoal's log, even at `trace`. And the
//! safe default: a non-loopback `-H` without `--tlsverify` is refused, `--insecure-listen`
//! serves with a warning in `docker info`.
#![allow(
    clippy::disallowed_methods,
    reason = "test set-up and plain #[test]s block only the test's own thread; Shoal and the engines under test are served apart"
)]

mod support;

use shoal_actors::engine::tls::{EngineTls, EngineTlsFiles};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::pki::Pki;
use support::registry::Registry;
use support::{DockerTls, HarnessError, RealCluster, ShoalDaemon};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Waits until `docker info` through Shoal shows `n` healthy nodes.
fn wait_healthy(cli: &DockerTls, n: usize) {
    support::wait_until("healthy nodes over TLS", 60, || {
        let o = cli.run(&["info"]);
        let healthy = o.stdout.matches("Status: Healthy").count();
        if o.success() && healthy == n {
            Ok(())
        } else {
            Err(format!("{healthy} healthy: {o}"))
        }
    });
}

/// How many lines of the engines' (debug) logs name `needle`: dockerd with `--debug` logs
/// every API call it serves as `Calling METHOD PATH`.
fn engine_calls_naming(cluster: &RealCluster, needle: &str) -> usize {
    cluster
        .engines()
        .iter()
        .map(|e| {
            std::fs::read_to_string(e.log_path())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("Calling") && l.contains(needle))
                .count()
        })
        .sum()
}

#[test]
fn mutual_tls_on_both_legs_with_the_docker_cli() -> Result<(), HarnessError> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = Pki::new(&dir.path().join("pki"), "it");
    let cluster = RealCluster::new()
        .engines(3)
        .tls(&pki)
        .dockerd_arg("--debug")
        .start()?;
    // The engines take TLS clients only: plain HTTP to them is not served.
    for engine in cluster.engines() {
        let o =
            support::docker_cli_timeout(&engine.tcp_addr(), &["version"], Duration::from_secs(10));
        assert!(!o.success(), "{} serves plain HTTP: {o}", engine.name());
    }
    let shoal_cert = pki.shoal(&["IP:127.0.0.1"]);
    let files = |c: &std::path::Path| c.display().to_string();
    let (ca, cert, key) = (
        files(&shoal_cert.ca),
        files(&shoal_cert.cert),
        files(&shoal_cert.key),
    );
    let discovery = format!("nodes://{}", cluster.tcp_addrs());
    let shoal = ShoalDaemon::start(&[
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--log-level",
        "trace",
        "--engine-refresh-min-interval",
        "1s",
        "--engine-refresh-max-interval",
        "2s",
        &discovery,
    ]);
    let alice = pki.client("alice");
    let cli = DockerTls::new(shoal.host(), &alice.docker_cert_path());
    wait_healthy(&cli, 3);
    let since = now();

    // run --rm: create, attach (a hijack relayed over TLS on both legs), start, wait, rm.
    let o = cli.run(&["run", "--rm", "busybox", "echo", "hello over tls"]);
    assert!(o.success() && o.out() == "hello over tls", "{o}");

    // run -i: stdin through the hijack, half-closed at its end.
    let o = cli.with_stdin(&["run", "-i", "--rm", "busybox", "cat"], b"up the pipe\n");
    assert!(o.success() && o.out() == "up the pipe", "{o}");

    // exec -i into a running container.
    cli.run(&["run", "-d", "--name", "tls-web", "busybox", "sleep", "600"])
        .expect_success();
    let o = cli.with_stdin(
        &["exec", "-i", "tls-web", "sh", "-c", "cat; echo ."],
        b"via exec\n",
    );
    assert!(o.success() && o.out() == "via exec\n.", "{o}");

    // WebSocket attach: wss to Shoal with the client's certificate, TLS on to the engine.
    cli.run(&["run", "-d", "-i", "--name", "tls-ws", "busybox", "cat"])
        .expect_success();
    let url = format!(
        "wss://{}/v1.41/containers/tls-ws/attach/ws?stream=1&stdin=1&stdout=1",
        shoal.host()
    );
    let tls = EngineTls::load(&EngineTlsFiles {
        ca: alice.ca.clone(),
        cert_key: Some((alice.cert.clone(), alice.key.clone())),
    })
    .expect("the client's files");
    let client = || {
        awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(tls.client_config()))
            .finish()
    };
    let echoed = support::ws_attach::echo_line(client, &url, "hello over wss\n");
    assert_eq!(echoed, "hello over wss\n");

    // logs -f: a stream that ends when the container does.
    cli.run(&[
        "run",
        "-d",
        "--name",
        "tls-logs",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line-$i; sleep 0.5; done",
    ])
    .expect_success();
    let o = cli.run(&["logs", "-f", "tls-logs"]);
    assert!(o.success() && o.out() == "line-1\nline-2\nline-3", "{o}");

    // events, bounded.
    let until = (now() + 1).to_string();
    let o = cli.run(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert!(o.success(), "{o}");
    for seen in ["start tls-web", "die tls-logs"] {
        assert!(o.stdout.lines().any(|l| l.ends_with(seen)), "{seen}: {o}");
    }

    // build: the context streamed up, the progress streamed down.
    let context = dir.path().join("context");
    std::fs::create_dir_all(&context).expect("context dir");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox\nCOPY greeting /greeting\nCMD [\"cat\", \"/greeting\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(context.join("greeting"), "built over tls\n").expect("greeting");
    let o = cli.run_with(
        &["build", "-t", "tls-built:1", &context.display().to_string()],
        None,
        Duration::from_secs(120),
    );
    assert!(
        o.success() && o.stdout.contains("Successfully tagged tls-built:1"),
        "{o}"
    );
    let o = cli.run(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(o.stdout.contains("tls-built:1"), "{o}");

    // push from a node, pull on every node: registry traffic through TLS on both legs.
    let registry = Registry::start(&cluster);
    let remote = format!("{}/tlsbox", registry.addr);
    cli.run(&["tag", "busybox", &remote]).expect_success();
    let o = cli.run_with(&["push", &remote], None, Duration::from_secs(120));
    assert!(o.success() && o.stdout.contains("digest: sha256:"), "{o}");
    cli.run(&["rmi", &remote]).expect_success();
    let o = cli.run_with(&["pull", &remote], None, Duration::from_secs(120));
    assert!(o.success(), "{o}");
    for engine in cluster.engines() {
        assert!(
            o.stdout.contains(&format!("{}: ", engine.name())),
            "no progress of {}: {o}",
            engine.name()
        );
    }
    drop(registry);

    // Strangers: no certificate (curl), or one of another CA (the docker CLI). The
    // handshake fails, and no engine is asked for the container they name.
    let url = format!("https://{}/containers/create?name=intruder-a", shoal.host());
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", &ca, "-X", "POST"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-d",
            "{\"Image\":\"busybox\"}",
        ])
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("curl runs");
    assert!(
        !curl.status.success(),
        "served without a certificate: {}",
        String::from_utf8_lossy(&curl.stdout)
    );
    let other = Pki::new(&dir.path().join("other"), "other");
    let mallory = other.client("mallory");
    // Mallory trusts Shoal's CA (so the failure is hers, not her view of Shoal).
    let mallory_path = mallory.docker_cert_path();
    std::fs::copy(&shoal_cert.ca, mallory_path.join("ca.pem")).expect("copy the CA");
    let stranger = DockerTls::new(shoal.host(), &mallory_path);
    let o = stranger.run(&["run", "--name", "intruder-b", "busybox", "true"]);
    assert!(!o.success(), "served another CA's client: {o}");
    // The same call with a good certificate is seen by an engine, so the check can fail.
    let o = cli.run(&["create", "--name", "welcome-c", "busybox", "true"]);
    assert!(o.success(), "{o}");
    support::wait_until("the engines' debug logs", 10, || match engine_calls_naming(
        &cluster,
        "name=welcome-c",
    ) {
        0 => Err("no engine logged the create".into()),
        _ => Ok(()),
    });
    for name in ["intruder-a", "intruder-b"] {
        assert_eq!(
            engine_calls_naming(&cluster, name),
            0,
            "{name} reached an engine"
        );
    }

    // Credentials never reach the log, even at trace.
    let secrets = [
        "c2VjcmV0LWF1dGgtMTI=",
        "Bearer sekrit-bearer",
        "sekrit-config",
    ];
    let auth = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert", &ca])
        .args(["--cert", &files(&alice.cert), "--key", &files(&alice.key)])
        .args([
            "-X",
            "POST",
            "-H",
            &format!("X-Registry-Auth: {}", secrets[0]),
        ])
        .args(["-H", &format!("Authorization: {}", secrets[1])])
        .args(["-H", &format!("X-Registry-Config: {}", secrets[2])])
        .arg(format!(
            "https://{}/images/create?fromImage=busybox&tag=latest",
            shoal.host()
        ))
        .output()
        .expect("curl runs");
    assert!(auth.status.success(), "{auth:?}");
    let log = shoal.log();
    for s in secrets {
        assert!(!log.contains(s), "{s} is in Shoal's log");
    }
    for pem in [&shoal_cert.key, &alice.key] {
        let text = std::fs::read_to_string(pem).expect("a key file");
        let body = text.lines().nth(1).unwrap_or("");
        assert!(
            !body.is_empty() && !log.contains(body),
            "a key is in Shoal's log"
        );
    }

    cli.run(&["rm", "-f", "tls-web", "tls-ws", "tls-logs", "welcome-c"]);
    Ok(())
}

/// `shoal manage ARGS` on 0.0.0.0 over one simulated engine: answers its exit status and
/// stderr if it exits within `wait`, else kills it and answers `None` with what it logged.
fn manage_public(args: &[&str], wait: Duration) -> (Option<std::process::ExitStatus>, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let log = dir.path().join("shoal.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["manage", "--sim", "1"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("shoal starts");
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return (
                Some(status),
                std::fs::read_to_string(&log).unwrap_or_default(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    (None, std::fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn a_public_address_needs_tlsverify_or_insecure_listen() {
    let (status, err) = manage_public(&["-H", "0.0.0.0:0"], Duration::from_secs(20));
    let status = status.expect("shoal refused to start");
    assert!(!status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("shoal: refusing"))
        .unwrap_or_else(|| panic!("no refusal line: {err}"));
    assert!(
        line.contains("--tlsverify") && line.contains("--insecure-listen"),
        "{line}"
    );

    // Taken on purpose: served, with a warning at start and in `docker info`.
    let dir = tempfile::tempdir().expect("a temp dir");
    let log = dir.path().join("shoal.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args([
            "manage",
            "--sim",
            "1",
            "-H",
            "0.0.0.0:0",
            "--insecure-listen",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("shoal starts");
    let mut host = None;
    support::wait_until("shoal on 0.0.0.0", 20, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        host = support::served_addr(&text);
        host.as_ref().map(|_| ()).ok_or(text)
    });
    let host = host.unwrap_or_default().replace("0.0.0.0", "127.0.0.1");
    let info = support::docker_cli(&host, &["info"]);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(info.success(), "{info}");
    assert!(
        info.stderr.contains("--insecure-listen") || info.stdout.contains("--insecure-listen"),
        "no warning in docker info: {info}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("--insecure-listen")),
        "no warning at start: {text}"
    );
}
