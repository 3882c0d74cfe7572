//! A Shoal in front of simulated engines, in this test process: the real server, real
//! HTTP, real actors; only the engines are simulated.
//!
//! `SimCluster::new().engine(EngineConfig::new("a")).start().await`, or
//! `SimCluster::three().start().await` for the three-node cluster most tests use.
//!
//! Shoal and the simulated engines listen on `127.0.0.1:0` and keep the listener the OS
//! gave them, so no port is ever picked and released (which would race with every other
//! test and process).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the fixture"
)]

use shoal::api::ApiConfig;
use shoal::config::{EngineSource, ListenAddr, ManageConfig, PlacementConfig};
use shoal::discovery::Discovery;
use shoal::server::{self, Listener, Running};
use shoal_actors::cluster::ClusterConfig;
use shoal_actors::engine::{EngineAddr, Timeouts};
use shoal_actors::node::{Health, NodeConfig};
use shoal_sim::{EngineConfig, FleetOptions, SimFleet};
use std::time::{Duration, Instant};

pub struct SimCluster {
    engines: Vec<EngineConfig>,
    discovery: Option<Discovery>,
    placement: PlacementConfig,
    api: ApiConfig,
    cluster: ClusterConfig,
}

pub struct Started {
    pub fleet: SimFleet,
    pub cluster: actix::Addr<shoal_actors::cluster::ClusterActor>,
    pub view: tokio::sync::watch::Receiver<std::sync::Arc<shoal_actors::cluster::ClusterView>>,
    pub hub: actix::Addr<shoal_actors::events::EventsHub>,
    pub server: actix_web::dev::ServerHandle,
    pub base: String,
    pub client: awc::Client,
}

pub struct Answer {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

pub fn tcp(addr: std::net::SocketAddr) -> EngineAddr {
    EngineAddr::Tcp {
        host: addr.ip().to_string(),
        port: addr.port(),
    }
}

/// Refreshes fast and gives up fast, so health changes show within a second or two.
pub fn fast_cluster_config() -> ClusterConfig {
    ClusterConfig {
        node: NodeConfig {
            refresh_min: Duration::from_millis(200),
            refresh_max: Duration::from_millis(400),
            failure_retry: 2,
        },
        timeouts: Timeouts {
            call: Duration::from_millis(800),
            long: Duration::from_secs(30),
        },
        arbiters: 2,
        engine_connections: None,
    }
}

impl SimCluster {
    pub fn new() -> Self {
        SimCluster {
            engines: Vec::new(),
            discovery: None,
            placement: PlacementConfig::default(),
            api: ApiConfig::default(),
            cluster: fast_cluster_config(),
        }
    }

    /// How the nodes run, instead of `fast_cluster_config`. Its `engine_connections` is the
    /// process's: the first cluster started in a test process sets it.
    pub fn cluster(mut self, c: ClusterConfig) -> Self {
        self.cluster = c;
        self
    }

    /// The front's own settings (`--api-cors-header`).
    pub fn api(mut self, a: ApiConfig) -> Self {
        self.api = a;
        self
    }

    /// Three engines, each with 3 containers: `n1` (storage=ssd, 2 CPUs, 1 GiB), `n2`
    /// (storage=disk, 4 CPUs, 2 GiB), `n3` (zone=b, 8 CPUs, 4 GiB).
    pub fn three() -> Self {
        SimCluster::new()
            .engine(
                EngineConfig::new("n1")
                    .label("storage", "ssd")
                    .ncpu(2)
                    .memory(1 << 30)
                    .containers(3),
            )
            .engine(
                EngineConfig::new("n2")
                    .label("storage", "disk")
                    .ncpu(4)
                    .memory(2 << 30)
                    .containers(3),
            )
            .engine(
                EngineConfig::new("n3")
                    .label("zone", "b")
                    .ncpu(8)
                    .memory(4 << 30)
                    .containers(3),
            )
    }

    pub fn engine(mut self, e: EngineConfig) -> Self {
        self.engines.push(e);
        self
    }

    /// Place with this strategy, filters and retry count.
    pub fn placement(mut self, p: PlacementConfig) -> Self {
        self.placement = p;
        self
    }

    /// Use this discovery instead of a `nodes://` list of the simulated engines.
    pub fn discovery(mut self, d: Discovery) -> Self {
        self.discovery = Some(d);
        self
    }

    pub async fn start(self) -> Started {
        let fleet = SimFleet::start(self.engines, FleetOptions::default())
            .await
            .expect("sim fleet starts");
        let discovery = self
            .discovery
            .unwrap_or_else(|| Discovery::Nodes(fleet.addrs().into_iter().map(tcp).collect()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let config = ManageConfig {
            replication: None,
            listen: ListenAddr::Tcp(format!("127.0.0.1:{port}")),
            engines: EngineSource::Discovery(discovery),
            cluster: self.cluster,
            placement: self.placement,
            observe: Default::default(),
            tls: Default::default(),
            api: self.api,
        };
        let running = server::start(config, Listener::Tcp(listener))
            .await
            .expect("shoal starts");
        let Running {
            server,
            cluster,
            view,
            hub,
            ..
        } = running;
        let handle = server.handle();
        // The server serves while its future is polled; the handle stops it.
        actix_rt::spawn(server);
        Started {
            fleet,
            cluster,
            view,
            hub,
            server: handle,
            base: format!("http://127.0.0.1:{port}"),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(20))
                .finish(),
        }
    }
}

impl Started {
    pub async fn get(&self, path: &str) -> Answer {
        self.request(awc::http::Method::GET, path, None).await
    }

    pub async fn request(
        &self,
        method: awc::http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        let req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        let mut resp = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        let body = resp.body().limit(64 << 20).await.expect("body");
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body,
        }
    }

    /// Health of every node, ordered by address.
    pub fn health(&self) -> Vec<Health> {
        let view = self.view.borrow().clone();
        view.read()
            .nodes
            .iter()
            .map(|n| n.snapshot.health)
            .collect()
    }

    /// Waits until `pred` holds for the cluster read, or panics after `secs`.
    pub async fn wait_for(
        &self,
        what: &str,
        secs: u64,
        pred: impl Fn(&shoal_actors::cluster::ClusterRead) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let view = self.view.borrow().clone();
            if pred(&view.read()) {
                return;
            }
            if Instant::now() > deadline {
                let states: Vec<String> = view
                    .read()
                    .nodes
                    .iter()
                    .map(|n| {
                        format!(
                            "{} {} {:?}",
                            n.name, n.snapshot.health, n.snapshot.last_error
                        )
                    })
                    .collect();
                panic!("timed out waiting for {what}: {states:?}");
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_healthy(&self, n: usize) {
        self.wait_for(&format!("{n} healthy nodes"), 15, |r| {
            r.nodes
                .iter()
                .filter(|x| x.snapshot.health == Health::Healthy)
                .count()
                == n
        })
        .await;
    }
}
