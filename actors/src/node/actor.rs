//! The NodeActor: one engine's state machine. It decides when to refresh and when to probe,
//! moves the node between pending, healthy and unhealthy, and hands the engine's answers to
//! the parts that keep them: the container book (`containers`), the caches (`caches`), the
//! publisher (`publish`), the offer flow (`offer`) and the event cursor (`events`). Its
//! message handlers are in `actor/handlers.rs`, the upkeep of its container table (lists
//! and inspects) in `actor/relist.rs`, its event stream in `actor/stream.rs`.
//!
//! Everything that can go wrong with an engine (refused connection, timeout, garbage) ends
//! here as a failed refresh of this node. Nothing here waits on another node, and the actor
//! never blocks: every engine call is a spawned future with its own timeout. When the node
//! turns unhealthy every connection to its engine is cut (`engine::sever`), so work in
//! flight there (which may have a long timeout or none) ends with it, and new work is
//! refused (`refuse_work`).

mod handlers;
mod relist;
mod stream;

use super::caches::Caches;
use super::containers::ContainerBook;
use super::events::{EngineEvent, EventCursor};
use super::health::HealthTracker;
use super::messages::{LayoutChanged, NodeStopped};
use super::offer::{OfferFlow, OfferParts};
use super::publish::Publisher;
use super::refresh::{self, NodeConfig, Refreshed};
use super::snapshot::NodeSnapshot;
use super::Health;
use crate::cluster::ClusterIndex;
use crate::engine::{Engine, EngineAddr, EngineError};
use crate::events::{NodeChange, NodeChanged};
use crate::metrics;
use crate::scheduler::UpdateOffer;
use actix::dev::SendError;
use actix::prelude::*;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Containers inspected at once per node to learn their reservations: one, so the node's
/// other connection stays free for what clients wait on (see `refresh`).
const INSPECT_CONCURRENCY: usize = 1;
/// Containers asked for in one filtered list.
const SYNC_BATCH: usize = 32;
/// Wait after an engine event before re-listing, so a burst of events costs one list.
const EVENT_DEBOUNCE: Duration = Duration::from_millis(50);
/// Wait before reconnecting a broken event stream when the engine still answers.
const EVENTS_RETRY: Duration = Duration::from_secs(1);

/// The engine events of one read of a node's event stream, in the engine's order, sent by
/// the NodeActor's stream to whoever fans events out (the EventsHub): one message per read,
/// not per event. Answers nothing.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct NodeEvent {
    pub addr: EngineAddr,
    pub events: Vec<EngineEvent>,
}

/// Where a node's news goes, each when there is someone to tell.
#[derive(Default)]
struct Outlets {
    /// Told when this actor stops (the ClusterActor, which restarts it).
    supervisor: Option<Recipient<NodeStopped>>,
    /// Receives every engine event (the EventsHub).
    events: Option<Recipient<NodeEvent>>,
    /// Told when the health changes (the EventsHub).
    changes: Option<Recipient<NodeChanged>>,
}

/// Where the refresh loop stands.
#[derive(Default)]
struct RefreshLoop {
    running: bool,
    /// A refresh was asked for while one was under way.
    again: bool,
    next: Option<SpawnHandle>,
    /// While unhealthy: a probe is scheduled or under way.
    probing: bool,
    /// Whether the last probe was answered.
    probe_answered: bool,
}

pub struct NodeActor {
    addr: EngineAddr,
    config: NodeConfig,
    engine: Rc<dyn Engine>,
    health: HealthTracker,
    refresh: RefreshLoop,
    publisher: Publisher,
    offers: OfferFlow,
    offer_parts: OfferParts,
    outlets: Outlets,
    containers: ContainerBook,
    caches: Caches,
    events: EventCursor,
    /// Stopped by `StopNode`: the node left discovery and is not to be restarted.
    removed: bool,
}

impl NodeActor {
    pub fn new(
        engine: Rc<dyn Engine>,
        config: NodeConfig,
        published: watch::Sender<Arc<NodeSnapshot>>,
    ) -> Self {
        let addr = engine.addr().clone();
        NodeActor {
            publisher: Publisher::new(addr.clone(), published),
            addr,
            health: HealthTracker::new(config.failure_retry),
            config,
            engine,
            refresh: RefreshLoop::default(),
            offers: OfferFlow::default(),
            offer_parts: OfferParts::default(),
            outlets: Outlets::default(),
            containers: ContainerBook::default(),
            caches: Caches::default(),
            events: EventCursor::default(),
            removed: false,
        }
    }

    pub(super) fn engine(&self) -> Rc<dyn Engine> {
        self.engine.clone()
    }

    pub(super) fn addr(&self) -> &EngineAddr {
        &self.addr
    }

    /// The engine's name, or its address while it never answered.
    fn shown_name(&self) -> String {
        match &self.publisher.current().facts {
            Some(f) if !f.name.is_empty() => f.name.clone(),
            _ => self.addr.to_string(),
        }
    }

    /// Refuses work for the engine (a create, a pull, an object call) while the node is
    /// unhealthy: the scheduler and the front stop sending it once they see the mark, and
    /// this answers what was sent before they saw it at once, instead of on a connection
    /// to a frozen engine. Nothing reached the engine, so a create is tried elsewhere.
    pub(super) fn refuse_work(&self) -> Result<(), EngineError> {
        if self.health.state() != Health::Unhealthy {
            return Ok(());
        }
        let last = self.publisher.current().last_error.clone();
        Err(EngineError::Connect {
            addr: self.addr.to_string(),
            reason: format!(
                "node {} is unhealthy: {}",
                self.shown_name(),
                last.as_deref().unwrap_or("no answer")
            ),
        })
    }

    /// Who to tell when this actor stops.
    pub fn supervised_by(mut self, supervisor: Recipient<NodeStopped>) -> Self {
        self.outlets.supervisor = Some(supervisor);
        self
    }

    /// Who to tell when the node's name, health or API version changed.
    pub fn layout_to(mut self, out: Recipient<LayoutChanged>) -> Self {
        self.publisher.layout_to(out);
        self
    }

    /// Where to send the engine's events.
    pub fn events_to(mut self, out: Recipient<NodeEvent>) -> Self {
        self.outlets.events = Some(out);
        self
    }

    /// Where to report health changes.
    pub fn changes_to(mut self, out: Recipient<NodeChanged>) -> Self {
        self.outlets.changes = Some(out);
        self
    }

    /// The index to keep up to date with this node's containers and names.
    pub fn indexed_in(mut self, index: Arc<ClusterIndex>) -> Self {
        self.publisher.index(index);
        self
    }

    /// Where to send this node's resource offers.
    pub fn offers_to(mut self, out: Recipient<UpdateOffer>) -> Self {
        self.offers = OfferFlow::to(out);
        self
    }

    fn report(&self, change: NodeChange) {
        if let Some(out) = &self.outlets.changes {
            let msg = NodeChanged {
                addr: self.addr.clone(),
                change,
            };
            // Not waited for: the actor must not stall on the hub. A lost health event is
            // counted; the node's health itself is in its snapshot either way.
            match out.try_send(msg) {
                Ok(()) => {}
                Err(SendError::Full(_)) => {
                    metrics::event_dropped("hub_full");
                    tracing::debug!(node = %self.addr, "events hub full, health change not reported");
                }
                Err(SendError::Closed(_)) => metrics::event_dropped("hub_stopped"),
            }
        }
    }

    /// Publishes a changed snapshot, and the offer that follows from it.
    fn publish(&mut self, ctx: &mut Context<Self>, change: impl FnOnce(&mut NodeSnapshot)) {
        self.publisher.publish(change);
        self.offers.published();
        self.send_offer(ctx);
    }

    /// Sends the scheduler the offer of the latest snapshot, one at a time (`OfferFlow`).
    fn send_offer(&mut self, ctx: &mut Context<Self>) {
        let Some((out, covers)) = self.offers.next() else {
            return;
        };
        let offer = Arc::new(self.offer_parts.offer(&self.publisher.current()));
        metrics::queued("scheduler", "scheduler");
        ctx.spawn(out.send(UpdateOffer(offer)).into_actor(self).map(move |sent, act, ctx| {
            act.offers.arrived(covers);
            if sent.is_err() {
                tracing::warn!(node = %act.addr, "the scheduler is gone; offer not delivered");
                return;
            }
            act.send_offer(ctx);
        }));
    }

    fn schedule_refresh(&mut self, ctx: &mut Context<Self>, delay: Duration) {
        if let Some(h) = self.refresh.next.take() {
            ctx.cancel_future(h);
        }
        self.refresh.next = Some(ctx.run_later(delay, |act, ctx| {
            act.refresh.next = None;
            act.run_refresh(ctx);
        }));
    }

    fn run_refresh(&mut self, ctx: &mut Context<Self>) {
        if self.refresh.running {
            // One already under way may have listed before the change that asks for this
            // one: run again as soon as it ends.
            self.refresh.again = true;
            return;
        }
        self.refresh.running = true;
        self.refresh.again = false;
        let engine = self.engine.clone();
        let seq = self.containers.ask();
        let work = metrics::time_refresh(&self.addr, async move { refresh::fetch(&*engine).await });
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            act.refresh.running = false;
            match result {
                Ok(r) => act.on_refreshed(r, seq, ctx),
                Err(e) => act.on_failed(e, ctx),
            }
            let delay = if act.refresh.again {
                Duration::ZERO
            } else {
                refresh::next_delay(&act.config, act.health.failures())
            };
            act.schedule_refresh(ctx, delay);
        }));
    }

    fn on_refreshed(&mut self, r: Refreshed, seq: u64, ctx: &mut Context<Self>) {
        let previous = self.health.state();
        let changed = self.health.on_success();
        if let Some(state) = changed {
            tracing::info!(node = %self.addr, name = %r.facts.name, health = %state, "node health changed");
        }
        let health = self.health.state();
        let facts = Arc::new(r.facts);
        let images = Arc::new(r.images);
        let (networks, volumes) = (Arc::new(r.networks), Arc::new(r.volumes));
        self.caches.forget_images();
        // One publish for all of it: nobody may see the node healthy without its containers.
        let taken = self.take_full(r.containers, seq);
        let containers = taken
            .as_ref()
            .map(|t| self.containers.update(t.table.clone()));
        self.publish(ctx, |s| {
            s.health = health;
            s.failures = 0;
            s.last_error = None;
            s.last_update = Some(SystemTime::now());
            s.facts = Some(facts);
            s.images = images;
            s.networks = networks;
            s.volumes = volumes;
            if let Some(c) = containers {
                c.apply(s);
            }
        });
        // Reported after the publish, so the hub reads the node's name and ID with it.
        if changed.is_some() {
            self.report(NodeChange::Healthy { previous });
        }
        if let Some(t) = taken {
            self.inspect_new(t.unknown, ctx);
        }
        if !self.events.connected() {
            self.connect_events(ctx);
        }
    }

    fn on_failed(&mut self, e: EngineError, ctx: &mut Context<Self>) {
        let changed = self.health.on_failure();
        if let Some(state) = changed {
            tracing::warn!(node = %self.addr, health = %state, error = %e, "node health changed");
        } else {
            tracing::debug!(node = %self.addr, error = %e, "refresh failed");
        }
        let (health, failures) = (self.health.state(), self.health.failures());
        let msg = e.to_string();
        self.publish(ctx, |s| {
            s.health = health;
            s.failures = failures;
            s.last_error = Some(msg.clone());
        });
        if changed == Some(Health::Unhealthy) {
            // Work in flight on the engine (creates, waits, logs, attaches: no timeout of
            // their own ends them soon) ends now, not when the engine answers.
            crate::engine::sever(&self.addr, &self.shown_name(), &msg);
        }
        if changed.is_some() {
            self.report(NodeChange::Unhealthy { error: msg });
        }
        if health == Health::Unhealthy {
            if changed.is_some() {
                self.refresh.probe_answered = false;
            }
            if !self.refresh.probing {
                self.refresh.probing = true;
                ctx.run_later(refresh::probe_delay(&self.config), |act, ctx| {
                    act.probe(ctx)
                });
            }
        }
    }

    /// Asks an unhealthy engine for `/_ping` until the node is healthy again. The first
    /// answer after silence refreshes the node at once, rather than after the longest
    /// back-off, so calls are routed to it again as soon as it can take them.
    fn probe(&mut self, ctx: &mut Context<Self>) {
        if self.health.state() != Health::Unhealthy {
            self.refresh.probing = false;
            return;
        }
        let ping = self.engine.get("/_ping");
        ctx.spawn(ping.into_actor(self).map(|answer, act, ctx| {
            let answered = answer.is_ok();
            if answered && !act.refresh.probe_answered {
                tracing::info!(node = %act.addr, "unhealthy engine answers again, refreshing it");
                act.schedule_refresh(ctx, Duration::ZERO);
            }
            act.refresh.probe_answered = answered;
            ctx.run_later(refresh::probe_delay(&act.config), |act, ctx| act.probe(ctx));
        }));
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        self.run_refresh(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.publisher.withdraw();
        if let Some(sup) = &self.outlets.supervisor {
            let msg = NodeStopped {
                addr: self.addr.clone(),
                removed: self.removed,
            };
            match sup.try_send(msg) {
                Ok(()) => metrics::queued("cluster", "cluster"),
                Err(e) => {
                    tracing::warn!(node = %self.addr, error = %e, "could not tell the cluster this node stopped")
                }
            }
        }
    }
}
