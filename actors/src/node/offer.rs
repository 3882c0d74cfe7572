//! A node's resource offer for the scheduler, built from what the node publishes, and the
//! flow control that keeps one offer at a time on its way.

use super::snapshot::ObjectEntry;
use super::NodeSnapshot;
use crate::scheduler::{HostPort, ImageInfo, NetworkInfo, NodeId, Offer, Scope, UpdateOffer};
use actix::Recipient;
use bollard_stubs::models::ImageSummary;
use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use tokio::sync::oneshot;

/// Builds a node's offers: what the node says of itself is shared from one offer to the
/// next while the snapshot's parts it comes from are the same (see [`Offer`]).
#[derive(Debug, Default)]
pub(crate) struct OfferParts {
    images: Built<Vec<ImageSummary>, Vec<ImageInfo>>,
    networks: Built<Vec<ObjectEntry>, Vec<NetworkInfo>>,
    volumes: Built<Vec<ObjectEntry>, Vec<String>>,
}

/// A part of the last offer, with the snapshot's part it was built from: held weakly, so a
/// snapshot's part that is replaced is freed (a weak pointer keeps only its address, which
/// is all the comparison needs).
type Built<S, T> = Option<(Weak<S>, Arc<T>)>;

/// `build(from)`, or what it gave last if `from` is the very part it was given then.
fn shared<S, T>(last: &mut Built<S, T>, from: &Arc<S>, build: impl FnOnce(&S) -> T) -> Arc<T> {
    match last {
        Some((source, built)) if std::ptr::eq(source.as_ptr(), Arc::as_ptr(from)) => built.clone(),
        _ => {
            let built = Arc::new(build(from));
            *last = Some((Arc::downgrade(from), built.clone()));
            built
        }
    }
}

impl OfferParts {
    /// The offer of the node `snapshot` describes.
    ///
    /// Only containers whose inspect is known are offered. The scheduler drops a
    /// reservation when the offer shows its container, so a container listed before its
    /// reservation is counted here would let the scheduler book that CPU and memory twice.
    pub fn offer(&mut self, snapshot: &NodeSnapshot) -> Offer {
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
        let facts = snapshot.facts.clone().unwrap_or_default();
        Offer {
            node: NodeId::new(snapshot.addr.to_string()),
            name: snapshot.engine_name(),
            engine_id: facts.id.clone(),
            addr: snapshot.addr.to_string(),
            health: snapshot.health,
            facts,
            reserved_cpu: snapshot.reserved.nano_cpus.max(0) as u64,
            reserved_memory: snapshot.reserved.memory.max(0) as u64,
            ports: ports.into_iter().collect(),
            containers,
            images: shared(&mut self.images, &snapshot.images, |images| {
                images
                    .iter()
                    .map(|i| ImageInfo {
                        id: i.id.clone(),
                        repo_tags: i.repo_tags.clone(),
                    })
                    .collect()
            }),
            networks: shared(&mut self.networks, &snapshot.networks, |networks| {
                networks
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
                    .collect()
            }),
            volumes: shared(&mut self.volumes, &snapshot.volumes, |volumes| {
                volumes.iter().map(|v| v.name.clone()).collect()
            }),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineAddr;

    #[test]
    fn what_did_not_change_is_shared_between_offers() {
        let addr: EngineAddr = "127.0.0.1:2375".parse().expect("an address");
        let mut snapshot = NodeSnapshot::pending(addr);
        snapshot.images = Arc::new(vec![ImageSummary {
            id: "sha256:1".into(),
            repo_tags: vec!["busybox:latest".into()],
            ..Default::default()
        }]);
        let mut parts = OfferParts::default();
        let first = parts.offer(&snapshot);
        let second = parts.offer(&snapshot);
        assert!(Arc::ptr_eq(&first.images, &second.images));
        assert!(Arc::ptr_eq(&first.networks, &second.networks));
        assert_eq!(first, second);
        snapshot.images = Arc::new(Vec::new());
        let third = parts.offer(&snapshot);
        assert!(third.images.is_empty(), "a new image list is offered anew");
        assert!(Arc::ptr_eq(&first.volumes, &third.volumes));
    }
}
