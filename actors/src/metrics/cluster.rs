//! Per-node gauges computed at scrape time from the snapshots the NodeActors publish:
//! nothing is updated between scrapes, and a node that left has no series.

use crate::cluster::ClusterRead;
use crate::node::{Health, NodeSnapshot};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};
use std::time::UNIX_EPOCH;

/// Docker's container states, all exported so sums over a node stay stable.
const CONTAINER_STATES: &[&str] = &[
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];

/// The label value of a health state: `pending`, `healthy`, `unhealthy`.
pub fn state_label(h: Health) -> &'static str {
    match h {
        Health::Pending => "pending",
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
    }
}

const HEALTH_STATES: &[Health] = &[Health::Pending, Health::Healthy, Health::Unhealthy];

struct Families {
    registry: Registry,
    nodes: IntGaugeVec,
    info: IntGaugeVec,
    health: IntGaugeVec,
    failures: IntGaugeVec,
    last_refresh: GaugeVec,
    containers: IntGaugeVec,
    unreserved: IntGaugeVec,
    cpus: GaugeVec,
    memory: IntGaugeVec,
    reserved_cpus: GaugeVec,
    reserved_memory: IntGaugeVec,
}

fn int(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique gauge");
    g
}

fn float(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique gauge");
    g
}

impl Families {
    fn new() -> Self {
        let r = Registry::new();
        Families {
            nodes: int(&r, "shoal_nodes", "Nodes in the cluster, by health state.", &["state"]),
            info: int(
                &r,
                "shoal_node_info",
                "Always 1; the node's shown name and engine facts in labels (join on `node`).",
                &["node", "name", "engine_id", "server_version", "api_version", "os_type", "architecture"],
            ),
            health: int(
                &r,
                "shoal_node_health",
                "1 for the node's current health state (pending, healthy, unhealthy), 0 for the others.",
                &["node", "state"],
            ),
            failures: int(
                &r,
                "shoal_node_consecutive_failures",
                "Failed refreshes of the node since its last successful one.",
                &["node"],
            ),
            last_refresh: float(
                &r,
                "shoal_node_last_refresh_timestamp_seconds",
                "When the node last refreshed successfully, in seconds since the Unix epoch.",
                &["node"],
            ),
            containers: int(
                &r,
                "shoal_node_containers",
                "Containers on the node, by state.",
                &["node", "state"],
            ),
            unreserved: int(
                &r,
                "shoal_node_containers_unreserved",
                "Containers on the node whose reservations are not known yet (inspect under way); placements count them once known.",
                &["node"],
            ),
            cpus: float(&r, "shoal_node_cpus", "CPUs of the node's engine (NCPU).", &["node"]),
            memory: int(
                &r,
                "shoal_node_memory_bytes",
                "Memory of the node's engine (MemTotal).",
                &["node"],
            ),
            reserved_cpus: float(
                &r,
                "shoal_node_reserved_cpus",
                "CPUs reserved by the node's containers (NanoCpus, CpuQuota/CpuPeriod or cpuset).",
                &["node"],
            ),
            reserved_memory: int(
                &r,
                "shoal_node_reserved_memory_bytes",
                "Memory reserved by the node's containers (their memory limits).",
                &["node"],
            ),
            registry: r,
        }
    }

    fn add(&self, name: &str, s: &NodeSnapshot) {
        let node = s.addr.to_string();
        let n = node.as_str();
        for h in HEALTH_STATES {
            self.health
                .with_label_values(&[n, state_label(*h)])
                .set(i64::from(s.health == *h));
        }
        self.failures
            .with_label_values(&[n])
            .set(i64::from(s.failures));
        if let Some(t) = s
            .last_update
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        {
            self.last_refresh
                .with_label_values(&[n])
                .set(t.as_secs_f64());
        }
        let mut counts = [0i64; CONTAINER_STATES.len()];
        for e in &s.containers.entries {
            let state = e.state();
            if let Some(i) = CONTAINER_STATES.iter().position(|k| *k == state) {
                counts[i] += 1;
            }
        }
        for (state, count) in CONTAINER_STATES.iter().zip(counts) {
            self.containers.with_label_values(&[n, state]).set(count);
        }
        self.unreserved
            .with_label_values(&[n])
            .set(s.unreserved() as i64);
        self.reserved_cpus
            .with_label_values(&[n])
            .set(s.reserved.nano_cpus as f64 / 1e9);
        self.reserved_memory
            .with_label_values(&[n])
            .set(s.reserved.memory);
        if let Some(f) = &s.facts {
            self.cpus.with_label_values(&[n]).set(f.ncpu as f64);
            self.memory
                .with_label_values(&[n])
                .set(i64::try_from(f.mem_total).unwrap_or(i64::MAX));
            self.info
                .with_label_values(&[
                    n,
                    name,
                    &f.id,
                    &f.server_version,
                    &f.api_version,
                    &f.os_type,
                    &f.architecture,
                ])
                .set(1);
        } else {
            self.info
                .with_label_values(&[n, name, "", "", "", "", ""])
                .set(1);
        }
    }
}

/// The per-node families of `read`, for one scrape.
pub fn families(read: &ClusterRead) -> Vec<MetricFamily> {
    let f = Families::new();
    for h in HEALTH_STATES {
        f.nodes.with_label_values(&[state_label(*h)]).set(0);
    }
    for n in &read.nodes {
        f.nodes
            .with_label_values(&[state_label(n.snapshot.health)])
            .inc();
        f.add(&n.name, &n.snapshot);
    }
    f.registry.gather()
}
