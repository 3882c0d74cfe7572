//! `/_ping`, `/version`, `/info`: Shoal's own answers, aggregated from the node snapshots
//! like classic Swarm did (sums of containers, CPUs and memory, the distinct images as
//! `/images/json` lists them; one block of
//! `SystemStatus` lines per node, which `docker info` prints); and `POST /auth`.

use crate::api::error::ApiError;
use crate::api::forward::fanout::{call, healthy, no_node, pass};
use crate::api::state::ApiState;
use actix_web::body::SizedStream;
use actix_web::{web, HttpRequest, HttpResponse};
use bollard_stubs::models::ImageSummary;
use bytes::Bytes;
use serde_json::json;
use shoal_actors::cluster::{ClusterRead, ClusterView, NodeRead, ReadKey};
use shoal_actors::node::Health;
use shoal_actors::node::NodeSnapshot;
use shoal_actors::node::ObjectOp;
use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

/// Lowest API version Shoal accepts from a client (what current Docker engines accept).
pub const MIN_API_VERSION: &str = "1.24";
/// Answered before any engine is healthy, so a client has something to negotiate with.
pub const FALLBACK_API_VERSION: &str = "1.41";

pub const VERSION: &str = concat!("shoal/", env!("CARGO_PKG_VERSION"));

fn api_version(state: &ApiState) -> String {
    state
        .cluster()
        .api_version()
        .unwrap_or_else(|| FALLBACK_API_VERSION.to_string())
}

pub async fn ping(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Api-Version", api_version(&state)))
        .insert_header(("Ostype", "linux"))
        .insert_header(("Docker-Experimental", "false"))
        .insert_header(("Cache-Control", "no-cache, no-store, must-revalidate"))
        .insert_header(("Pragma", "no-cache"))
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

pub async fn version(state: web::Data<ApiState>) -> HttpResponse {
    let api = api_version(&state);
    let built = rfc3339(state.info.started);
    HttpResponse::Ok().json(json!({
        "Platform": {"Name": "Shoal"},
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {
                "ApiVersion": api,
                "MinAPIVersion": MIN_API_VERSION,
                "GitCommit": "",
                "GoVersion": "none (Rust)",
                "Os": std::env::consts::OS,
                "Arch": arch(),
                "KernelVersion": state.info.kernel,
                "BuildTime": built,
                "Experimental": "false",
            }
        }],
        "Version": VERSION,
        "ApiVersion": api,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "none (Rust)",
        "Os": std::env::consts::OS,
        "Arch": arch(),
        "KernelVersion": state.info.kernel,
        "BuildTime": built,
    }))
}

fn bytes_human(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n.max(0) as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{} B", n.max(0))
    } else {
        format!("{v:.3} {}", UNITS[u])
    }
}

/// The `SystemStatus` lines of one node below its name line, in classic Swarm's layout, as
/// JSON array elements each preceded by a comma. Rendered once per snapshot of the node.
fn node_status(s: &NodeSnapshot) -> Bytes {
    let facts = s.facts.as_deref();
    let (running, paused, stopped) = s.containers.state_counts();
    let labels = facts
        .map(|f| {
            let mut l: Vec<String> = vec![
                format!("kernelversion={}", f.kernel_version),
                format!("operatingsystem={}", f.operating_system),
                format!("ostype={}", f.os_type),
                format!("storagedriver={}", f.storage_driver),
            ];
            l.extend(f.labels.iter().map(|(k, v)| format!("{k}={v}")));
            l.join(", ")
        })
        .unwrap_or_default();
    let ncpu = facts.map_or(0, |f| f.ncpu);
    let mem = facts.map_or(0, |f| i64::try_from(f.mem_total).unwrap_or(i64::MAX));
    let lines: [(&str, String); 9] = [
        ("ID", facts.map(|f| f.id.clone()).unwrap_or_default()),
        ("Status", s.health.to_string()),
        (
            "Containers",
            format!(
                "{} ({running} Running, {paused} Paused, {stopped} Stopped)",
                s.containers.len()
            ),
        ),
        (
            "Reserved CPUs",
            format!("{} / {ncpu}", s.reserved.nano_cpus as f64 / 1e9),
        ),
        (
            "Reserved Memory",
            format!("{} / {}", bytes_human(s.reserved.memory), bytes_human(mem)),
        ),
        ("Labels", labels),
        (
            "Error",
            s.last_error.clone().unwrap_or_else(|| "(none)".to_string()),
        ),
        (
            "UpdatedAt",
            s.last_update
                .map(rfc3339)
                .unwrap_or_else(|| "never".to_string()),
        ),
        (
            "ServerVersion",
            facts.map(|f| f.server_version.clone()).unwrap_or_default(),
        ),
    ];
    let mut out = Vec::with_capacity(512);
    for (k, v) in lines {
        out.push(b',');
        push_pair(&mut out, &format!("  └ {k}"), &v);
    }
    Bytes::from(out)
}

/// Writes `["k","v"]`.
fn push_pair(out: &mut Vec<u8>, k: &str, v: &str) {
    // Plain strings: serde_json only escapes them.
    let _ = serde_json::to_writer(&mut *out, &[k, v]);
}

/// What one node puts in `/info`: its name line and `SystemStatus` lines, and, when it is
/// healthy, what it adds to the totals.
#[derive(Clone)]
struct NodeShare {
    lines: Bytes,
    /// (containers, running, paused, stopped), CPUs and memory; zero when not healthy.
    totals: Totals,
    /// The node's images when it is healthy (their IDs are counted once over the cluster).
    images: Option<Arc<Vec<ImageSummary>>>,
}

impl NodeShare {
    fn of(n: &NodeRead) -> NodeShare {
        let s = &n.snapshot;
        let mut lines = Vec::with_capacity(768);
        lines.push(b',');
        push_pair(&mut lines, &format!(" {}", n.name), &s.addr.to_string());
        lines.extend_from_slice(&s.rendered.get_or_render(|| node_status(s)));
        let healthy = s.health == Health::Healthy;
        let mut totals = Totals::default();
        if healthy {
            let (r, p, st) = s.containers.state_counts();
            totals.counts = (s.containers.len(), r, p, st);
            if let Some(f) = &s.facts {
                totals.ncpu = u64::from(f.ncpu);
                totals.mem = f.mem_total;
            }
        }
        NodeShare {
            lines: Bytes::from(lines),
            totals,
            images: healthy.then(|| s.images.clone()),
        }
    }

    /// Whether this share and `other` count the same image IDs.
    fn same_images(&self, other: &NodeShare) -> bool {
        match (&self.images, &other.images) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                Arc::ptr_eq(a, b) || a.iter().map(|i| &i.id).eq(b.iter().map(|i| &i.id))
            }
            _ => false,
        }
    }
}

/// The part of `/info` made of the nodes alone: every node's `SystemStatus` lines (a
/// comma before each) and the cluster-wide totals. Worked out once per set of node
/// snapshots, and then only for the nodes whose snapshot changed: at a thousand nodes,
/// gathering the distinct images and formatting every node's name line was most of what
/// a request cost, though snapshots change far less often than `/info` is asked, and a
/// refresh changes one node's snapshot at a time.
struct NodesPart {
    /// What it was worked out from: each node's snapshot and shown name, in the order shown.
    key: ReadKey<NodeSnapshot>,
    shares: Vec<NodeShare>,
    lines: Bytes,
    totals: Totals,
}

/// The cluster-wide figures of `/info`, over the healthy nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    /// (containers, running, paused, stopped)
    counts: (usize, usize, usize, usize),
    /// Distinct image IDs: an image on several nodes is one image, as `GET /images/json`
    /// lists it.
    images: usize,
    ncpu: u64,
    mem: u64,
}

impl Totals {
    fn with_counts(self, counts: (usize, usize, usize, usize)) -> Totals {
        Totals { counts, ..self }
    }

    fn add(&mut self, o: &Totals) {
        let (c, d) = (&mut self.counts, o.counts);
        *c = (c.0 + d.0, c.1 + d.1, c.2 + d.2, c.3 + d.3);
        self.ncpu += o.ncpu;
        self.mem += o.mem;
    }
}

fn snapshot(s: &Arc<NodeSnapshot>) -> &Arc<NodeSnapshot> {
    s
}

impl NodesPart {
    /// The part for `read`, reusing what `last` worked out for the nodes that did not
    /// change since.
    fn of(read: &ClusterRead, last: Option<&NodesPart>) -> NodesPart {
        let since = last.and_then(|l| Some((l, l.key.changed(read)?)));
        let (shares, images) = match since {
            Some((last, changed)) => {
                let mut shares = last.shares.clone();
                let mut same_images = true;
                for i in changed {
                    let share = NodeShare::of(&read.nodes[i]);
                    same_images &= share.same_images(&shares[i]);
                    shares[i] = share;
                }
                (shares, same_images.then_some(last.totals.images))
            }
            None => (read.nodes.iter().map(NodeShare::of).collect(), None),
        };
        let mut totals = Totals::default();
        let mut lines = Vec::with_capacity(shares.iter().map(|s| s.lines.len()).sum());
        for share in &shares {
            lines.extend_from_slice(&share.lines);
            totals.add(&share.totals);
        }
        totals.images = images.unwrap_or_else(|| {
            let ids = shares
                .iter()
                .flat_map(|s| s.images.iter().flat_map(|i| i.iter()));
            ids.map(|i| i.id.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len()
        });
        NodesPart {
            key: ReadKey::of(read, snapshot),
            shares,
            lines: Bytes::from(lines),
            totals,
        }
    }
}

thread_local! {
    /// The last [`NodesPart`] this worker thread worked out: a memo of a pure function of
    /// the snapshots, checked against them on every use, so it is never stale and needs no
    /// lock (each worker keeps its own).
    static NODES_PART: RefCell<Option<Rc<NodesPart>>> = const { RefCell::new(None) };
}

/// The nodes part of `/info` as `view` is now: the memo when it is of the snapshots the
/// view holds (checked without a read of the cluster), else worked out from `read`.
fn nodes_part(view: &ClusterView, read: impl FnOnce() -> ClusterRead) -> Rc<NodesPart> {
    NODES_PART.with(|memo| {
        if let Some(part) = memo.borrow().as_ref().filter(|p| p.key.matches_view(view)) {
            return part.clone();
        }
        let last = memo.borrow_mut().take();
        let part = Rc::new(NodesPart::of(&read(), last.as_deref()));
        *memo.borrow_mut() = Some(part.clone());
        part
    })
}

/// (containers, running, paused, stopped) on the healthy nodes that tenant `t` sees.
fn tenant_counts(read: &ClusterRead, t: &str) -> (usize, usize, usize, usize) {
    let (mut containers, mut running, mut paused, mut stopped) = (0, 0, 0, 0);
    for s in read.nodes.iter().map(|n| &n.snapshot) {
        if s.health != Health::Healthy {
            continue;
        }
        for e in s.containers.entries.iter().filter(|e| {
            crate::authz::Grant::sees(Some(t), |k| e.info.labels.get(k).map(String::as_str))
        }) {
            containers += 1;
            match e.state() {
                "running" | "restarting" => running += 1,
                "paused" => paused += 1,
                _ => stopped += 1,
            }
        }
    }
    (containers, running, paused, stopped)
}

pub async fn info(state: web::Data<ApiState>, http: HttpRequest) -> HttpResponse {
    let view = state.cluster();
    // A tenant client counts its own containers only.
    let tenant = crate::authz::Grant::tenant_of(&http);
    let part = nodes_part(&view, || view.read());
    // The answer is sent in three parts: `{"SystemStatus":[` and Shoal's own lines, the
    // nodes' lines as kept in `part` (not copied), and `],` then the rest of the object
    // without its opening brace.
    let mut status: Vec<u8> = Vec::with_capacity(4096);
    status.extend_from_slice(b"{\"SystemStatus\":[");
    let filters = state.info.filters.join(", ");
    let nodes = part.shares.len().to_string();
    // One manager is its own primary; replicated ones say which is (`Primary: host:port`).
    let replication = state.replication.as_ref().map(|r| r.info_lines());
    let role: Vec<(&str, &str)> = match &replication {
        None => vec![("Role", "primary")],
        Some(lines) => lines.iter().map(|(k, v)| (*k, v.as_str())).collect(),
    };
    for (i, (k, v)) in role
        .into_iter()
        .chain([
            ("Strategy", state.info.strategy.as_str()),
            ("Filters", filters.as_str()),
            ("Nodes", nodes.as_str()),
        ])
        .enumerate()
    {
        if i > 0 {
            status.push(b',');
        }
        push_pair(&mut status, k, v);
    }
    // A discovery followed live (etcd) says whether it is in step.
    let discovery = state.discovery.as_ref().map(|d| d.borrow().clone());
    if let Some(d) = &discovery {
        status.push(b',');
        push_pair(&mut status, "Discovery", &d.source);
        status.push(b',');
        push_pair(&mut status, "Discovery Status", &d.state);
    }
    let totals = match tenant.as_deref() {
        Some(t) => part.totals.with_counts(tenant_counts(&view.read(), t)),
        None => part.totals,
    };
    let (containers, running, paused, stopped) = totals.counts;
    let (images, ncpu, mem) = (totals.images, totals.ncpu, totals.mem);
    let now = SystemTime::now();
    let rest = json!({
        "ID": state.info.id,
        "Containers": containers,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "",
        "DriverStatus": [],
        "Plugins": {"Volume": [], "Network": [], "Authorization": null, "Log": []},
        "MemoryLimit": true,
        "SwapLimit": true,
        "KernelMemory": true,
        "KernelMemoryTCP": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "OomKillDisable": true,
        "IPv4Forwarding": true,
        "BridgeNfIptables": true,
        "BridgeNfIp6tables": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": rfc3339(now),
        "LoggingDriver": "",
        "CgroupDriver": "",
        "CgroupVersion": "",
        "NEventsListener": 0,
        "KernelVersion": state.info.kernel,
        "OperatingSystem": std::env::consts::OS,
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": null,
        "NCPU": ncpu,
        "MemTotal": mem,
        "GenericResources": null,
        "DockerRootDir": "",
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": state.info.name,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": {},
        "DefaultRuntime": "",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null
        },
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": [],
        "Warnings": state
            .info
            .warnings
            .iter()
            .chain(discovery.as_ref().and_then(|d| d.warning.as_ref()))
            .collect::<Vec<_>>()
    });
    let mut tail = b"],".to_vec();
    let rest = serde_json::to_vec(&rest).unwrap_or_else(|_| b"{}".to_vec());
    tail.extend_from_slice(rest.get(1..).unwrap_or(b"}"));
    // Ten lines a node, worked out once per node snapshot, sent as slices of the memo's
    // buffer: actix-http copies each into its write buffer, which slices keep small (a
    // whole ~0.5 MB body grew it, and was copied once more before, at each request).
    let lines = part.lines.clone();
    let slices = (0..lines.len().div_ceil(LINES_SLICE))
        .map(move |i| lines.slice(i * LINES_SLICE..lines.len().min((i + 1) * LINES_SLICE)));
    let parts: Vec<Bytes> = std::iter::once(Bytes::from(status))
        .chain(slices)
        .chain(std::iter::once(Bytes::from(tail)))
        .collect();
    let len: usize = parts.iter().map(Bytes::len).sum();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(SizedStream::new(
            len as u64,
            futures_util::stream::iter(parts.into_iter().map(Ok::<_, Infallible>)),
        ))
}

/// Bytes of the nodes' lines sent at a time (see `info`).
const LINES_SLICE: usize = 64 * 1024;

/// `POST /auth`: checks credentials on one healthy node (every engine asks the same
/// registry).
pub async fn auth(state: web::Data<ApiState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    crate::api::docker::networks::json_object(&body)?;
    let read = state.read();
    let (_, node) = healthy(&read).next().ok_or_else(no_node)?;
    let (s, answer) = call(node, ObjectOp::Auth { body }).await?;
    pass(s, answer)
}

#[cfg(test)]
mod tests {
    use super::bytes_human;

    #[test]
    fn human_bytes() {
        assert_eq!(bytes_human(0), "0 B");
        assert_eq!(bytes_human(1536), "1.500 KiB");
        assert_eq!(bytes_human(1 << 30), "1.000 GiB");
    }
}
