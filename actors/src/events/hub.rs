//! The EventsHub actor: fan-in of every node's events, fan-out to the subscribers.
//!
//! Its work per event is small and never waits: find the node's fields (a map lookup),
//! splice them into the line (a copy), push to the ring, and `try_send` to each subscriber
//! whose filter matches. A subscriber whose channel is full is removed at once, which closes
//! its channel: that is the whole slow-client policy, and why one client can never hold
//! the others back.

use super::event::{HubEvent, NodeFields};
use super::messages::{
    EmitEvent, HubCounts, HubStats, NodeChanged, Subscribe, SubscriberId, Subscription, Unsubscribe,
};
use super::EventFilter;
use crate::cluster::ClusterView;
use crate::engine::EngineAddr;
use crate::node::NodeEvent;
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;

/// How the hub runs.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Recent events kept for `since` (a Docker engine keeps 256; a cluster sees more).
    pub ring: usize,
    /// Events a subscriber may fall behind before it is cut off.
    pub subscriber_buffer: usize,
    /// The hub's mailbox. NodeActors `try_send` into it and drop the event when it is full.
    pub mailbox: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            ring: 4096,
            subscriber_buffer: 1024,
            mailbox: 16384,
        }
    }
}

/// How often node names are re-read from the cluster view even if no node joined: an
/// engine's name, and so the `name@addr` disambiguation, can change on a refresh.
const NAMES_MAX_AGE: Duration = Duration::from_secs(2);
/// How often subscribers whose client went away are swept when no event reached them.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

struct Subscriber {
    filter: EventFilter,
    tx: mpsc::Sender<Arc<HubEvent>>,
}

pub struct EventsHub {
    config: HubConfig,
    names: NodeNames,
    ring: VecDeque<Arc<HubEvent>>,
    subscribers: BTreeMap<SubscriberId, Subscriber>,
    next_id: u64,
    counts: HubCounts,
}

impl EventsHub {
    /// `view` is the ClusterActor's published view, read for the node names and IDs.
    pub fn new(config: HubConfig, view: watch::Receiver<Arc<ClusterView>>) -> Self {
        EventsHub {
            ring: VecDeque::with_capacity(config.ring.min(4096)),
            config,
            names: NodeNames::new(view),
            subscribers: BTreeMap::new(),
            next_id: 0,
            counts: HubCounts::default(),
        }
    }

    fn publish(&mut self, ev: HubEvent) {
        let ev = Arc::new(ev);
        if self.config.ring > 0 {
            if self.ring.len() >= self.config.ring {
                self.ring.pop_front();
            }
            self.ring.push_back(ev.clone());
        }
        let mut gone = Vec::new();
        for (id, sub) in &self.subscribers {
            if !sub.filter.matches(&ev) {
                continue;
            }
            match sub.tx.try_send(ev.clone()) {
                Ok(()) => self.counts.delivered += 1,
                Err(TrySendError::Full(_)) => {
                    tracing::info!(
                        subscriber = id.0,
                        buffer = self.config.subscriber_buffer,
                        "events subscriber too slow, cut off"
                    );
                    self.counts.dropped_subscribers += 1;
                    gone.push(*id);
                }
                Err(TrySendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            // Dropping the sender closes the channel: the subscriber reads what is buffered,
            // then sees the end.
            self.subscribers.remove(&id);
        }
    }

    fn sweep(&mut self) {
        self.subscribers.retain(|_, s| !s.tx.is_closed());
    }
}

impl Actor for EventsHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.config.mailbox);
        ctx.run_interval(SWEEP_EVERY, |act, _| act.sweep());
    }
}

impl Handler<NodeEvent> for EventsHub {
    type Result = ();

    fn handle(&mut self, msg: NodeEvent, _ctx: &mut Context<Self>) {
        self.counts.events_in += 1;
        let node = self.names.fields(&msg.addr);
        let mut event = msg.event;
        // An engine too old to send `timeNano` gets the time Shoal saw the event.
        if event.time_nano == 0 {
            event.time_nano = now_nanos();
        }
        match HubEvent::from_engine(event, node) {
            Some(ev) => self.publish(ev),
            None => {
                self.counts.malformed += 1;
                tracing::debug!(node = %msg.addr, "engine event is not a JSON object, dropped");
            }
        }
    }
}

impl Handler<NodeChanged> for EventsHub {
    type Result = ();

    fn handle(&mut self, msg: NodeChanged, _ctx: &mut Context<Self>) {
        self.counts.events_in += 1;
        // A node that just turned healthy has just published its name and ID.
        let node = self.names.fields_fresh(&msg.addr);
        let ev = HubEvent::from_change(&msg.change, node, now_nanos());
        self.publish(ev);
    }
}

impl Handler<EmitEvent> for EventsHub {
    type Result = ();

    fn handle(&mut self, msg: EmitEvent, _ctx: &mut Context<Self>) {
        self.counts.events_in += 1;
        let node = self.names.fields_fresh(&msg.addr);
        let ev = HubEvent::own(
            msg.kind,
            msg.action,
            msg.actor_id,
            msg.attributes,
            node,
            now_nanos(),
        );
        self.publish(ev);
    }
}

impl Handler<Subscribe> for EventsHub {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> Self::Result {
        self.next_id += 1;
        let id = SubscriberId(self.next_id);
        // dockerd replays only when `since` or `until` is given.
        let backlog = if msg.since.is_some() || msg.until.is_some() {
            let (since, until) = (msg.since.unwrap_or(i64::MIN), msg.until.unwrap_or(i64::MAX));
            // The ring is in arrival order; engines' clocks differ, so every entry is
            // checked rather than stopping at the first older one.
            self.ring
                .iter()
                .filter(|e| (since..=until).contains(&e.event.time_nano))
                .filter(|e| msg.filter.matches(e))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let live = msg.follow.then(|| {
            let (tx, rx) = mpsc::channel(self.config.subscriber_buffer.max(1));
            self.subscribers.insert(
                id,
                Subscriber {
                    filter: msg.filter,
                    tx,
                },
            );
            rx
        });
        MessageResult(Subscription { id, backlog, live })
    }
}

impl Handler<Unsubscribe> for EventsHub {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) {
        self.subscribers.remove(&msg.0);
    }
}

impl Handler<HubStats> for EventsHub {
    type Result = MessageResult<HubStats>;

    fn handle(&mut self, _: HubStats, _ctx: &mut Context<Self>) -> Self::Result {
        let mut counts = self.counts;
        counts.subscribers = self.subscribers.len();
        counts.ring = self.ring.len();
        MessageResult(counts)
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The node fields of each address, read from the cluster view and cached: the hub must
/// not walk every node for every event.
struct NodeNames {
    view: watch::Receiver<Arc<ClusterView>>,
    by_addr: HashMap<EngineAddr, Arc<NodeFields>>,
    read_at: Option<Instant>,
}

impl NodeNames {
    fn new(view: watch::Receiver<Arc<ClusterView>>) -> Self {
        NodeNames {
            view,
            by_addr: HashMap::new(),
            read_at: None,
        }
    }

    fn fields(&mut self, addr: &EngineAddr) -> Arc<NodeFields> {
        let stale = self.read_at.is_none_or(|t| t.elapsed() > NAMES_MAX_AGE);
        if stale || self.view.has_changed().unwrap_or(false) {
            self.reread();
        }
        match self.by_addr.get(addr) {
            Some(f) => f.clone(),
            None => self.fields_fresh(addr),
        }
    }

    /// Re-reads one node now (its name and ID may have just become known).
    fn fields_fresh(&mut self, addr: &EngineAddr) -> Arc<NodeFields> {
        if self.view.has_changed().unwrap_or(false) {
            self.reread();
        }
        let view = self.view.borrow().clone();
        // The view lists nodes in address order.
        let found = view
            .nodes
            .binary_search_by(|n| n.addr.cmp(addr))
            .ok()
            .map(|i| view.nodes[i].state.borrow().clone());
        let Some(snapshot) = found else {
            // A node that left keeps the fields it had; one never seen shows its address.
            return self
                .by_addr
                .entry(addr.clone())
                .or_insert_with(|| Arc::new(NodeFields::from_addr(addr)))
                .clone();
        };
        let id = snapshot
            .facts
            .as_ref()
            .map(|f| f.id.clone())
            .unwrap_or_default();
        let name = match self.by_addr.get(addr) {
            // Keep a disambiguated `name@addr` from the last full read.
            Some(old) if old.name == format!("{}@{addr}", snapshot.engine_name()) => {
                old.name.clone()
            }
            _ => snapshot.engine_name(),
        };
        let fields = Arc::new(NodeFields::new(name, id, addr));
        self.by_addr.insert(addr.clone(), fields.clone());
        fields
    }

    fn reread(&mut self) {
        let view = self.view.borrow_and_update().clone();
        let read = view.read();
        for n in &read.nodes {
            let id = n
                .snapshot
                .facts
                .as_ref()
                .map(|f| f.id.clone())
                .unwrap_or_default();
            let current = self.by_addr.get(&n.handle.addr);
            if current.is_none_or(|c| *c.name != *n.name || c.id != id) {
                let fields = NodeFields::new(n.name.to_string(), id, &n.handle.addr);
                self.by_addr.insert(n.handle.addr.clone(), Arc::new(fields));
            }
        }
        // Nodes that left are kept a while (their last events still name them), but not
        // forever.
        if self.by_addr.len() > 2 * read.nodes.len() + 16 {
            let listed: std::collections::HashSet<&EngineAddr> =
                read.nodes.iter().map(|n| &n.handle.addr).collect();
            self.by_addr.retain(|a, _| listed.contains(a));
        }
        self.read_at = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::NodeChange;
    use crate::node::{EngineEvent, Health};
    use bytes::Bytes;

    fn addr(port: u16) -> EngineAddr {
        EngineAddr::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }

    fn node_event(port: u16, action: &str, id: &str, time_nano: i64) -> NodeEvent {
        let raw = serde_json::json!({
            "Type": "container", "Action": action,
            "Actor": {"ID": id, "Attributes": {"name": id}},
            "timeNano": time_nano,
        })
        .to_string();
        let mut event: EngineEvent = serde_json::from_str(&raw).unwrap();
        event.raw = Bytes::from(raw);
        NodeEvent {
            addr: addr(port),
            event,
        }
    }

    fn hub(config: HubConfig) -> Addr<EventsHub> {
        let (_tx, rx) = watch::channel(Arc::new(ClusterView::default()));
        EventsHub::new(config, rx).start()
    }

    fn sub(filter: EventFilter) -> Subscribe {
        Subscribe {
            filter,
            since: None,
            until: None,
            follow: true,
        }
    }

    fn json(ev: &HubEvent) -> serde_json::Value {
        serde_json::from_slice(&ev.line).unwrap()
    }

    #[actix::test]
    async fn events_reach_every_matching_subscriber_with_the_node() {
        let h = hub(HubConfig::default());
        let mut all = h.send(sub(EventFilter::default())).await.unwrap();
        let only_b = EventFilter::new([("container".to_string(), vec!["b".to_string()])]);
        let mut b = h.send(sub(only_b)).await.unwrap();
        h.send(node_event(1, "start", "a", 1)).await.unwrap();
        h.send(node_event(2, "start", "b", 2)).await.unwrap();
        let (all_rx, b_rx) = (all.live.as_mut().unwrap(), b.live.as_mut().unwrap());
        let first = all_rx.recv().await.unwrap();
        assert_eq!(json(&first)["node"]["Addr"], "127.0.0.1:1");
        assert_eq!(json(&all_rx.recv().await.unwrap())["Actor"]["ID"], "b");
        let got = b_rx.recv().await.unwrap();
        assert_eq!(json(&got)["node"]["Name"], "127.0.0.1:2");
        assert!(b_rx.try_recv().is_err());
        let counts = h.send(HubStats).await.unwrap();
        assert_eq!(counts.events_in, 2);
        assert_eq!(counts.delivered, 3);
        assert_eq!(counts.subscribers, 2);
    }

    #[actix::test]
    async fn a_full_subscriber_is_cut_off_and_the_others_miss_nothing() {
        let h = hub(HubConfig {
            subscriber_buffer: 3,
            ..HubConfig::default()
        });
        let mut slow = h.send(sub(EventFilter::default())).await.unwrap();
        let mut fast = h.send(sub(EventFilter::default())).await.unwrap();
        let fast_rx = fast.live.as_mut().unwrap();
        for i in 0..10 {
            h.send(node_event(1, "start", &format!("c{i}"), 1 + i))
                .await
                .unwrap();
            assert_eq!(
                json(&fast_rx.recv().await.unwrap())["Actor"]["ID"],
                format!("c{i}")
            );
        }
        let slow_rx = slow.live.as_mut().unwrap();
        let mut buffered = 0;
        while slow_rx.recv().await.is_some() {
            buffered += 1;
        }
        assert_eq!(buffered, 3, "reads what was buffered, then the end");
        let counts = h.send(HubStats).await.unwrap();
        assert_eq!(counts.dropped_subscribers, 1);
        assert_eq!(counts.subscribers, 1);
    }

    #[actix::test]
    async fn since_and_until_replay_from_the_ring_without_gap_or_repeat() {
        let h = hub(HubConfig {
            ring: 3,
            ..HubConfig::default()
        });
        for i in 1..=5 {
            h.send(node_event(1, "start", &format!("c{i}"), i * 10))
                .await
                .unwrap();
        }
        let mut s = h
            .send(Subscribe {
                since: Some(30),
                until: Some(40),
                ..sub(EventFilter::default())
            })
            .await
            .unwrap();
        let ids: Vec<String> = s.backlog.iter().map(|e| e.event.actor.id.clone()).collect();
        assert_eq!(ids, ["c3", "c4"]);
        h.send(node_event(1, "start", "c6", 60)).await.unwrap();
        let next = s.live.as_mut().unwrap().recv().await.unwrap();
        assert_eq!(next.event.actor.id, "c6");
        // Without since/until nothing is replayed; without follow nothing is registered.
        let plain = h.send(sub(EventFilter::default())).await.unwrap();
        assert!(plain.backlog.is_empty());
        let past = h
            .send(Subscribe {
                since: Some(0),
                follow: false,
                ..sub(EventFilter::default())
            })
            .await
            .unwrap();
        assert_eq!(past.backlog.len(), 3, "the ring holds the last 3");
        assert!(past.live.is_none());
        assert_eq!(h.send(HubStats).await.unwrap().subscribers, 2);
    }

    #[actix::test]
    async fn unsubscribe_and_hang_up_remove_the_subscriber() {
        let h = hub(HubConfig::default());
        let a = h.send(sub(EventFilter::default())).await.unwrap();
        let b = h.send(sub(EventFilter::default())).await.unwrap();
        h.send(Unsubscribe(a.id)).await.unwrap();
        drop(b);
        h.send(node_event(1, "start", "x", 1)).await.unwrap();
        let counts = h.send(HubStats).await.unwrap();
        assert_eq!(counts.subscribers, 0);
        assert_eq!(
            counts.dropped_subscribers, 0,
            "hang-ups are not slow clients"
        );
    }

    #[actix::test]
    async fn node_changes_become_node_events() {
        let h = hub(HubConfig::default());
        let mut s = h.send(sub(EventFilter::default())).await.unwrap();
        h.send(NodeChanged {
            addr: addr(9),
            change: NodeChange::Healthy {
                previous: Health::Pending,
            },
        })
        .await
        .unwrap();
        let ev = s.live.as_mut().unwrap().recv().await.unwrap();
        let v = json(&ev);
        assert_eq!(v["Type"], "node");
        assert_eq!(v["Action"], "engine_connect");
        assert_eq!(v["node"]["Addr"], "127.0.0.1:9");
        assert!(v["timeNano"].as_i64().unwrap() > 0);
    }
}
