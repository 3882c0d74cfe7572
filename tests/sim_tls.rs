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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let files = ApiTlsFiles {
        auth,
        ca: (auth != ClientAuth::None).then(|| server.ca.clone()),
        cert: server.cert.clone(),
        key: server.key.clone(),
    };
    let config = ManageConfig {
        replication: None,
        listen: ListenAddr::Tcp(format!("127.0.0.1:{port}")),
        engines: EngineSource::Discovery(Discovery::Nodes(
            fleet.addrs().into_iter().map(tcp).collect(),
        )),
        cluster: fast_cluster_config(),
        observe: Default::default(),
        placement: Default::default(),
        api: Default::default(),
        tls: TlsConfig::load(Some(&files), None, false).unwrap(),
    };
    let running = server::start(config, Listener::Tcp(listener))
        .await
        .unwrap();
    let handle = running.server.handle();
    actix_rt::spawn(running.server);
    (fleet, handle, port)
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
