//! The ClusterActor: starts a NodeActor per engine that discovery lists, stops the ones it no
//! longer lists, restarts any that stops on its own, and publishes the `ClusterView`.
//!
//! NodeActors are spread over a few arbiters (threads) so that thousands of engines use all
//! cores; each node's engine client is built on the thread that runs it, by the cluster's
//! `EngineMaker` (HTTP engines; tests give fake ones).
//!
//! Messages it takes: `SetEngines` (from discovery), `NodeStopped` (a NodeActor ended) and
//! `LayoutChanged` (a node's name, health or API version changed: publish a new view).

use super::index::ClusterIndex;
use super::view::{ClusterView, NodeHandle};
use crate::engine::{Engine, EngineAddr, HttpEngine, Timeouts};
use crate::events::{NodeChange, NodeChanged};
use crate::metrics;
use crate::node::{
    LayoutChanged, NodeActor, NodeConfig, NodeEvent, NodeSnapshot, NodeStopped, StopNode,
};
use crate::scheduler::{NodeId, RemoveNode, SchedulerActor};
use actix::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::watch;

/// How the cluster runs its nodes.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node: NodeConfig,
    pub timeouts: Timeouts,
    /// Threads the NodeActors run on.
    pub arbiters: usize,
    /// Engine connections that may be open at once (`--engine-connections`, see
    /// `engine::budget`); `None`: no bound. Set by whoever starts the process's first
    /// cluster, before any engine is dialed.
    pub engine_connections: Option<usize>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: NodeConfig::default(),
            timeouts: Timeouts::default(),
            arbiters: std::thread::available_parallelism().map_or(2, |n| n.get()),
            engine_connections: None,
        }
    }
}

/// Wait after a node's `LayoutChanged` before laying the cluster out, so a burst of
/// changes costs one new view (readers lay out for themselves meanwhile).
const LAYOUT_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(10);
/// How often the view is checked for a layout change no node reported.
const LAYOUT_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Builds the engine client of a node, on the thread that will run the node.
pub type EngineMaker = Arc<dyn Fn(EngineAddr, Timeouts) -> Rc<dyn Engine> + Send + Sync>;

/// Sent by discovery each time it reads the list of engines: the whole list, not a diff.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetEngines(pub Vec<EngineAddr>);

pub struct ClusterActor {
    config: ClusterConfig,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    wanted: BTreeSet<EngineAddr>,
    nodes: BTreeMap<EngineAddr, Arc<NodeHandle>>,
    index: Arc<ClusterIndex>,
    view: watch::Sender<Arc<ClusterView>>,
    events_out: Option<Recipient<NodeEvent>>,
    scheduler: Option<Addr<SchedulerActor>>,
    changes_out: Option<Recipient<NodeChanged>>,
    restarts: u64,
    engines: EngineMaker,
    /// A new layout is to be published (`LayoutChanged`).
    layout_due: bool,
}

impl ClusterActor {
    /// The actor and the receiver of the views it will publish.
    pub fn new(config: ClusterConfig) -> (Self, watch::Receiver<Arc<ClusterView>>) {
        let (tx, rx) = watch::channel(Arc::new(ClusterView::default()));
        let arbiters = (0..config.arbiters.max(1))
            .map(|_| Arbiter::new())
            .collect();
        (
            ClusterActor {
                config,
                arbiters,
                next_arbiter: 0,
                wanted: BTreeSet::new(),
                nodes: BTreeMap::new(),
                index: Arc::new(ClusterIndex::default()),
                view: tx,
                events_out: None,
                scheduler: None,
                changes_out: None,
                restarts: 0,
                layout_due: false,
                engines: Arc::new(|addr, timeouts| Rc::new(HttpEngine::for_node(addr, timeouts))),
            },
            rx,
        )
    }

    /// How node engine clients are made (tests give fake engines).
    pub fn engines_from(mut self, make: EngineMaker) -> Self {
        self.engines = make;
        self
    }

    /// Where every node sends its engine's events.
    pub fn events_to(mut self, out: Recipient<NodeEvent>) -> Self {
        self.events_out = Some(out);
        self
    }

    /// The scheduler every node sends its offers to, and that hears of removed nodes.
    pub fn scheduler(mut self, scheduler: Addr<SchedulerActor>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Who hears of nodes joining and leaving, and of every node's health changes.
    pub fn changes_to(mut self, out: Recipient<NodeChanged>) -> Self {
        self.changes_out = Some(out);
        self
    }

    fn report(&self, addr: &EngineAddr, change: NodeChange) {
        if let Some(out) = &self.changes_out {
            let msg = NodeChanged {
                addr: addr.clone(),
                change,
            };
            if out.try_send(msg).is_err() {
                tracing::debug!(node = %addr, "events hub full, node change not reported");
            }
        }
    }

    fn start_node(&mut self, addr: EngineAddr, ctx: &mut Context<Self>) {
        let arbiter = self.arbiters[self.next_arbiter % self.arbiters.len()].handle();
        self.next_arbiter += 1;
        let (tx, rx) = watch::channel(Arc::new(NodeSnapshot::pending(addr.clone())));
        let supervisor = ctx.address().recipient();
        let layout = ctx.address().recipient();
        let make = self.engines.clone();
        let events = self.events_out.clone();
        let offers = self.scheduler.clone().map(|s| s.recipient());
        let changes = self.changes_out.clone();
        let index = self.index.clone();
        let (node_config, timeouts, engine_addr) =
            (self.config.node.clone(), self.config.timeouts, addr.clone());
        let actor = NodeActor::start_in_arbiter(&arbiter, move |_| {
            let engine = make(engine_addr, timeouts);
            let mut node = NodeActor::new(engine, node_config, tx)
                .supervised_by(supervisor)
                .layout_to(layout)
                .indexed_in(index);
            if let Some(out) = events {
                node = node.events_to(out);
            }
            if let Some(out) = offers {
                node = node.offers_to(out);
            }
            if let Some(out) = changes {
                node = node.changes_to(out);
            }
            node
        });
        self.nodes.insert(
            addr.clone(),
            Arc::new(NodeHandle {
                addr,
                actor,
                state: rx,
            }),
        );
    }

    fn publish(&self) {
        let view = ClusterView::new(self.nodes.values().cloned().collect(), self.index.clone());
        self.view.send_replace(Arc::new(view));
    }
}

impl Actor for ClusterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        // A `LayoutChanged` a node could not deliver (this mailbox full) is made up for
        // here: readers lay the cluster out themselves meanwhile, which is right but slow.
        ctx.run_interval(LAYOUT_CHECK, |act, _| {
            if act.view.borrow().layout_is_stale() {
                act.publish();
            }
        });
    }
}

impl Handler<SetEngines> for ClusterActor {
    type Result = ();

    fn handle(&mut self, msg: SetEngines, ctx: &mut Context<Self>) {
        let _m = metrics::handling("cluster", "cluster", "SetEngines");
        let wanted: BTreeSet<EngineAddr> = msg.0.into_iter().collect();
        let gone: Vec<EngineAddr> = self.wanted.difference(&wanted).cloned().collect();
        let new: Vec<EngineAddr> = wanted.difference(&self.wanted).cloned().collect();
        for addr in &gone {
            if let Some(node) = self.nodes.remove(addr) {
                tracing::info!(node = %addr, "engine left discovery, stopping its node");
                // A full mailbox still gets the stop: the node is leaving either way.
                node.actor.do_send(StopNode);
                metrics::queued("node", addr);
                if let Some(s) = &self.scheduler {
                    // Same: the scheduler must forget the node even when busy.
                    s.do_send(RemoveNode(NodeId::new(addr.to_string())));
                    metrics::queued("scheduler", "scheduler");
                }
                metrics::actor_removed("node", addr);
                self.report(addr, NodeChange::Left);
            }
        }
        for addr in new {
            tracing::info!(node = %addr, "engine joined");
            self.report(&addr, NodeChange::Joined);
            self.start_node(addr, ctx);
        }
        self.wanted = wanted;
        self.publish();
    }
}

impl Handler<NodeStopped> for ClusterActor {
    type Result = ();

    fn handle(&mut self, msg: NodeStopped, ctx: &mut Context<Self>) {
        let _m = metrics::handling("cluster", "cluster", "NodeStopped");
        if msg.removed || !self.wanted.contains(&msg.addr) {
            return;
        }
        self.restarts += 1;
        metrics::actor_restarted("node", &msg.addr);
        tracing::warn!(node = %msg.addr, restarts = self.restarts, "node actor stopped, restarting it");
        self.nodes.remove(&msg.addr);
        self.start_node(msg.addr, ctx);
        self.publish();
    }
}

impl Handler<LayoutChanged> for ClusterActor {
    type Result = ();

    /// Publishes a view laid out anew, once for a burst of changes (at start-up a thousand
    /// nodes turn healthy within a second): the first message sets a short timer, and the
    /// view then published lays out every change so far.
    fn handle(&mut self, _: LayoutChanged, ctx: &mut Context<Self>) {
        let _m = metrics::handling("cluster", "cluster", "LayoutChanged");
        if self.layout_due {
            return;
        }
        self.layout_due = true;
        ctx.run_later(LAYOUT_DEBOUNCE, |act, _| {
            act.layout_due = false;
            if act.view.borrow().layout_is_stale() {
                act.publish();
            }
        });
    }
}
