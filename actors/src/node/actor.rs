//! The NodeActor: one engine's refresh loop, health, caches and event stream.
//!
//! Everything that can go wrong with an engine (refused connection, timeout, garbage)
//! ends here as a failed refresh of this node. Nothing here waits on another node, and the
//! actor never blocks: every engine call is a spawned future with its own timeout.

use super::events::EventDecoder;
use super::listing::{event_needs_list, ListOrder};
use super::messages::{
    InspectContainer, InspectImage, ListContainerSizes, NodeStopped, RefreshNode, RestartNode,
    StopNode, SyncContainer, SyncOffer,
};
use super::snapshot::{
    ContainerResources, ContainerTable, EngineFacts, NodeSnapshot, ObjectEntry, Reservation,
    ResourceMap, VolumeList,
};
use super::{offer_from, ContainerEntry, EngineEvent, HealthTracker};
use crate::cluster::ClusterIndex;
use crate::engine::{escape_param, query_escape, Engine, EngineAddr, EngineError};
use crate::events::{NodeChange, NodeChanged};
use crate::metrics;
use crate::scheduler::UpdateOffer;
use actix::prelude::*;
use bollard_stubs::models::{ContainerSummary, ImageSummary};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use rand::Rng;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How a NodeActor runs; one value shared by all nodes, from the CLI.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub refresh_min: Duration,
    pub refresh_max: Duration,
    pub failure_retry: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            refresh_min: Duration::from_secs(30),
            refresh_max: Duration::from_secs(60),
            failure_retry: 3,
        }
    }
}

/// Containers inspected at once per node to learn their reservations: one, so the node's
/// other connection stays free for what clients wait on (see `refresh`).
const INSPECT_CONCURRENCY: usize = 1;
/// Containers asked for in one filtered list.
const SYNC_BATCH: usize = 32;
/// Wait after an engine event before re-listing, so a burst of events costs one list.
const EVENT_DEBOUNCE: Duration = Duration::from_millis(50);
/// Wait before reconnecting a broken event stream when the engine still answers.
const EVENTS_RETRY: Duration = Duration::from_secs(1);

pub struct NodeActor {
    addr: EngineAddr,
    config: NodeConfig,
    engine: Rc<dyn Engine>,
    health: HealthTracker,
    published: watch::Sender<Arc<NodeSnapshot>>,
    supervisor: Option<Recipient<NodeStopped>>,
    /// Receives every engine event (the EventsHub), when there is one.
    events_out: Option<Recipient<NodeEvent>>,
    /// Receives this node's resource offer after every change (the SchedulerActor).
    offers_out: Option<Recipient<UpdateOffer>>,
    /// An offer is on its way to the scheduler.
    offer_in_flight: bool,
    /// The snapshot changed since the last offer was sent.
    offer_stale: bool,
    /// Snapshots published so far, and how many of them the scheduler's offers covered.
    published_count: u64,
    offered_count: u64,
    /// `SyncOffer`s waiting for the scheduler to cover the count they name.
    offer_waiters: Vec<(u64, tokio::sync::oneshot::Sender<()>)>,
    /// Told when the health changes (the EventsHub), when there is one.
    changes_out: Option<Recipient<NodeChanged>>,
    /// Where the front finds which node holds a container (the ClusterActor's).
    index: Option<Arc<ClusterIndex>>,
    inspect_cache: HashMap<String, Bytes>,
    image_cache: HashMap<String, Bytes>,
    /// What each known container holds; shared with the published snapshot until changed.
    resources: Arc<ResourceMap>,
    refreshing: bool,
    /// A refresh was asked for while one was under way.
    refresh_again: bool,
    next_refresh: Option<SpawnHandle>,
    /// Containers to list again, for the events that changed them.
    sync_pending: HashSet<String>,
    /// The timer that lists what is pending is set.
    sync_scheduled: bool,
    events_connected: bool,
    removed: bool,
    /// Which list has the last word on each container (answers come out of order).
    lists: ListOrder,
    /// Containers this actor created whose first list is on its way.
    creating: HashSet<String>,
    /// `timeNano` of the newest engine event seen, where a reconnected stream resumes.
    last_event_nano: i64,
}

/// An engine event, sent by a NodeActor to whoever fans events out (the EventsHub).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct NodeEvent {
    pub addr: EngineAddr,
    pub event: EngineEvent,
}

/// A container table and what follows from it, ready to publish.
struct ContainersUpdate {
    table: Arc<ContainerTable>,
    resources: Arc<ResourceMap>,
    reserved: Reservation,
}

impl ContainersUpdate {
    fn apply(self, s: &mut NodeSnapshot) {
        s.containers = self.table;
        s.resources = self.resources;
        s.reserved = self.reserved;
    }
}

/// The parts of a full refresh.
struct Refreshed {
    facts: EngineFacts,
    containers: Vec<ContainerSummary>,
    images: Vec<ImageSummary>,
    networks: Vec<ObjectEntry>,
    volumes: Vec<ObjectEntry>,
}

fn parse<T: serde::de::DeserializeOwned>(
    addr: &EngineAddr,
    path: &str,
    body: &[u8],
) -> Result<T, EngineError> {
    serde_json::from_slice(body).map_err(|e| EngineError::Garbage {
        addr: addr.to_string(),
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// `GET path`, parsed as `T`.
fn get_json<T: serde::de::DeserializeOwned>(
    engine: &dyn Engine,
    path: &'static str,
) -> impl std::future::Future<Output = Result<T, EngineError>> {
    let call = engine.get(path);
    let addr = engine.addr().clone();
    async move { parse(&addr, path, &call.await?) }
}

impl NodeActor {
    pub fn new(
        engine: Rc<dyn Engine>,
        config: NodeConfig,
        published: watch::Sender<Arc<NodeSnapshot>>,
    ) -> Self {
        let addr = engine.addr().clone();
        NodeActor {
            addr,
            health: HealthTracker::new(config.failure_retry),
            config,
            engine,
            published,
            supervisor: None,
            events_out: None,
            offers_out: None,
            offer_in_flight: false,
            offer_stale: false,
            published_count: 0,
            offered_count: 0,
            offer_waiters: Vec::new(),
            changes_out: None,
            index: None,
            inspect_cache: HashMap::new(),
            image_cache: HashMap::new(),
            resources: Arc::new(ResourceMap::default()),
            refreshing: false,
            refresh_again: false,
            next_refresh: None,
            sync_pending: HashSet::new(),
            sync_scheduled: false,
            events_connected: false,
            removed: false,
            lists: ListOrder::default(),
            creating: HashSet::new(),
            last_event_nano: 0,
        }
    }

    pub(super) fn engine(&self) -> Rc<dyn Engine> {
        self.engine.clone()
    }

    pub(super) fn addr(&self) -> &EngineAddr {
        &self.addr
    }

    /// Who to tell when this actor stops.
    pub fn supervised_by(mut self, supervisor: Recipient<NodeStopped>) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    /// Where to send the engine's events.
    pub fn events_to(mut self, out: Recipient<NodeEvent>) -> Self {
        self.events_out = Some(out);
        self
    }

    /// Where to report health changes.
    pub fn changes_to(mut self, out: Recipient<NodeChanged>) -> Self {
        self.changes_out = Some(out);
        self
    }

    fn report(&self, change: NodeChange) {
        if let Some(out) = &self.changes_out {
            let msg = NodeChanged {
                addr: self.addr.clone(),
                change,
            };
            if out.try_send(msg).is_err() {
                tracing::debug!(node = %self.addr, "events hub full, health change not reported");
            }
        }
    }

    /// The index to keep up to date with this node's containers and names.
    pub fn indexed_in(mut self, index: Arc<ClusterIndex>) -> Self {
        self.index = Some(index);
        self
    }

    /// Where to send this node's resource offers.
    pub fn offers_to(mut self, out: Recipient<UpdateOffer>) -> Self {
        self.offers_out = Some(out);
        self
    }

    /// Publishes a changed snapshot, and the offer that follows from it.
    fn publish(&mut self, ctx: &mut Context<Self>, change: impl FnOnce(&mut NodeSnapshot)) {
        let mut old = None;
        self.published.send_modify(|current| {
            let mut next = NodeSnapshot::clone(current);
            change(&mut next);
            old = Some(std::mem::replace(current, Arc::new(next)));
        });
        if let (Some(index), Some(old)) = (&self.index, old) {
            index.published(&self.addr, &old, &self.published.borrow());
        }
        self.published_count += 1;
        self.offer_stale = true;
        self.send_offer(ctx);
    }

    /// Sends the scheduler the offer of the latest snapshot, one at a time: while one is on
    /// its way, later changes only mark the offer stale, and the newest goes when it has
    /// arrived. The scheduler keeps only the latest offer per node, so a node never has
    /// more than one in its mailbox (at start-up a thousand nodes change several times
    /// each), and `send` waits for room rather than dropping one.
    fn send_offer(&mut self, ctx: &mut Context<Self>) {
        let Some(out) = self.offers_out.clone() else {
            self.offers_delivered(self.published_count);
            return;
        };
        if self.offer_in_flight || !self.offer_stale {
            return;
        }
        self.offer_stale = false;
        self.offer_in_flight = true;
        let covers = self.published_count;
        let offer = Arc::new(offer_from(&self.published.borrow()));
        metrics::queued("scheduler", "scheduler");
        ctx.spawn(out.send(UpdateOffer(offer)).into_actor(self).map(move |sent, act, ctx| {
            act.offer_in_flight = false;
            // Waiters are let go even when the scheduler is gone: there is nothing to wait for.
            act.offers_delivered(covers);
            if sent.is_err() {
                tracing::warn!(node = %act.addr, "the scheduler is gone; offer not delivered");
                return;
            }
            act.send_offer(ctx);
        }));
    }

    /// The scheduler holds an offer covering `count` published snapshots.
    fn offers_delivered(&mut self, count: u64) {
        self.offered_count = self.offered_count.max(count);
        let covered = self.offered_count;
        let (done, waiting) = std::mem::take(&mut self.offer_waiters)
            .into_iter()
            .partition(|(want, _)| *want <= covered);
        self.offer_waiters = waiting;
        for (_, tx) in done {
            let _ = tx.send(());
        }
    }

    fn next_delay(&self) -> Duration {
        let (min, max) = (
            self.config.refresh_min,
            self.config.refresh_max.max(self.config.refresh_min),
        );
        match self.health.failures() {
            0 => {
                // Jitter spreads the refreshes of many nodes over the interval.
                let spread = (max - min).as_millis() as u64;
                let extra = if spread == 0 {
                    0
                } else {
                    rand::thread_rng().gen_range(0..=spread)
                };
                min + Duration::from_millis(extra)
            }
            n => {
                // Back off while the engine fails, from min up to max.
                let factor = 1u32 << (n - 1).min(16);
                min.saturating_mul(factor).min(max)
            }
        }
    }

    fn schedule_refresh(&mut self, ctx: &mut Context<Self>, delay: Duration) {
        if let Some(h) = self.next_refresh.take() {
            ctx.cancel_future(h);
        }
        self.next_refresh = Some(ctx.run_later(delay, |act, ctx| {
            act.next_refresh = None;
            act.refresh(ctx);
        }));
    }

    fn refresh(&mut self, ctx: &mut Context<Self>) {
        if self.refreshing {
            // One already under way may have listed before the change that asks for this
            // one: run again as soon as it ends.
            self.refresh_again = true;
            return;
        }
        self.refreshing = true;
        self.refresh_again = false;
        let engine = self.engine.clone();
        let seq = self.lists.ask();
        let work = async move {
            // One call at a time, each body parsed as it arrives: the node's other
            // connection stays free for what clients wait on (creates, inspects), and at
            // start-up, when every node refreshes at once, each holds one connection's
            // buffers (~16 KB), not two.
            let info = get_json(&*engine, "/info").await?;
            let version = get_json(&*engine, "/version").await?;
            let containers = get_json(&*engine, "/containers/json?all=1").await?;
            let images = get_json(&*engine, "/images/json").await?;
            let networks: Vec<Box<RawValue>> = get_json(&*engine, "/networks").await?;
            let volumes: VolumeList = get_json(&*engine, "/volumes").await?;
            Ok::<_, EngineError>(Refreshed {
                facts: EngineFacts::from_bodies(info, version),
                containers,
                images,
                networks: networks.iter().map(|n| ObjectEntry::from_raw(n)).collect(),
                volumes: volumes
                    .volumes
                    .iter()
                    .map(|v| ObjectEntry::from_raw(v))
                    .collect(),
            })
        };
        let work = metrics::time_refresh(&self.addr, work);
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            act.refreshing = false;
            match result {
                Ok(r) => act.on_refreshed(r, seq, ctx),
                Err(e) => act.on_failed(e, ctx),
            }
            let delay = if act.refresh_again {
                Duration::ZERO
            } else {
                act.next_delay()
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
        self.image_cache.clear();
        // One publish for all of it: nobody may see the node healthy without its containers.
        let listed = self.take_list(r.containers, seq);
        let containers = listed
            .as_ref()
            .map(|(table, _)| self.containers_update(table.clone()));
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
        if let Some((_, unknown)) = listed {
            self.inspect_new(unknown, ctx);
        }
        if !self.events_connected {
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
        if changed.is_some() {
            self.report(NodeChange::Unhealthy { error: msg });
        }
    }

    /// Publishes a new container list; see `take_list`.
    fn apply_containers(&mut self, list: Vec<ContainerSummary>, seq: u64, ctx: &mut Context<Self>) {
        if let Some((table, unknown)) = self.take_list(list, seq) {
            self.publish_containers(table, ctx);
            self.inspect_new(unknown, ctx);
        }
    }

    /// Takes a full container list the engine gave (list number `seq`): forgets the caches
    /// of containers that are gone, and answers the table and the containers to inspect (to
    /// learn what they reserve). A container listed alone by a later list keeps what that
    /// list said. `None` when a later full list was already taken.
    fn take_list(
        &mut self,
        list: Vec<ContainerSummary>,
        seq: u64,
    ) -> Option<(Arc<ContainerTable>, Vec<String>)> {
        let newer = self.lists.take_full(seq)?;
        let table = if newer.is_empty() {
            ContainerTable::new(list)
        } else {
            let current = self.published.borrow().containers.clone();
            let mut entries: Vec<Arc<ContainerEntry>> = list
                .into_iter()
                .filter(|c| !newer.iter().any(|id| c.id.as_deref() == Some(id.as_str())))
                .map(|c| Arc::new(ContainerEntry::new(c)))
                .collect();
            entries.extend(newer.iter().filter_map(|id| current.shared(id).cloned()));
            ContainerTable::from_entries(entries)
        };
        if self.resources.keys().any(|id| table.by_id(id).is_none()) {
            Arc::make_mut(&mut self.resources).retain(|id, _| table.by_id(id).is_some());
        }
        self.inspect_cache.retain(|id, _| table.by_id(id).is_some());
        let unknown = self.without_resources(table.entries.iter().map(|e| e.id()));
        Some((Arc::new(table), unknown))
    }

    /// The containers among `ids` whose reservations are not known yet.
    fn without_resources<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Vec<String> {
        ids.filter(|id| !self.resources.contains_key(*id))
            .map(str::to_string)
            .collect()
    }

    fn publish_containers(&mut self, table: Arc<ContainerTable>, ctx: &mut Context<Self>) {
        let update = self.containers_update(table);
        self.publish(ctx, |s| update.apply(s));
    }

    /// The snapshot fields that follow from a container table.
    fn containers_update(&self, table: Arc<ContainerTable>) -> ContainersUpdate {
        let mut reserved = Reservation::default();
        for e in &table.entries {
            if let Some(r) = self.resources.get(e.id()) {
                reserved.nano_cpus += r.reservation.nano_cpus;
                reserved.memory += r.reservation.memory;
            }
        }
        ContainersUpdate {
            table,
            resources: self.resources.clone(),
            reserved,
        }
    }

    fn inspect_new(&mut self, ids: Vec<String>, ctx: &mut Context<Self>) {
        if ids.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        // Each body is read down to what the container holds as soon as it arrives: the
        // whole inspect body is cached only when a client asks for it, and holding every
        // body until the last arrived was ~100 KB a node at start-up.
        let work = stream::iter(ids)
            .map(move |id| {
                let call = engine.get(&format!("/containers/{id}/json"));
                async move {
                    let resources = call
                        .await
                        .ok()
                        .and_then(|b| ContainerResources::from_inspect(&b));
                    (id, resources)
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .filter_map(|(id, resources)| async move { Some((id, resources?)) })
            .collect::<Vec<_>>();
        ctx.spawn(work.into_actor(self).map(|results, act, ctx| {
            if !results.is_empty() {
                Arc::make_mut(&mut act.resources).extend(
                    results
                        .into_iter()
                        .map(|(id, r)| (Arc::<str>::from(id), Arc::new(r))),
                );
            }
            let table = act.published.borrow().containers.clone();
            act.publish_containers(table, ctx);
        }));
    }

    /// Lists container `id` again soon; the events of a burst cost one filtered list.
    fn list_later(&mut self, id: String, ctx: &mut Context<Self>) {
        self.sync_pending.insert(id);
        if !self.sync_scheduled {
            self.sync_scheduled = true;
            ctx.run_later(EVENT_DEBOUNCE, |act, ctx| act.list_pending(ctx));
        }
    }

    fn list_pending(&mut self, ctx: &mut Context<Self>) {
        self.sync_scheduled = false;
        let ids: Vec<String> = self.sync_pending.drain().collect();
        for batch in ids.chunks(SYNC_BATCH) {
            let list = self.list_ids(batch.to_vec());
            ctx.spawn(list);
        }
    }

    /// A create of container `id` succeeded and its list is on its way: what it reserves is
    /// known from the create body, and its `create` event needs no list of its own.
    pub(super) fn creating(&mut self, id: &str, resources: Option<ContainerResources>) {
        self.creating.insert(id.to_string());
        if let Some(r) = resources {
            Arc::make_mut(&mut self.resources).insert(Arc::from(id), Arc::new(r));
        }
    }

    /// The list that follows a create was taken.
    pub(super) fn created(&mut self, id: &str) {
        self.creating.remove(id);
    }

    /// Lists the containers `ids` (one filtered list) and records what the engine now shows
    /// for each: changed, or gone. Done when recorded.
    pub(super) fn list_ids(&mut self, ids: Vec<String>) -> ResponseActFuture<Self, ()> {
        let seq = self.lists.ask();
        let filter = serde_json::json!({ "id": ids }).to_string();
        let path = format!("/containers/json?all=1&filters={}", query_escape(&filter));
        let call = self.engine.get(&path);
        let addr = self.addr.clone();
        Box::pin(call.into_actor(self).map(move |result, act, ctx| {
            match result.and_then(|b| parse::<Vec<ContainerSummary>>(&addr, &path, &b)) {
                Ok(list) => act.take_listed(ids, list, seq, ctx),
                Err(e) => tracing::debug!(node = %act.addr, error = %e, "container list failed"),
            }
        }))
    }

    /// Records what list `seq` of the containers `ids` showed (the engine's ID filter also
    /// matches prefixes: only exact IDs count).
    fn take_listed(
        &mut self,
        ids: Vec<String>,
        mut list: Vec<ContainerSummary>,
        seq: u64,
        ctx: &mut Context<Self>,
    ) {
        let current = self.published.borrow().containers.clone();
        let (mut upserts, mut removals, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for id in ids {
            if !self.lists.take_one(&id, seq) {
                continue;
            }
            self.inspect_cache.remove(&id);
            let found = list
                .iter()
                .position(|c| c.id.as_deref() == Some(id.as_str()))
                .map(|i| list.swap_remove(i));
            match found {
                Some(summary) => upserts.push(ContainerEntry::new(summary)),
                None => {
                    if self.resources.contains_key(id.as_str()) {
                        Arc::make_mut(&mut self.resources).remove(id.as_str());
                    }
                    removals.push(id.clone());
                }
            }
            changed.push(id);
        }
        if changed.is_empty() {
            return;
        }
        let table = Arc::new(current.changed(upserts, &removals));
        let unknown = self.without_resources(
            changed
                .iter()
                .map(String::as_str)
                .filter(|id| table.by_id(id).is_some()),
        );
        self.publish_containers(table, ctx);
        self.inspect_new(unknown, ctx);
    }

    fn refresh_containers(&mut self, ctx: &mut Context<Self>) {
        let relist = self.relist();
        ctx.spawn(relist);
    }

    /// Lists the containers and publishes them; done when they are published.
    fn relist(&mut self) -> ResponseActFuture<Self, ()> {
        let call = self.engine.get("/containers/json?all=1");
        let addr = self.addr.clone();
        let seq = self.lists.ask();
        Box::pin(call.into_actor(self).map(move |result, act, ctx| {
            match result.and_then(|b| parse::<Vec<ContainerSummary>>(&addr, "/containers/json", &b))
            {
                Ok(list) => act.apply_containers(list, seq, ctx),
                Err(e) => tracing::debug!(node = %act.addr, error = %e, "container list failed"),
            }
        }))
    }

    fn connect_events(&mut self, ctx: &mut Context<Self>) {
        self.events_connected = true;
        // After a break, ask from just past the last event seen, so none is lost between
        // the old stream and the new one.
        let query = match self.last_event_nano {
            0 => String::new(),
            n => {
                let next = n + 1;
                format!(
                    "?since={}.{:09}",
                    next / 1_000_000_000,
                    next % 1_000_000_000
                )
            }
        };
        let open = self.engine.events(&query);
        ctx.spawn(open.into_actor(self).map(|result, act, ctx| match result {
            Ok(stream) => {
                let mut decoder = EventDecoder::default();
                let events = stream.flat_map(move |chunk| {
                    let evs = match chunk {
                        Ok(bytes) => decoder.push(&bytes).into_iter().map(Ok).collect(),
                        Err(e) => vec![Err(e)],
                    };
                    stream::iter(evs)
                });
                ctx.add_stream(events);
                // Anything that changed before the stream opened is picked up by one list.
                act.refresh_containers(ctx);
            }
            Err(e) => {
                tracing::debug!(node = %act.addr, error = %e, "event stream refused");
                act.events_connected = false;
            }
        }));
    }

    fn on_event(&mut self, ev: EngineEvent, ctx: &mut Context<Self>) {
        self.last_event_nano = self.last_event_nano.max(ev.time_nano);
        match ev.kind.as_str() {
            "container" => {
                let id = &ev.actor.id;
                let name = ev.actor.attributes.as_ref().and_then(|a| a.get("name"));
                let table = self.published.borrow().containers.clone();
                let ours = ev.action == "create" && self.creating.contains(id);
                if !ours && event_needs_list(&ev.action, table.by_id(id), name.map(String::as_str))
                {
                    self.inspect_cache.remove(id);
                    if ev.action == "update" {
                        // What it reserves changed: inspect it again once listed.
                        if self.resources.contains_key(id.as_str()) {
                            Arc::make_mut(&mut self.resources).remove(id.as_str());
                        }
                    }
                    self.list_later(id.clone(), ctx);
                }
            }
            "image" | "network" | "volume" => {
                self.image_cache.clear();
                self.schedule_refresh(ctx, EVENT_DEBOUNCE);
            }
            _ => {}
        }
        if let Some(out) = &self.events_out {
            let msg = NodeEvent {
                addr: self.addr.clone(),
                event: ev,
            };
            if out.try_send(msg).is_err() {
                tracing::debug!(node = %self.addr, "events hub full, event dropped");
            }
        }
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        self.refresh(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(index) = &self.index {
            index.forget(&self.addr, &self.published.borrow().containers);
        }
        if let Some(sup) = &self.supervisor {
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

impl StreamHandler<Result<EngineEvent, EngineError>> for NodeActor {
    fn handle(&mut self, item: Result<EngineEvent, EngineError>, ctx: &mut Context<Self>) {
        match item {
            Ok(ev) => self.on_event(ev, ctx),
            Err(e) => tracing::debug!(node = %self.addr, error = %e, "event stream error"),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The stream ended: the engine restarted, or went away. A refresh tells which, and
        // reconnects the stream when the engine answers again.
        self.events_connected = false;
        if !self.removed {
            metrics::node_events_reconnect(&self.addr);
            self.schedule_refresh(ctx, EVENTS_RETRY.min(self.config.refresh_min));
        }
    }
}

impl Handler<RefreshNode> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: RefreshNode, ctx: &mut Context<Self>) {
        let _m = metrics::handling("node", &self.addr, "RefreshNode");
        self.schedule_refresh(ctx, Duration::ZERO);
    }
}

impl Handler<InspectContainer> for NodeActor {
    type Result = ResponseActFuture<Self, Result<Bytes, EngineError>>;

    fn handle(&mut self, msg: InspectContainer, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "InspectContainer");
        if let Some(body) = self.inspect_cache.get(&msg.id) {
            let body = body.clone();
            return Box::pin(async move { Ok(body) }.into_actor(self));
        }
        let call = self
            .engine
            .get(&format!("/containers/{}/json", escape_param(&msg.id)));
        Box::pin(call.into_actor(self).map(move |result, act, _| {
            if let Ok(body) = &result {
                act.inspect_cache.insert(msg.id, body.clone());
            }
            result
        }))
    }
}

impl Handler<InspectImage> for NodeActor {
    type Result = ResponseActFuture<Self, Result<Bytes, EngineError>>;

    fn handle(&mut self, msg: InspectImage, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "InspectImage");
        if let Some(body) = self.image_cache.get(&msg.name) {
            let body = body.clone();
            return Box::pin(async move { Ok(body) }.into_actor(self));
        }
        let call = self
            .engine
            .get(&format!("/images/{}/json", escape_param(&msg.name)));
        Box::pin(call.into_actor(self).map(move |result, act, _| {
            if let Ok(body) = &result {
                act.image_cache.insert(msg.name, body.clone());
            }
            result
        }))
    }
}

impl Handler<ListContainerSizes> for NodeActor {
    type Result = ResponseFuture<Result<HashMap<String, (i64, i64)>, EngineError>>;

    fn handle(&mut self, _: ListContainerSizes, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "ListContainerSizes");
        let path = "/containers/json?all=1&size=1";
        let call = self.engine.get(path);
        let addr = self.addr.clone();
        Box::pin(async move {
            let list: Vec<ContainerSummary> = parse(&addr, path, &call.await?)?;
            Ok(list
                .into_iter()
                .filter_map(|c| {
                    Some((c.id?, (c.size_rw.unwrap_or(0), c.size_root_fs.unwrap_or(0))))
                })
                .collect())
        })
    }
}

impl Handler<SyncContainer> for NodeActor {
    type Result = ResponseActFuture<Self, ()>;

    /// Lists the one container (a node of thousands is not listed whole for each start).
    fn handle(&mut self, msg: SyncContainer, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "SyncContainer");
        self.list_ids(vec![msg.id])
    }
}

impl Handler<SyncOffer> for NodeActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: SyncOffer, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "SyncOffer");
        if self.offers_out.is_none() || self.offered_count >= self.published_count {
            return Box::pin(async {});
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.offer_waiters.push((self.published_count, tx));
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<RestartNode> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: RestartNode, ctx: &mut Context<Self>) {
        let _m = metrics::handling("node", &self.addr, "RestartNode");
        ctx.stop();
    }
}

impl Handler<StopNode> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: StopNode, ctx: &mut Context<Self>) {
        let _m = metrics::handling("node", &self.addr, "StopNode");
        self.removed = true;
        ctx.stop();
    }
}
