//! The Rescheduler actor: every `tick` it reads the cluster view, notes since when each
//! node is unhealthy, keeps the inspect of every `on-node-failure` container of the
//! healthy nodes (the config it will need once their node is down and cannot be asked),
//! asks the planner what to do, and runs the jobs in the background, one per swarm id.
//!
//! It acts only while it holds a ledger: from the start with one manager; with replicated
//! managers the daemon sends [`Lead`] (with the etcd ledger of the term) when this manager
//! becomes primary and [`Follow`] when it steps down, which also cancels the jobs in
//! flight (their claims go with the term's lease). A replica keeps reading the view and
//! the configs all along, so a new primary can move the containers of a node that failed
//! with the old primary. Otherwise it only reads the view (a watch channel) and acts through
//! the create flow and the NodeActors. It polls the view rather than being told of health
//! changes because a grace period has to be timed anyway, and a poll of a watch channel
//! costs a borrow per node.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::watch;

use super::jobs::{clear_stale, move_container, MoveOutcome, StaleOutcome};
use super::ledger::Ledger;
use super::plan::{plan, Action, SeenNode, Watched};
use super::LABEL_RESCHEDULED_FROM;
use crate::cluster::{ClusterView, NodeRead};
use crate::create::{ClusterNodes, CreateFlow, FlowConfig, Nodes};
use crate::events::EmitEvent;
use crate::metrics;
use crate::node::{Health, InspectContainer};
use crate::scheduler::{
    NodeId, ReschedulePolicy, SchedulerActor, LABEL_RESCHEDULE, LABEL_SWARM_ID,
};

/// `--reschedule-grace` when not given: longer than an engine restart or a short network
/// blip, so a node that comes back at once keeps its containers.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How the rescheduler runs; one value from the CLI.
#[derive(Debug, Clone)]
pub struct ReschedulerConfig {
    /// How long a node stays unhealthy before its containers are moved.
    pub grace: Duration,
    /// How often the view is read.
    pub tick: Duration,
    /// Wait before a failed move (or cleanup) of one container is tried again.
    pub retry_after: Duration,
    /// Jobs at once (and so started per tick): creates go through the one scheduler, the
    /// engine calls run side by side.
    pub max_jobs: usize,
    /// Inspects asked for at once (and so per tick: 32 a second reads the configs of a
    /// thousand containers in half a minute after a start).
    pub max_fetches: usize,
    pub flow: FlowConfig,
}

impl Default for ReschedulerConfig {
    fn default() -> Self {
        ReschedulerConfig {
            grace: DEFAULT_GRACE,
            tick: Duration::from_secs(1),
            retry_after: Duration::from_secs(10),
            max_jobs: 32,
            max_fetches: 32,
            flow: FlowConfig::default(),
        }
    }
}

/// A container's create config, kept while its node is up.
struct Kept {
    /// The name it had when fetched: a rename fetches it again.
    name: String,
    inspect: Bytes,
}

pub struct Rescheduler {
    config: ReschedulerConfig,
    view: watch::Receiver<Arc<ClusterView>>,
    nodes: Rc<dyn Nodes>,
    flow: Rc<CreateFlow>,
    /// `None`: a replica, which watches and does not act.
    ledger: Option<Rc<dyn Ledger>>,
    events: Option<Recipient<EmitEvent>>,
    down_since: HashMap<NodeId, Instant>,
    configs: HashMap<String, Kept>,
    fetching: HashSet<String>,
    /// Swarm ids with a job in flight, and the job (cancelled by [`Follow`]).
    jobs: HashMap<String, SpawnHandle>,
    /// Swarm ids whose last job failed: not before then.
    not_before: HashMap<String, Instant>,
    /// Stale copies renamed because they could not be removed: left alone from then on.
    left_alone: HashSet<String>,
}

impl Rescheduler {
    pub fn new(
        config: ReschedulerConfig,
        view: watch::Receiver<Arc<ClusterView>>,
        scheduler: Addr<SchedulerActor>,
        ledger: Rc<dyn Ledger>,
    ) -> Self {
        let nodes: Rc<dyn Nodes> = Rc::new(ClusterNodes(view.clone()));
        let flow = Rc::new(CreateFlow::new(
            scheduler,
            nodes.clone(),
            config.flow.clone(),
        ));
        Rescheduler {
            config,
            view,
            nodes,
            flow,
            ledger: Some(ledger),
            events: None,
            down_since: HashMap::new(),
            configs: HashMap::new(),
            fetching: HashSet::new(),
            jobs: HashMap::new(),
            not_before: HashMap::new(),
            left_alone: HashSet::new(),
        }
    }

    /// Starts as a replica: it watches, and acts only after [`Lead`].
    #[must_use]
    pub fn following(mut self) -> Self {
        self.ledger = None;
        self
    }

    /// Where Shoal's own `reschedule` events go (the EventsHub).
    #[must_use]
    pub fn events_to(mut self, events: Recipient<EmitEvent>) -> Self {
        self.events = Some(events);
        self
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let view = self.view.borrow().clone();
        let read = view.read();
        let now = Instant::now();
        let mut seen = Vec::with_capacity(read.nodes.len());
        let mut by_id: HashMap<NodeId, NodeRead> = HashMap::new();
        for n in &read.nodes {
            let id = NodeId::new(n.handle.addr.to_string());
            let health = n.snapshot.health;
            let down_for = if health == Health::Unhealthy {
                let since = *self.down_since.entry(id.clone()).or_insert(now);
                Some(now.duration_since(since))
            } else {
                self.down_since.remove(&id);
                None
            };
            let containers: Vec<Watched> = n
                .snapshot
                .containers
                .entries
                .iter()
                .filter(|e| !self.left_alone.contains(e.id()))
                .filter_map(|e| watched(&e.info, e.name(), e.created))
                .collect();
            seen.push(SeenNode {
                id: id.clone(),
                health,
                down_for,
                containers,
            });
            by_id.insert(id, n.clone());
        }
        self.down_since.retain(|id, _| by_id.contains_key(id));
        self.keep_configs(ctx, &seen, &by_id);
        if self.ledger.is_none() {
            return;
        }

        self.not_before.retain(|_, t| *t > now);
        let busy: HashSet<String> = self
            .jobs
            .keys()
            .chain(self.not_before.keys())
            .cloned()
            .collect();
        for action in plan(&seen, self.config.grace, &busy) {
            if self.jobs.len() >= self.config.max_jobs {
                break;
            }
            match action {
                Action::Move { from, container } => self.start_move(ctx, &by_id, from, container),
                Action::RemoveStale {
                    node,
                    container,
                    keeper_node,
                    keeper_id,
                } => self.start_cleanup(ctx, &by_id, node, container, keeper_node, keeper_id),
            }
        }
    }

    /// Fetches the inspect of every `on-node-failure` container of a healthy node that is
    /// not kept yet (or was renamed), and forgets those of containers no node lists.
    fn keep_configs(
        &mut self,
        ctx: &mut Context<Self>,
        seen: &[SeenNode],
        by_id: &HashMap<NodeId, NodeRead>,
    ) {
        let listed: HashSet<&str> = seen
            .iter()
            .flat_map(|n| n.containers.iter().map(|c| c.id.as_str()))
            .collect();
        self.configs.retain(|id, _| listed.contains(id.as_str()));
        for n in seen.iter().filter(|n| n.health == Health::Healthy) {
            for c in n.containers.iter().filter(|c| c.on_node_failure) {
                if self.fetching.len() >= self.config.max_fetches {
                    return;
                }
                let fresh = self.configs.get(&c.id).is_some_and(|k| k.name == c.name);
                if fresh || self.fetching.contains(&c.id) {
                    continue;
                }
                let Some(node) = by_id.get(&n.id) else {
                    continue;
                };
                self.fetching.insert(c.id.clone());
                metrics::queued("node", &node.handle.addr);
                let ask = node
                    .handle
                    .actor
                    .send(InspectContainer { id: c.id.clone() });
                let (id, name) = (c.id.clone(), c.name.clone());
                ctx.spawn(ask.into_actor(self).map(move |answer, act, _| {
                    act.fetching.remove(&id);
                    match answer {
                        Ok(Ok(inspect)) => {
                            act.configs.insert(id, Kept { name, inspect });
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(container = %id, error = %e, "reschedule: inspect failed; asked again later")
                        }
                        Err(e) => tracing::debug!(container = %id, error = %e, "reschedule: node gone"),
                    }
                }));
            }
        }
    }

    fn start_move(
        &mut self,
        ctx: &mut Context<Self>,
        by_id: &HashMap<NodeId, NodeRead>,
        from: NodeId,
        container: Watched,
    ) {
        let Some(ledger) = self.ledger.clone() else {
            return;
        };
        let swarm_id = container.swarm_id.clone();
        let inspect = self.configs.get(&container.id).map(|k| k.inspect.clone());
        let (flow, nodes) = (self.flow.clone(), self.nodes.clone());
        let from_node = by_id.get(&from).cloned();
        tracing::info!(node = %from, container = %container.id, name = %container.name, "rescheduling a container of a failed node");
        let work = {
            let (from, container) = (from.clone(), container.clone());
            async move { move_container(&flow, &*nodes, &*ledger, &from, &container, inspect).await }
        };
        let job_id = swarm_id.clone();
        let job = ctx.spawn(work.into_actor(self).map(move |outcome, act, _| {
            act.jobs.remove(&swarm_id);
            let mut attrs = base_attributes(&container);
            if let Some(n) = &from_node {
                attrs.insert("from_node".into(), n.name.to_string());
            }
            attrs.insert("from_addr".into(), from.to_string());
            attrs.insert("from_id".into(), container.id.clone());
            match outcome {
                // Done or in hand elsewhere (the copy was removed by hand, or another
                // manager is on it): asked again only after a while.
                Ok(MoveOutcome::NotClaimed) => {
                    act.not_before
                        .insert(swarm_id, Instant::now() + act.config.retry_after);
                }
                Ok(MoveOutcome::Moved(moved)) => {
                    let to_node = act.view.borrow().node(moved.to.as_str());
                    if let Some(n) = &to_node {
                        attrs.insert("to_node".into(), n.name.to_string());
                    }
                    attrs.insert("to_addr".into(), moved.to.to_string());
                    attrs.insert("started".into(), moved.started.to_string());
                    match &moved.incomplete {
                        None => {
                            metrics::rescheduled("done");
                            tracing::info!(from = %from, to = %moved.to, name = %container.name, id = %moved.container_id, "container rescheduled");
                        }
                        Some(why) => {
                            metrics::rescheduled("incomplete");
                            attrs.insert("error".into(), why.clone());
                            tracing::warn!(from = %from, to = %moved.to, name = %container.name, error = %why, "container rescheduled, but not all of it");
                        }
                    }
                    if let Some(n) = to_node {
                        act.emit(&n, "reschedule", moved.container_id.clone(), attrs);
                    }
                }
                Err(e) => {
                    metrics::rescheduled("failed");
                    tracing::warn!(from = %from, name = %container.name, error = %e, "reschedule failed; trying again later");
                    act.not_before
                        .insert(swarm_id, Instant::now() + act.config.retry_after);
                    attrs.insert("error".into(), e.to_string());
                    if let Some(n) = from_node {
                        act.emit(&n, "reschedule_failed", container.id.clone(), attrs);
                    }
                }
            }
        }));
        self.jobs.insert(job_id, job);
    }

    fn start_cleanup(
        &mut self,
        ctx: &mut Context<Self>,
        by_id: &HashMap<NodeId, NodeRead>,
        node: NodeId,
        container: Watched,
        keeper_node: NodeId,
        keeper_id: String,
    ) {
        let Some(stale_node) = by_id.get(&node).cloned() else {
            return;
        };
        let Some(ledger) = self.ledger.clone() else {
            return;
        };
        let swarm_id = container.swarm_id.clone();
        let nodes = self.nodes.clone();
        let work = {
            let (node, container) = (node.clone(), container.clone());
            async move { clear_stale(&*nodes, &*ledger, &node, &container).await }
        };
        let job_id = swarm_id.clone();
        let job = ctx.spawn(work.into_actor(self).map(move |outcome, act, _| {
            act.jobs.remove(&swarm_id);
            let mut attrs = base_attributes(&container);
            attrs.insert("kept_id".into(), keeper_id);
            attrs.insert("kept_addr".into(), keeper_node.to_string());
            match outcome {
                Ok(StaleOutcome::Removed) => {
                    metrics::reschedule_stale("removed");
                    tracing::info!(node = %node, name = %container.name, "stale copy of a rescheduled container removed");
                    act.emit(&stale_node, "reschedule_cleanup", container.id.clone(), attrs);
                }
                Ok(StaleOutcome::Renamed(to)) => {
                    metrics::reschedule_stale("renamed");
                    tracing::warn!(node = %node, name = %container.name, renamed = %to, "stale copy of a rescheduled container could not be removed; renamed");
                    act.left_alone.insert(container.id.clone());
                    attrs.insert("renamed_to".into(), to);
                    act.emit(&stale_node, "reschedule_stale", container.id.clone(), attrs);
                }
                Err(e) => {
                    metrics::reschedule_stale("failed");
                    tracing::warn!(node = %node, name = %container.name, error = %e, "stale copy neither removed nor renamed; trying again later");
                    act.not_before
                        .insert(swarm_id, Instant::now() + act.config.retry_after);
                }
            }
        }));
        self.jobs.insert(job_id, job);
    }

    fn emit(
        &self,
        node: &NodeRead,
        action: &'static str,
        actor_id: String,
        attributes: std::collections::BTreeMap<String, String>,
    ) {
        let Some(events) = &self.events else {
            return;
        };
        let msg = EmitEvent {
            addr: node.handle.addr.clone(),
            kind: "container",
            action,
            actor_id,
            attributes,
        };
        if events.try_send(msg).is_err() {
            tracing::debug!("events hub full or gone; reschedule event dropped");
        }
    }
}

/// The container's side of an event's attributes.
fn base_attributes(c: &Watched) -> std::collections::BTreeMap<String, String> {
    let mut attrs = std::collections::BTreeMap::new();
    attrs.insert("name".into(), c.name.clone());
    attrs.insert("image".into(), c.image.clone());
    attrs.insert(LABEL_SWARM_ID.into(), c.swarm_id.clone());
    attrs
}

/// A listed container as the planner reads it; `None` without a swarm id or without the
/// policy (the copies Shoal makes carry it too), so a tick costs little however many
/// containers have no policy.
fn watched(info: &crate::scheduler::ContainerInfo, name: &str, created: i64) -> Option<Watched> {
    let on_node_failure = info
        .labels
        .get(LABEL_RESCHEDULE)
        .and_then(|json| serde_json::from_str::<Vec<String>>(json).ok())
        .is_some_and(|p| {
            p.iter()
                .any(|p| p == ReschedulePolicy::OnNodeFailure.as_str())
        });
    if !on_node_failure {
        return None;
    }
    let swarm_id = info.labels.get(LABEL_SWARM_ID)?.clone();
    Some(Watched {
        id: info.id.clone(),
        name: name.to_owned(),
        image: info.image.clone(),
        swarm_id,
        running: matches!(info.state.as_str(), "running" | "paused" | "restarting"),
        created,
        on_node_failure,
        rescheduled_from: info.labels.get(LABEL_RESCHEDULED_FROM).cloned(),
    })
}

/// Sent by the daemon when this manager becomes primary: act from now on, recording moves
/// in the ledger `ledger` makes (the etcd ledger of this term; made on the actor's thread,
/// since a ledger need not be `Send`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Lead {
    pub ledger: Box<dyn FnOnce() -> Rc<dyn Ledger> + Send>,
}

/// Sent by the daemon when this manager steps down: stop acting, and cancel the jobs in
/// flight (another manager takes over; their claims go with this term's lease).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Follow;

impl Handler<Lead> for Rescheduler {
    type Result = ();

    fn handle(&mut self, msg: Lead, _: &mut Context<Self>) {
        tracing::info!("rescheduler: acting (primary)");
        self.ledger = Some((msg.ledger)());
    }
}

impl Handler<Follow> for Rescheduler {
    type Result = ();

    fn handle(&mut self, _: Follow, ctx: &mut Context<Self>) {
        if self.ledger.take().is_some() {
            tracing::info!(
                cancelled = self.jobs.len(),
                "rescheduler: watching only (not primary)"
            );
        }
        for (_, job) in self.jobs.drain() {
            ctx.cancel_future(job);
        }
    }
}

impl Actor for Rescheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(grace = ?self.config.grace, "rescheduler started");
        ctx.run_interval(self.config.tick, |act, ctx| act.tick(ctx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::ContainerInfo;

    #[test]
    fn a_listed_container_is_watched_by_its_labels() {
        let c = ContainerInfo::new("c1", "web")
            .label(LABEL_SWARM_ID, "s1")
            .label(LABEL_RESCHEDULE, r#"["on-node-failure"]"#)
            .label(LABEL_RESCHEDULED_FROM, "a:2375");
        let w = watched(&c, "web", 7).unwrap();
        assert!(w.on_node_failure && w.running);
        assert_eq!((w.swarm_id.as_str(), w.created), ("s1", 7));
        assert_eq!(w.rescheduled_from.as_deref(), Some("a:2375"));

        let off = ContainerInfo::new("c2", "x")
            .label(LABEL_SWARM_ID, "s2")
            .label(LABEL_RESCHEDULE, r#"["off"]"#);
        assert!(watched(&off, "x", 0).is_none(), "no policy: not watched");
        let garbage = ContainerInfo::new("c3", "y")
            .label(LABEL_SWARM_ID, "s3")
            .label(LABEL_RESCHEDULE, "on-node-failure");
        assert!(watched(&garbage, "y", 0).is_none());
        let mut stopped = ContainerInfo::new("c4", "z")
            .label(LABEL_SWARM_ID, "s4")
            .label(LABEL_RESCHEDULE, r#"["on-node-failure"]"#);
        stopped.state = "exited".into();
        assert!(!watched(&stopped, "z", 0).unwrap().running);
        let unmade =
            ContainerInfo::new("c5", "q").label(LABEL_RESCHEDULE, r#"["on-node-failure"]"#);
        assert!(watched(&unmade, "q", 0).is_none(), "not made by Shoal");
    }
}
