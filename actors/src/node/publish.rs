//! How a node shows what it knows: each change makes a new immutable snapshot, sent through
//! the node's `watch` channel, and the cluster's index is told what changed (containers
//! that came or went, and whether the node's name, health or API version changed, which
//! the ClusterActor lays the cluster out by).

use super::messages::LayoutChanged;
use super::snapshot::NodeSnapshot;
use crate::cluster::ClusterIndex;
use crate::engine::EngineAddr;
use actix::Recipient;
use std::sync::Arc;
use tokio::sync::watch;

pub(crate) struct Publisher {
    addr: EngineAddr,
    sender: watch::Sender<Arc<NodeSnapshot>>,
    /// Where the front finds which node holds a container (the ClusterActor's).
    index: Option<Arc<ClusterIndex>>,
    /// Told when the node's name, health or API version changed (the ClusterActor).
    layout_out: Option<Recipient<LayoutChanged>>,
}

impl Publisher {
    pub fn new(addr: EngineAddr, sender: watch::Sender<Arc<NodeSnapshot>>) -> Self {
        Publisher {
            addr,
            sender,
            index: None,
            layout_out: None,
        }
    }

    pub fn index(&mut self, index: Arc<ClusterIndex>) {
        self.index = Some(index);
    }

    pub fn layout_to(&mut self, out: Recipient<LayoutChanged>) {
        self.layout_out = Some(out);
    }

    /// The snapshot published last.
    pub fn current(&self) -> Arc<NodeSnapshot> {
        self.sender.borrow().clone()
    }

    /// Publishes the last snapshot as `change` leaves it.
    pub fn publish(&self, change: impl FnOnce(&mut NodeSnapshot)) {
        let mut old = None;
        self.sender.send_modify(|current| {
            let mut next = NodeSnapshot::clone(current);
            change(&mut next);
            old = Some(std::mem::replace(current, Arc::new(next)));
        });
        let (Some(index), Some(old)) = (&self.index, old) else {
            return;
        };
        let layout_changed = index.published(&self.addr, &old, &self.sender.borrow());
        if let (true, Some(out)) = (layout_changed, &self.layout_out) {
            // Dropped when the cluster's mailbox is full: readers then lay the cluster out
            // themselves until the next change gets through (see `ClusterView::layout`).
            let _ = out.try_send(LayoutChanged);
        }
    }

    /// The node stops: its containers leave the index (a restarted node indexes them again).
    pub fn withdraw(&self) {
        if let Some(index) = &self.index {
            index.forget(&self.addr, &self.sender.borrow().containers);
        }
    }
}
