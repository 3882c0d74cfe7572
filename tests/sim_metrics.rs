//! Observability of a Shoal in front of simulated engines: `/metrics` (checked by
//! `promtool`), request ids and what the logs never hold, `/shoal/api/cluster`, and the
//! `--debug` routes that exist on loopback only.

mod sim_fixture;

use shoal::config::{EngineSource, ListenAddr, ManageConfig};
use shoal::discovery::Discovery;
use shoal::server::{self, Listener};
use shoal::telemetry::ObserveConfig;
use shoal_sim::{EngineConfig, FleetOptions, SimFleet};
use sim_fixture::{fast_cluster_config, tcp, SimCluster};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Every log line of this test process, at trace level, from the first call on.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let make = move || Capture(writer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .json()
            .with_current_span(true)
            .with_writer(make)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buf
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The value of the first sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[actix_rt::test]
async fn metrics_show_actors_nodes_engines_and_api_and_pass_promtool() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let list = c.get("/containers/json?all=1").await.json();
    let ids: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["Id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 9);
    for id in &ids[..4] {
        assert_eq!(
            c.get(&format!("/v1.41/containers/{id}/json")).await.status,
            200
        );
    }
    assert_eq!(c.get("/containers/nothing-here/json").await.status, 404);
    let stop = format!("/v1.41/containers/{}/stop", ids[0]);
    let stopped = c.request(awc::http::Method::POST, &stop, None).await.status;
    assert!(stopped == 204 || stopped == 304, "{stopped}");
    assert_eq!(c.get("/containers/json?size=1").await.status, 200);
    assert_eq!(c.get("/v1.41/info").await.status, 200);

    let scrape = c.get("/metrics").await;
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.headers.get("content-type").unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(scrape.body.to_vec()).unwrap();

    // API by route template, never by raw path.
    let inspected = sample(
        &text,
        r#"shoal_api_requests_total{method="GET",route="/containers/{id}/json",status="200"}"#,
    )
    .unwrap_or(0.0);
    assert!(inspected >= 4.0, "{inspected}");
    assert!(text.contains(r#"route="/containers/{id}/json",status="404""#));
    // One pattern serves every action; the label still names the action.
    assert!(
        text.contains(r#"route="/containers/{id}/stop",status="#),
        "no stop label"
    );
    assert!(text
        .contains(r#"shoal_api_request_seconds_bucket{method="GET",route="/info",le="0.0005"}"#));
    for id in &ids {
        assert!(!text.contains(&id[..12]), "a container ID reached a label");
    }
    assert!(!text.contains("nothing-here"));

    // Per node, from the snapshots, labelled by address.
    let view = c.view.borrow().clone();
    let read = view.read();
    let by_name = |name: &str| {
        read.nodes
            .iter()
            .find(|n| *n.name == *name)
            .unwrap()
            .handle
            .addr
            .to_string()
    };
    for (name, cpus) in [("n1", 2.0), ("n2", 4.0), ("n3", 8.0)] {
        let node = by_name(name);
        assert_eq!(
            sample(&text, &format!(r#"shoal_node_cpus{{node="{node}"}}"#)),
            Some(cpus)
        );
        assert_eq!(
            sample(
                &text,
                &format!(r#"shoal_node_health{{node="{node}",state="healthy"}}"#)
            ),
            Some(1.0)
        );
        let (want_name, want_node) = (format!(r#"name="{name}""#), format!(r#"node="{node}""#));
        assert!(text.lines().any(|l| l.starts_with("shoal_node_info{")
            && l.contains(&want_name)
            && l.contains(&want_node)));
        assert!(
            sample(
                &text,
                &format!(r#"shoal_node_refresh_seconds_count{{node="{node}"}}"#)
            )
            .unwrap_or(0.0)
                >= 1.0
        );
        let containers: f64 = [
            "created",
            "running",
            "paused",
            "restarting",
            "removing",
            "exited",
            "dead",
        ]
        .iter()
        .filter_map(|s| {
            sample(
                &text,
                &format!(r#"shoal_node_containers{{node="{node}",state="{s}"}}"#),
            )
        })
        .sum();
        assert_eq!(containers, 3.0, "{name}");
        assert!(text.contains(&format!(
            r#"shoal_engine_request_seconds_count{{method="GET",node="{node}",route="/containers/json"}}"#
        )));
        // Every message sent to a node was handled: nothing left in its mailbox.
        assert_eq!(
            sample(
                &text,
                &format!(r#"shoal_actor_mailbox_depth{{actor="{node}",kind="node"}}"#)
            ),
            Some(0.0)
        );
    }
    assert_eq!(sample(&text, r#"shoal_nodes{state="healthy"}"#), Some(3.0));
    assert!(
        text.contains(r#"route="/containers/{}/json""#),
        "engine route template"
    );
    assert!(text.contains(r#"message="InspectContainer"}"#));
    assert!(text.contains(r#"message="ListContainerSizes"}"#));
    assert!(text.contains(
        r#"shoal_actor_messages_total{actor="cluster",kind="cluster",message="SetEngines"}"#
    ));
    assert!(text.contains("# TYPE shoal_actor_handler_seconds histogram"));
    assert!(text.contains(r#"shoal_scheduler_decisions_total{outcome="placed"}"#));

    // A test artifact to look at, and promtool's verdict on the real scrape.
    tokio::fs::create_dir_all("test-artifacts").await.unwrap();
    tokio::fs::write("test-artifacts/metrics.txt", &text)
        .await
        .unwrap();
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian: apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    c.server.stop(false).await;
}

#[actix_rt::test]
async fn every_answer_has_a_request_id_and_credentials_never_reach_the_logs() {
    let logs = captured_logs();
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let secret_auth = "Basic c2VjcmV0LXVzZXI6aHVudGVyMg==";
    let secret_registry = "eyJwYXNzd29yZCI6Imh1bnRlcjIifQ==";
    let mut resp = c
        .client
        .get(format!("{}/v1.41/containers/json?all=1", c.base))
        .insert_header(("Authorization", secret_auth))
        .insert_header(("X-Registry-Auth", secret_registry))
        .insert_header(("X-Request-Id", "trace-me-42"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let _ = resp.body().await.unwrap();
    assert_eq!(resp.headers().get("x-request-id").unwrap(), "trace-me-42");

    // Generated when not given, and unique; also on errors from routing and middleware.
    let a = c.get("/_ping").await;
    let b = c.get("/_ping").await;
    let ida = a
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let idb = b
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(ida.len(), 16);
    assert_ne!(ida, idb);
    for path in ["/no/such/route", "/v9.99/info", "/containers/nope/json"] {
        let r = c.get(path).await;
        assert!(r.status >= 400, "{path}");
        assert!(r.headers.contains_key("x-request-id"), "{path}");
    }
    // A badly formed id is replaced, never echoed.
    let mut r = c
        .client
        .get(format!("{}/_ping", c.base))
        .insert_header(("X-Request-Id", "x\" injected=1"))
        .send()
        .await
        .unwrap();
    let _ = r.body().await;
    assert_ne!(r.headers().get("x-request-id").unwrap(), "x\" injected=1");

    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        text.contains("trace-me-42"),
        "the request id is in the logs"
    );
    assert!(
        text.contains(r#""route":"/containers/json""#),
        "the route is in the span"
    );
    for secret in [
        secret_auth,
        secret_registry,
        "c2VjcmV0LXVzZXI6aHVudGVyMg",
        "hunter2",
    ] {
        assert!(!text.contains(secret), "{secret} reached the logs");
    }
    c.server.stop(false).await;
}

#[actix_rt::test]
async fn the_cluster_json_shows_every_node_as_the_page_needs_it() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let r = c.get("/shoal/api/cluster").await;
    assert_eq!(r.status, 200);
    let j = r.json();
    let nodes = j["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    for n in nodes {
        assert_eq!(n["health"], "Healthy");
        assert_eq!(n["containers"]["total"], 3);
        assert!(n["last_refresh"].as_f64().unwrap() > 1.6e9);
        assert!(n["memory"]["total"].as_f64().unwrap() >= (1u64 << 30) as f64);
    }
    assert_eq!(nodes[0]["labels"]["storage"], "ssd");
    assert_eq!(nodes[0]["cpus"]["total"], 2.0);
    assert_eq!(nodes[2]["cpus"]["total"], 8.0);
    let le = j["stats"]["api_latency_le"].as_array().unwrap();
    assert_eq!(
        le.len(),
        j["stats"]["api_latency_counts"].as_array().unwrap().len()
    );
    assert!(j["stats"]["placements_total"].is_u64());

    // The page itself, and its slashless address.
    let page = c.get("/shoal/").await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("api/cluster"));
    // (awc follows the redirect.)
    let slashless = c.get("/shoal").await;
    assert_eq!(slashless.status, 200);
    assert_eq!(slashless.body, page.body);
    c.server.stop(false).await;
}

/// A Shoal with `observe` on a listener bound to `bind`; answers its base URL.
async fn start_with(
    bind: &str,
    observe: ObserveConfig,
) -> (SimFleet, actix_web::dev::ServerHandle, String) {
    try_start_with(bind, observe).await.unwrap()
}

/// A Shoal serving `/metrics` on a port of 127.0.0.1 of its own: Shoal binds
/// `--metrics-addr` itself, so the port is one found free, and tried again with another if
/// some other process took it before Shoal could bind it. Answers the metrics port too.
async fn start_with_metrics_port(
    bind: &str,
) -> (SimFleet, actix_web::dev::ServerHandle, String, u16) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let observe = ObserveConfig {
            debug: false,
            metrics_addr: Some(format!("127.0.0.1:{port}")),
        };
        match try_start_with(bind, observe).await {
            Ok((fleet, handle, base)) => return (fleet, handle, base, port),
            Err(server::StartError::Io(e))
                if e.kind() == std::io::ErrorKind::AddrInUse && attempts < 5 => {}
            Err(e) => panic!("shoal with --metrics-addr 127.0.0.1:{port}: {e}"),
        }
    }
}

async fn try_start_with(
    bind: &str,
    observe: ObserveConfig,
) -> Result<(SimFleet, actix_web::dev::ServerHandle, String), server::StartError> {
    let fleet = SimFleet::start(vec![EngineConfig::new("d1")], FleetOptions::default())
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind(bind).unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = ManageConfig {
        replication: None,
        listen: ListenAddr::Tcp(bind.to_string()),
        engines: EngineSource::Discovery(Discovery::Nodes(
            fleet.addrs().into_iter().map(tcp).collect(),
        )),
        cluster: fast_cluster_config(),
        observe,
        placement: Default::default(),
        // One of these listens on 0.0.0.0 without TLS, which needs saying.
        tls: shoal::tls::TlsConfig {
            insecure_listen: true,
            ..Default::default()
        },
        api: Default::default(),
    };
    let running = server::start(config, Listener::Tcp(listener)).await?;
    let handle = running.server.handle();
    actix_rt::spawn(running.server);
    Ok((fleet, handle, format!("http://127.0.0.1:{port}")))
}

async fn status(url: &str) -> u16 {
    awc::Client::new()
        .get(url)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_rt::test]
async fn debug_routes_exist_on_loopback_only_and_metrics_addr_serves_metrics() {
    let debug = ObserveConfig {
        debug: true,
        metrics_addr: None,
    };
    let (_f1, h1, local) = start_with("127.0.0.1:0", debug.clone()).await;
    assert_eq!(status(&format!("{local}/shoal/debug/nodes")).await, 200);
    let (_f2, h2, public) = start_with("0.0.0.0:0", debug).await;
    assert_eq!(status(&format!("{public}/shoal/debug/nodes")).await, 404);
    assert_eq!(status(&format!("{public}/metrics")).await, 200);
    let (_f3, h3, plain) = start_with("127.0.0.1:0", ObserveConfig::default()).await;
    assert_eq!(status(&format!("{plain}/shoal/debug/nodes")).await, 404);

    let (_f4, h4, _, port) = start_with_metrics_port("127.0.0.1:0").await;
    let mut r = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.body().await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("shoal_node_health"));
    assert_eq!(status(&format!("http://127.0.0.1:{port}/info")).await, 404);
    for h in [h1, h2, h3, h4] {
        h.stop(false).await;
    }
}
