//! A node's resource offer for the scheduler, built from what the node publishes.

use super::NodeSnapshot;
use crate::scheduler::{EngineFacts, HostPort, ImageInfo, NetworkInfo, NodeId, Offer, Scope};
use std::collections::BTreeSet;

/// The offer of the node `snapshot` describes.
///
/// Only containers whose inspect is known are offered. The scheduler drops a reservation
/// when the offer shows its container, so a container listed before its reservation is
/// counted here would let the scheduler book that CPU and memory twice.
pub fn offer_from(snapshot: &NodeSnapshot) -> Offer {
    let facts = snapshot.facts.as_deref();
    let mut ports: BTreeSet<HostPort> = BTreeSet::new();
    let containers = snapshot
        .containers
        .entries
        .iter()
        .filter_map(|e| {
            let resources = snapshot.resources.get(e.id())?;
            ports.extend(resources.host_ports.iter().copied());
            Some(e.info.clone())
        })
        .collect();
    Offer {
        node: NodeId::new(snapshot.addr.to_string()),
        name: snapshot.engine_name(),
        engine_id: facts.map(|f| f.id.clone()).unwrap_or_default(),
        addr: snapshot.addr.to_string(),
        health: snapshot.health,
        labels: facts.map(|f| f.labels.clone()).unwrap_or_default(),
        facts: facts
            .map(|f| EngineFacts {
                storage_driver: f.storage_driver.clone(),
                kernel_version: f.kernel_version.clone(),
                operating_system: f.operating_system.clone(),
                os_type: f.os_type.clone(),
                ncpu: f.ncpu.max(0) as u32,
                mem_total: f.mem_total.max(0) as u64,
            })
            .unwrap_or_default(),
        reserved_cpu: snapshot.reserved.nano_cpus.max(0) as u64,
        reserved_memory: snapshot.reserved.memory.max(0) as u64,
        ports: ports.into_iter().collect(),
        containers,
        images: snapshot
            .images
            .iter()
            .map(|i| ImageInfo {
                id: i.id.clone(),
                repo_tags: i.repo_tags.clone(),
            })
            .collect(),
        networks: snapshot
            .networks
            .iter()
            .map(|n| NetworkInfo {
                name: n.name.clone(),
                id: n.id.clone(),
                scope: if n.scope == "local" || n.scope.is_empty() {
                    Scope::Local
                } else {
                    Scope::Global
                },
            })
            .collect(),
        volumes: snapshot.volumes.iter().map(|v| v.name.clone()).collect(),
    }
}
