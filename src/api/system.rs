//! `/_ping`, `/version`, `/info`: Shoal's own answers, aggregated from the node snapshots
//! like classic Swarm did (sums of containers, images, CPUs and memory; one block of
//! `SystemStatus` lines per node, which `docker info` prints).

use super::{ApiState, FALLBACK_API_VERSION, MIN_API_VERSION};
use actix_web::{web, HttpResponse};
use serde_json::json;
use shoal_actors::cluster::NodeRead;
use shoal_actors::node::Health;
use std::time::SystemTime;

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

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
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
                "KernelVersion": kernel_version(),
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
        "KernelVersion": kernel_version(),
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

/// The `SystemStatus` lines of one node, in classic Swarm's layout. Answers the node's
/// (running, paused, stopped) counts, which `/info` also sums.
fn node_status(n: &NodeRead, lines: &mut Vec<[String; 2]>) -> (usize, usize, usize) {
    let s = &n.snapshot;
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
    let mem = facts.map_or(0, |f| f.mem_total);
    let sub = |k: &str, v: String| [format!("  └ {k}"), v];
    lines.push([format!(" {}", n.name), s.addr.to_string()]);
    lines.push(sub("ID", facts.map(|f| f.id.clone()).unwrap_or_default()));
    lines.push(sub("Status", s.health.to_string()));
    lines.push(sub(
        "Containers",
        format!(
            "{} ({running} Running, {paused} Paused, {stopped} Stopped)",
            s.containers.len()
        ),
    ));
    lines.push(sub(
        "Reserved CPUs",
        format!("{} / {ncpu}", s.reserved.nano_cpus as f64 / 1e9),
    ));
    lines.push(sub(
        "Reserved Memory",
        format!("{} / {}", bytes_human(s.reserved.memory), bytes_human(mem)),
    ));
    lines.push(sub("Labels", labels));
    lines.push(sub(
        "Error",
        s.last_error.clone().unwrap_or_else(|| "(none)".to_string()),
    ));
    lines.push(sub(
        "UpdatedAt",
        s.last_update
            .map(rfc3339)
            .unwrap_or_else(|| "never".to_string()),
    ));
    lines.push(sub(
        "ServerVersion",
        facts.map(|f| f.server_version.clone()).unwrap_or_default(),
    ));
    (running, paused, stopped)
}

pub async fn info(state: web::Data<ApiState>) -> HttpResponse {
    let read = state.read();
    // Eleven lines a node: sized once, and serialized as it is (not through a JSON value).
    let mut status: Vec<[String; 2]> = Vec::with_capacity(4 + 11 * read.nodes.len());
    status.extend([
        ["Role".into(), "primary".into()],
        ["Strategy".into(), state.info.strategy.clone()],
        ["Filters".into(), state.info.filters.join(", ")],
        ["Nodes".into(), read.nodes.len().to_string()],
    ]);
    let (mut containers, mut running, mut paused, mut stopped) = (0, 0, 0, 0);
    let (mut images, mut ncpu, mut mem) = (0, 0i64, 0i64);
    for n in &read.nodes {
        let (r, p, s) = node_status(n, &mut status);
        if n.snapshot.health != Health::Healthy {
            continue;
        }
        containers += n.snapshot.containers.len();
        running += r;
        paused += p;
        stopped += s;
        images += n.snapshot.images.len();
        if let Some(f) = &n.snapshot.facts {
            ncpu += f.ncpu;
            mem += f.mem_total;
        }
    }
    let now = SystemTime::now();
    HttpResponse::Ok().json(InfoAnswer {
        system_status: &status,
        rest: json!({
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
        "KernelVersion": kernel_version(),
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
        "Warnings": []
        }),
    })
}

/// `/info`'s answer: the node lines by reference, the rest as a small JSON object.
#[derive(serde::Serialize)]
struct InfoAnswer<'a> {
    #[serde(rename = "SystemStatus")]
    system_status: &'a [[String; 2]],
    #[serde(flatten)]
    rest: serde_json::Value,
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
