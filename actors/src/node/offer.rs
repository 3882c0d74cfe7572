//! A node's resource offer for the scheduler, built from what the node publishes, and the
//! flow control that keeps one offer at a time on its way.

use super::NodeSnapshot;
use crate::scheduler::{HostPort, ImageInfo, NetworkInfo, NodeId, Offer, Scope, UpdateOffer};
use actix::Recipient;
use std::collections::BTreeSet;
use tokio::sync::oneshot;

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
        facts: facts.cloned().unwrap_or_default(),
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

/// Offers sent one at a time: while one is on its way to the scheduler, later changes only
/// mark the offer stale, and the newest goes when it has arrived. The scheduler keeps only
/// the latest offer per node, so a node never has more than one in its mailbox (at
/// start-up a thousand nodes change several times each), and `send` waits for room rather
/// than dropping one.
#[derive(Debug, Default)]
pub(crate) struct OfferFlow {
    out: Option<Recipient<UpdateOffer>>,
    in_flight: bool,
    /// The snapshot changed since the last offer was sent.
    stale: bool,
    /// Snapshots published so far, and how many of them the scheduler's offers covered.
    published: u64,
    offered: u64,
    /// `SyncOffer`s waiting for the scheduler to cover the count they name.
    waiters: Vec<(u64, oneshot::Sender<()>)>,
}

impl OfferFlow {
    pub fn to(out: Recipient<UpdateOffer>) -> Self {
        OfferFlow {
            out: Some(out),
            ..Self::default()
        }
    }

    /// A snapshot was published: its offer is due.
    pub fn published(&mut self) {
        self.published += 1;
        self.stale = true;
    }

    /// Where to send the offer of the latest snapshot, and how many snapshots it covers;
    /// `None` while one is on its way or none is due. With no scheduler, every snapshot
    /// counts as offered.
    pub fn next(&mut self) -> Option<(Recipient<UpdateOffer>, u64)> {
        let Some(out) = self.out.clone() else {
            self.delivered(self.published);
            return None;
        };
        if self.in_flight || !self.stale {
            return None;
        }
        self.stale = false;
        self.in_flight = true;
        Some((out, self.published))
    }

    /// The offer that covers `count` snapshots arrived, or the scheduler is gone (waiters
    /// are let go either way: there is nothing left to wait for).
    pub fn arrived(&mut self, count: u64) {
        self.in_flight = false;
        self.delivered(count);
    }

    fn delivered(&mut self, count: u64) {
        self.offered = self.offered.max(count);
        let covered = self.offered;
        let (done, waiting) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(want, _)| *want <= covered);
        self.waiters = waiting;
        for (_, tx) in done {
            let _ = tx.send(());
        }
    }

    /// A wait for the scheduler to hold an offer as new as what is published now; `None`
    /// when it already does (or there is no scheduler).
    pub fn wait(&mut self) -> Option<oneshot::Receiver<()>> {
        if self.out.is_none() || self.offered >= self.published {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push((self.published, tx));
        Some(rx)
    }
}
