//! `GET /shoal/api/cluster`: the cluster as the page shows it, one object per node, plus the
//! counters the page turns into rates (placements/s, p99 API latency).
//!
//! Read from the published snapshots, like `/info`: no message to any actor, so the page
//! costs the cluster nothing however often it polls.

use crate::api::state::ApiState;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use shoal_actors::cluster::NodeRead;
use shoal_actors::metrics;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Serialize)]
pub struct ClusterJson {
    pub name: String,
    pub version: String,
    pub strategy: String,
    /// Now, in seconds since the epoch (the page's clock for "last refresh ... ago").
    pub time: f64,
    pub nodes: Vec<NodeJson>,
    pub stats: Stats,
}

#[derive(Debug, Serialize)]
pub struct NodeJson {
    pub name: String,
    pub addr: String,
    /// `Pending`, `Healthy` or `Unhealthy`: the words `docker info` shows.
    pub health: String,
    pub failures: u32,
    pub last_error: Option<String>,
    pub last_refresh: Option<f64>,
    pub labels: BTreeMap<String, String>,
    pub containers: Containers,
    pub cpus: Resource,
    pub memory: Resource,
    pub server_version: Option<String>,
    pub os: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Containers {
    pub total: usize,
    /// Whose reservations are not known yet (inspect under way).
    pub unreserved: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
}

#[derive(Debug, Serialize)]
pub struct Resource {
    pub reserved: f64,
    pub total: f64,
}

/// Counters since start; the page takes differences between two polls.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub placements_total: u64,
    /// Bucket upper bounds (seconds) of the API latency histogram.
    pub api_latency_le: Vec<f64>,
    /// Cumulative counts of the Docker API requests per bucket, all routes summed.
    pub api_latency_counts: Vec<u64>,
}

fn secs(t: SystemTime) -> Option<f64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

fn node_json(n: &NodeRead) -> NodeJson {
    let s = &n.snapshot;
    let (running, paused, stopped) = s.containers.state_counts();
    let facts = s.facts.as_deref();
    NodeJson {
        name: n.name.to_string(),
        addr: n.handle.addr.to_string(),
        health: s.health.to_string(),
        failures: s.failures,
        last_error: s.last_error.clone(),
        last_refresh: s.last_update.and_then(secs),
        labels: facts.map(|f| f.labels.clone()).unwrap_or_default(),
        containers: Containers {
            total: s.containers.len(),
            unreserved: s.unreserved(),
            running,
            paused,
            stopped,
        },
        cpus: Resource {
            reserved: s.reserved.nano_cpus as f64 / 1e9,
            total: facts.map_or(0.0, |f| f.ncpu as f64),
        },
        memory: Resource {
            reserved: s.reserved.memory as f64,
            total: facts.map_or(0.0, |f| f.mem_total as f64),
        },
        server_version: facts.map(|f| f.server_version.clone()),
        os: facts.map(|f| format!("{} {}", f.operating_system, f.kernel_version)),
    }
}

/// The cluster as JSON.
pub fn cluster_json(state: &ApiState) -> ClusterJson {
    let read = state.read();
    let (le, counts) = metrics::api_latency_buckets();
    ClusterJson {
        name: state.info.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        strategy: state.info.strategy.clone(),
        time: secs(SystemTime::now()).unwrap_or(0.0),
        nodes: read.nodes.iter().map(node_json).collect(),
        stats: Stats {
            placements_total: metrics::placements_total(),
            api_latency_le: le,
            api_latency_counts: counts,
        },
    }
}

/// `GET /shoal/api/cluster`.
pub async fn cluster(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(cluster_json(&state))
}
