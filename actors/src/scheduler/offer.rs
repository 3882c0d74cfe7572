//! A node's resource offer: everything the scheduler needs to know about one engine,
//! as plain data. Each NodeActor builds one after every refresh or change and sends it
//! (as `Arc<Offer>`) to the SchedulerActor, which keeps only the latest per node.
//!
//! The offer carries precomputed totals (reserved CPU and memory, host ports in use) so
//! that indexing it is one pass and a decision never sums anything.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bollard_stubs::models::HostConfig;

// What the node knows of its engine and decides of it, read here as the node publishes them.
use crate::node::{EngineFacts, Health};

/// The scheduler's key for a node: the engine address, which is unique in the cluster.
/// (Engine IDs are not: cloned machines share them.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

impl NodeId {
    pub fn new(addr: impl Into<String>) -> Self {
        Self(addr.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Transport protocol of a host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// Parses Docker's protocol suffix (`tcp`, `udp`, `sctp`); empty means `tcp`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        })
    }
}

/// A host port: bound by a bridge-mode port binding, or exposed by a host-network
/// container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub port: u16,
    pub proto: Proto,
}

impl HostPort {
    pub fn tcp(port: u16) -> Self {
        Self {
            port,
            proto: Proto::Tcp,
        }
    }

    pub fn udp(port: u16) -> Self {
        Self {
            port,
            proto: Proto::Udp,
        }
    }

    /// Parses Docker's `80/tcp` (or bare `80`, meaning tcp).
    pub fn parse(s: &str) -> Option<Self> {
        let (port, proto) = s.split_once('/').unwrap_or((s, ""));
        Some(Self {
            port: port.parse().ok()?,
            proto: Proto::parse(proto)?,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

/// One container on a node, as the scheduler needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// As the engine lists them: `/web` (link aliases like `/other/web` are skipped).
    pub names: Vec<String>,
    /// The image as given at create (`redis:7`).
    pub image: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    pub state: String,
}

impl ContainerInfo {
    pub fn new(id: impl Into<String>, name: &str) -> Self {
        Self {
            id: id.into(),
            names: vec![format!("/{}", name.trim_start_matches('/'))],
            state: "running".into(),
            ..Self::default()
        }
    }

    #[must_use]
    pub fn image(mut self, image: &str, image_id: &str) -> Self {
        self.image = image.into();
        self.image_id = image_id.into();
        self
    }

    #[must_use]
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The container's own names, without the leading `/`, link aliases skipped.
    pub fn plain_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(|n| n.strip_prefix('/').unwrap_or(n))
            .filter(|n| !n.contains('/'))
    }
}

/// One image on a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub repo_tags: Vec<String>,
}

/// A network's scope: a local one exists on one engine only; a global one (overlay with
/// a KV store) exists on every node that sees it and never pulls placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    Local,
    Global,
}

/// One network on a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    pub id: String,
    pub scope: Scope,
}

/// One node's latest resource offer.
///
/// What a node says of itself (facts, labels, images, networks, volumes) is shared with
/// its earlier offers while it does not change: a node offers anew after each change of
/// its containers, and copying the rest each time was some forty strings an offer, and as
/// many compared by the scheduler to find them unchanged (`Arc`'s equality checks the
/// pointer first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    /// Unique key: the engine address.
    pub node: NodeId,
    /// Display name (the engine's `Name`), used for `node==` and for tie-breaking.
    pub name: String,
    /// The engine's `ID` (not unique across cloned machines).
    pub engine_id: String,
    pub addr: String,
    pub health: Health,
    /// The engine's facts: constraint keys (`storagedriver`, `kernelversion`, ...),
    /// `dockerd --label` labels and capacity (`NCPU`, `MemTotal`).
    pub facts: Arc<EngineFacts>,
    /// Sum over the node's containers of their CPU reservation, nano-CPUs
    /// (see [`container_reservation`]).
    pub reserved_cpu: u64,
    /// Sum over the node's containers of `HostConfig.Memory`, bytes.
    pub reserved_memory: u64,
    /// Host ports in use on the node.
    pub ports: Vec<HostPort>,
    /// Shared with the node's own container table, not copied from it.
    pub containers: Vec<Arc<ContainerInfo>>,
    pub images: Arc<Vec<ImageInfo>>,
    pub networks: Arc<Vec<NetworkInfo>>,
    /// Names of the volumes on the node.
    pub volumes: Arc<Vec<String>>,
}

impl Offer {
    /// A healthy, empty node whose name and address are `name` (tests, benches).
    pub fn new(name: &str) -> Self {
        Self {
            node: NodeId::new(name),
            name: name.into(),
            engine_id: format!("ID-{name}"),
            addr: name.into(),
            health: Health::Healthy,
            ..Self::default()
        }
    }

    #[must_use]
    pub fn health(mut self, health: Health) -> Self {
        self.health = health;
        self
    }

    #[must_use]
    pub fn label(mut self, key: &str, value: &str) -> Self {
        Arc::make_mut(&mut self.facts)
            .labels
            .insert(key.into(), value.into());
        self
    }

    /// Sets `NCPU` and `MemTotal`.
    #[must_use]
    pub fn capacity(mut self, ncpu: u32, mem_total: u64) -> Self {
        let facts = Arc::make_mut(&mut self.facts);
        facts.ncpu = ncpu;
        facts.mem_total = mem_total;
        self
    }

    #[must_use]
    pub fn reserved(mut self, cpu_nanos: u64, memory: u64) -> Self {
        self.reserved_cpu = cpu_nanos;
        self.reserved_memory = memory;
        self
    }

    #[must_use]
    pub fn port(mut self, port: HostPort) -> Self {
        self.ports.push(port);
        self
    }

    #[must_use]
    pub fn container(mut self, c: ContainerInfo) -> Self {
        self.containers.push(Arc::new(c));
        self
    }

    #[must_use]
    pub fn image(mut self, id: &str, tags: &[&str]) -> Self {
        Arc::make_mut(&mut self.images).push(ImageInfo {
            id: id.into(),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
        });
        self
    }

    #[must_use]
    pub fn network(mut self, name: &str, id: &str, scope: Scope) -> Self {
        Arc::make_mut(&mut self.networks).push(NetworkInfo {
            name: name.into(),
            id: id.into(),
            scope,
        });
        self
    }

    #[must_use]
    pub fn volume(mut self, name: &str) -> Self {
        Arc::make_mut(&mut self.volumes).push(name.into());
        self
    }
}

/// Nano-CPUs in one CPU.
pub const NANOS_PER_CPU: u64 = 1_000_000_000;

/// Counts the CPUs in a cpuset list such as `0-3,6`; `None` if malformed.
pub fn cpuset_count(cpuset: &str) -> Option<u64> {
    let mut n = 0u64;
    for part in cpuset.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<u64>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

/// What one container reserves: `(nano-CPUs, memory bytes)`. CPUs come from `NanoCpus`,
/// else from the `CpusetCpus` count; `CpuShares` is a relative weight, not a
/// reservation, and is ignored. The NodeActor uses this to sum `reserved_*`, and the
/// scheduler to read a request, so both count alike.
pub fn container_reservation(hc: &HostConfig) -> (u64, u64) {
    let nanos = hc.nano_cpus.filter(|n| *n > 0).map(|n| n as u64);
    let cpuset = hc
        .cpuset_cpus
        .as_deref()
        .and_then(cpuset_count)
        .filter(|n| *n > 0)
        .map(|n| n * NANOS_PER_CPU);
    let cpu = nanos.or(cpuset).unwrap_or(0);
    let mem = hc.memory.filter(|m| *m > 0).unwrap_or(0) as u64;
    (cpu, mem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets() {
        for (s, n) in [
            ("0", Some(1)),
            ("0-3", Some(4)),
            ("0-3,6", Some(5)),
            ("", Some(0)),
            ("3-1", None),
            ("x", None),
        ] {
            assert_eq!(cpuset_count(s), n, "{s}");
        }
    }

    #[test]
    fn reservation_ignores_cpu_shares() {
        let hc = HostConfig {
            cpu_shares: Some(512),
            memory: Some(1 << 30),
            ..Default::default()
        };
        assert_eq!(container_reservation(&hc), (0, 1 << 30));
        let hc = HostConfig {
            cpuset_cpus: Some("0-1".into()),
            ..Default::default()
        };
        assert_eq!(container_reservation(&hc), (2 * NANOS_PER_CPU, 0));
        let hc = HostConfig {
            nano_cpus: Some(1_500_000_000),
            cpuset_cpus: Some("0-3".into()),
            ..Default::default()
        };
        assert_eq!(container_reservation(&hc).0, 1_500_000_000);
    }

    #[test]
    fn host_ports() {
        assert_eq!(HostPort::parse("80"), Some(HostPort::tcp(80)));
        assert_eq!(HostPort::parse("53/udp"), Some(HostPort::udp(53)));
        assert_eq!(HostPort::parse("x/tcp"), None);
        assert_eq!(HostPort::parse("80/foo"), None);
    }
}
