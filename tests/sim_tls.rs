//! TLS to clients, in this process over simulated engines: with `--tlsverify` a client with
//! a certificate of the CA is served (plain routes, streams, creates); a client with none,
//! or with one from another CA, fails at the handshake and nothing reaches an engine.
//! `--tls` alone serves clients without certificates. (The real docker CLI, hijacks and
//! TLS engines: tests/real_tls.rs.)
#![allow(
    clippy::disallowed_methods,
    reason = "test set-up and plain #[test]s block only the test's own thread; Shoal and the engines under test are served apart"
)]

mod sim_fixture;

use shoal::config::{EngineSource, ListenAddr, ManageConfig};
use shoal::discovery::Discovery;
use shoal::server::{self, Listener};
use shoal::telemetry::ObserveConfig;
use shoal::tls::{ApiTlsFiles, ClientAuth, TlsConfig};
use shoal_actors::engine::tls::{EngineTls, EngineTlsFiles};
use shoal_sim::{EngineConfig, FleetOptions, SimFleet};
use sim_fixture::{fast_cluster_config, tcp};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and two certificates it signs: Shoal's (127.0.0.1) and a client's.
fn pki(dir: &Path, name: &str) -> (Certs, Certs) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let write = |n: &str, t: &str| {
        let p = dir.join(format!("{name}-{n}"));
        std::fs::write(&p, t).unwrap();
        p
    };
    let ca_path = write("ca.pem", &ca.pem());
    let leaf = |sans: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        Certs {
            ca: ca_path.clone(),
            cert: write(&format!("{cn}-cert.pem"), &cert.pem()),
            key: write(&format!("{cn}-key.pem"), &key.serialize_pem()),
        }
    };
    (
        leaf(vec!["127.0.0.1".into()], "shoal"),
        leaf(vec![], "client"),
    )
}

/// Shoal with TLS to clients (`auth`) over one simulated engine; answers its port.
async fn start(server: &Certs, auth: ClientAuth) -> (SimFleet, actix_web::dev::ServerHandle, u16) {
    let fleet = SimFleet::start(vec![EngineConfig::new("t1")], FleetOptions::default())
        .await
        .unwrap();
    let (handle, port) = try_start(&fleet, Some((server, auth)), Default::default(), false)
        .await
        .unwrap();
    (fleet, handle, port)
}

/// Shoal over `fleet` on 127.0.0.1, with TLS to clients when `tls` says so, observing as
/// `observe` says; answers its port, or why it would not start.
async fn try_start(
    fleet: &SimFleet,
    tls: Option<(&Certs, ClientAuth)>,
    observe: ObserveConfig,
    insecure_listen: bool,
) -> Result<(actix_web::dev::ServerHandle, u16), server::StartError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let files = tls.map(|(server, auth)| ApiTlsFiles {
        auth,
        ca: (auth != ClientAuth::None).then(|| server.ca.clone()),
        cert: server.cert.clone(),
        key: server.key.clone(),
    });
    let config = ManageConfig {
        replication: None,
        listen: ListenAddr::Tcp(format!("127.0.0.1:{port}")),
        engines: EngineSource::Discovery(Discovery::Nodes(
            fleet.addrs().into_iter().map(tcp).collect(),
        )),
        cluster: fast_cluster_config(),
        observe,
        placement: Default::default(),
        api: Default::default(),
        tls: TlsConfig::load(files.as_ref(), None, insecure_listen).unwrap(),
    };
    let running = server::start(config, Listener::Tcp(listener)).await?;
    let handle = running.server.handle();
    actix_rt::spawn(running.server);
    Ok((handle, port))
}

/// An HTTPS client that trusts `ca` and shows `cert` (if any).
fn client(ca: &Path, cert: Option<&Certs>) -> awc::Client {
    let tls = EngineTls::load(&EngineTlsFiles {
        ca: ca.to_path_buf(),
        cert_key: cert.map(|c| (c.cert.clone(), c.key.clone())),
    })
    .unwrap();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(tls.client_config()))
        .timeout(Duration::from_secs(10))
        .finish()
}

async fn get(c: &awc::Client, url: &str) -> Result<(u16, bytes::Bytes), String> {
    let mut r = c.get(url).send().await.map_err(|e| e.to_string())?;
    let body = r.body().limit(1 << 20).await.map_err(|e| e.to_string())?;
    Ok((r.status().as_u16(), body))
}

#[actix_rt::test]
async fn verified_clients_are_served_and_others_fail_at_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (shoal, good) = pki(dir.path(), "a");
    let (_, stranger) = pki(dir.path(), "b");
    let (fleet, handle, port) = start(&shoal, ClientAuth::Required).await;
    let base = format!("https://127.0.0.1:{port}");
    let ok = client(&shoal.ca, Some(&good));

    // Plain routes, once the engine is in.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(&ok, &format!("{base}/info")).await.unwrap();
        assert_eq!(status, 200);
        if String::from_utf8_lossy(&body).contains("Status\",\"Healthy") {
            break;
        }
        assert!(Instant::now() < deadline, "engine never healthy: {body:?}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(&ok, &format!("{base}/_ping")).await.unwrap().1, "OK");
    // A create goes through to the engine.
    let before = fleet.engine(0).container_count();
    let mut created = ok
        .post(format!("{base}/containers/create?name=over-tls"))
        .send_json(&serde_json::json!({"Image": "busybox", "Cmd": ["true"]}))
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201, "{:?}", created.body().await);
    assert_eq!(fleet.engine(0).container_count(), before + 1);
    // A stream: the create's event, bounded by `until`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (status, events) = get(
        &ok,
        &format!("{base}/events?since={}&until={}", now - 60, now + 1),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&events).contains("over-tls"),
        "{events:?}"
    );

    // No certificate, or one of another CA: the handshake fails, no create is made.
    let count = fleet.engine(0).container_count();
    for (who, c) in [
        ("no certificate", client(&shoal.ca, None)),
        ("another CA", client(&shoal.ca, Some(&stranger))),
    ] {
        let sent = c
            .post(format!("{base}/containers/create?name=intruder"))
            .send_json(&serde_json::json!({"Image": "busybox"}))
            .await;
        assert!(
            sent.is_err(),
            "{who}: served {:?}",
            sent.map(|r| r.status())
        );
    }
    assert_eq!(fleet.engine(0).container_count(), count);
    handle.stop(false).await;
    fleet.stop().await;
}

#[actix_rt::test]
async fn tls_without_verify_serves_clients_without_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (shoal, _) = pki(dir.path(), "a");
    let (fleet, handle, port) = start(&shoal, ClientAuth::None).await;
    let anonymous = client(&shoal.ca, None);
    let (status, body) = get(&anonymous, &format!("https://127.0.0.1:{port}/_ping"))
        .await
        .unwrap();
    assert_eq!((status, &body[..]), (200, &b"OK"[..]));
    // Plain HTTP to a TLS port is not served.
    let plain = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/_ping"))
        .send()
        .await;
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));
    handle.stop(false).await;
    fleet.stop().await;
}

/// Waits until the server closes `tcp` (a read answers 0 or an error); answers how long.
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let began = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match actix_rt::time::timeout(limit, tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(began.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[actix_rt::test]
async fn idle_connections_are_closed_before_and_after_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (shoal, good) = pki(dir.path(), "a");
    let (fleet, handle, port) = start(&shoal, ClientAuth::Required).await;
    // No handshake at all.
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let limit = shoal::tls::HANDSHAKE_TIMEOUT + Duration::from_secs(5);
    assert!(
        closed_within(&mut silent, limit).await.is_some(),
        "a connection without a handshake stayed open past {limit:?}"
    );
    // A handshake, then no request.
    let tls = EngineTls::load(&EngineTlsFiles {
        ca: shoal.ca.clone(),
        cert_key: Some((good.cert.clone(), good.key.clone())),
    })
    .unwrap();
    let addr = shoal_actors::engine::EngineAddr::Tcp {
        host: "127.0.0.1".into(),
        port,
    };
    let mut idle = shoal_actors::engine::tls::dial_with(&addr, Duration::from_secs(5), Some(&tls))
        .await
        .unwrap();
    let began = Instant::now();
    let mut buf = Vec::new();
    let read = actix_rt::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncReadExt::read_to_end(&mut idle, &mut buf),
    )
    .await;
    assert!(read.is_ok(), "an idle TLS connection stayed open 20 s");
    assert!(began.elapsed() < Duration::from_secs(20));
    handle.stop(false).await;
    fleet.stop().await;
}

/// `shoal list -H` against a TLS Shoal, as the process a user runs.
async fn shoal_list(args: &[&str], env: &[(&str, &Path)]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.arg("list").args(args);
    for k in ["DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_HOST"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[actix_rt::test]
async fn shoal_list_asks_a_tls_shoal_with_the_docker_cli_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (shoal, good) = pki(dir.path(), "a");
    let (_, stranger) = pki(dir.path(), "b");
    let (fleet, handle, port) = start(&shoal, ClientAuth::Required).await;
    let host = format!("127.0.0.1:{port}");
    let flags = |c: &Certs| {
        vec![
            "-H".to_string(),
            host.clone(),
            "--tlsverify".into(),
            "--tlscacert".into(),
            shoal.ca.display().to_string(),
            "--tlscert".into(),
            c.cert.display().to_string(),
            "--tlskey".into(),
            c.key.display().to_string(),
        ]
    };
    let good_flags = flags(&good);
    let good_flags: Vec<&str> = good_flags.iter().map(String::as_str).collect();
    // Flags: the node, once the engine is in.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, text) = shoal_list(&good_flags, &[]).await;
        assert!(ok, "{text}");
        if text.contains("t1\t") && text.contains("\tHealthy\t") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node never listed healthy: {text}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, laid out as the docker CLI wants them.
    let cert_path = dir.path().join("docker");
    std::fs::create_dir_all(&cert_path).unwrap();
    for (from, to) in [
        (&shoal.ca, "ca.pem"),
        (&good.cert, "cert.pem"),
        (&good.key, "key.pem"),
    ] {
        std::fs::copy(from, cert_path.join(to)).unwrap();
    }
    let (ok, text) = shoal_list(
        &["-H", &host],
        &[
            ("DOCKER_TLS_VERIFY", Path::new("1")),
            ("DOCKER_CERT_PATH", &cert_path),
        ],
    )
    .await;
    assert!(ok && text.contains("t1\t"), "{text}");
    // Plain HTTP, or a certificate of another CA: refused, said on one line.
    for (what, args) in [
        ("plain", vec!["-H".to_string(), host.clone()]),
        ("stranger", flags(&stranger)),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, text) = shoal_list(&args, &[]).await;
        assert!(!ok, "{what}: {text}");
        assert!(text.contains("cannot ask shoal at"), "{what}: {text}");
    }
    handle.stop(false).await;
    fleet.stop().await;
}

/// A port of 127.0.0.1 free a moment ago (Shoal binds `--metrics-addr` itself).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_rt::test]
async fn metrics_addr_follows_the_api_rule_and_its_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (shoal, good) = pki(dir.path(), "a");
    let fleet = SimFleet::start(vec![EngineConfig::new("t1")], FleetOptions::default())
        .await
        .unwrap();
    let metrics_at = |addr: String| ObserveConfig {
        debug: false,
        metrics_addr: Some(addr),
    };
    // Plain HTTP on every address: refused at start, in one line that says how to proceed.
    let refused = try_start(&fleet, None, metrics_at("0.0.0.0:0".into()), false).await;
    let e = match refused {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a plain /metrics on 0.0.0.0 was served"),
    };
    assert!(
        e.contains("/metrics") && e.contains("--tlsverify") && e.contains("--insecure-listen"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    // --insecure-listen takes the risk.
    let (handle, _) = try_start(&fleet, None, metrics_at("0.0.0.0:0".into()), true)
        .await
        .unwrap();
    handle.stop(false).await;

    // With --tlsverify: served on every address, with the API's TLS and client check.
    let port = free_port();
    let (handle, _) = try_start(
        &fleet,
        Some((&shoal, ClientAuth::Required)),
        metrics_at(format!("0.0.0.0:{port}")),
        false,
    )
    .await
    .unwrap();
    let url = format!("https://127.0.0.1:{port}/metrics");
    let (status, body) = get(&client(&shoal.ca, Some(&good)), &url).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("# TYPE shoal_"),
        "{body:?}"
    );
    assert!(
        get(&client(&shoal.ca, None), &url).await.is_err(),
        "served /metrics to a client without a certificate"
    );
    let plain = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await;
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));
    handle.stop(false).await;
    fleet.stop().await;
}
