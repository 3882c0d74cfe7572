//! The EventsHub actor: fan-in of every node's events, fan-out to the subscribers.
//!
//! Its work per event is small and never waits: find the node's fields (a map lookup),
//! splice them into the line (a copy), push to the ring, and send the shared event to each
//! subscriber whose filter matches.
//!
//! The slow-client policy is a bound in bytes and time, not in events. Each subscriber's
//! queue is unbounded as a channel but measured: the hub counts the bytes it queued, the
//! reader the bytes it took out, and the difference is how far behind the subscriber is.
//! A subscriber more than `behind_bytes` behind for longer than `grace`, or ever more than
//! `max_bytes` behind, is cut off (its stream ends with an error; it may come back with
//! `since`). Scheduling hiccups of a few hundred milliseconds on a busy machine, a burst
//! the client's socket absorbs late, never cut anyone; only a client that stays behind
//! does. The events are shared (`Arc`) between the queues, so what all the queues hold
//! together is at most one `max_bytes` of distinct events plus a pointer per entry.
//!
//! dockerd instead gives each subscriber a channel of 1024 events and waits up to 100 ms
//! for room before skipping that one event for that subscriber: the stream goes on with a
//! silent gap, and the wait holds up every other subscriber. Shoal neither skips nor waits:
//! a client sees every event or a broken stream, and one client never slows another.

use super::event::{HubEvent, NodeFields};
use super::messages::{
    EmitEvent, HubCounts, HubStats, LiveEvents, NodeChanged, ReadProgress, Subscribe, SubscriberId,
    Subscription, Unsubscribe,
};
use super::EventFilter;
use crate::cluster::ClusterView;
use crate::engine::EngineAddr;
use crate::node::NodeEvent;
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::sync::watch;

/// How the hub runs.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Recent events kept for `since` (a Docker engine keeps 256; a cluster sees more).
    pub ring: usize,
    /// Bytes of events a subscriber may have queued and not read without counting as
    /// behind: a few hundred milliseconds of a busy cluster's stream.
    pub behind_bytes: usize,
    /// How long a subscriber may stay more than `behind_bytes` behind before it is cut.
    pub grace: Duration,
    /// Bytes a subscriber may have queued at most: past this it is cut at once.
    pub max_bytes: usize,
    /// The hub's mailbox. NodeActors `try_send` into it and drop the event when it is full.
    pub mailbox: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            ring: 4096,
            // About 0.7 s of 10,000 events/s of 600 bytes.
            behind_bytes: 4 << 20,
            grace: Duration::from_secs(3),
            max_bytes: 64 << 20,
            mailbox: 16384,
        }
    }
}

/// How often node names are re-read from the cluster view even if no node joined: an
/// engine's name, and so the `name@addr` disambiguation, can change on a refresh.
const NAMES_MAX_AGE: Duration = Duration::from_secs(2);
/// How often subscribers are checked when no event reached them: those whose client went
/// away are dropped, those behind for longer than the grace are cut.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Why a subscriber was cut (the `reason` label of the cut counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// More than `max_bytes` behind.
    Overflow,
    /// More than `behind_bytes` behind for longer than `grace`.
    Behind,
}

impl Cut {
    fn label(self) -> &'static str {
        match self {
            Cut::Overflow => "overflow",
            Cut::Behind => "behind",
        }
    }
}

struct Subscriber {
    filter: EventFilter,
    tx: mpsc::UnboundedSender<Arc<HubEvent>>,
    /// What the reader took out of the queue so far.
    read: Arc<ReadProgress>,
    /// Bytes and events queued so far.
    sent_bytes: u64,
    sent_events: u64,
    /// Since when it has been more than `behind_bytes` behind.
    behind_since: Option<Instant>,
}

impl Subscriber {
    fn lag_bytes(&self) -> u64 {
        self.sent_bytes.saturating_sub(self.read.bytes())
    }

    /// Whether it must be cut now; `now` is read once per check, and only when needed.
    fn verdict(&mut self, config: &HubConfig, now: &mut Option<Instant>) -> Option<Cut> {
        let lag = self.lag_bytes();
        if lag > config.max_bytes as u64 {
            return Some(Cut::Overflow);
        }
        if lag <= config.behind_bytes as u64 {
            self.behind_since = None;
            return None;
        }
        let now = *now.get_or_insert_with(Instant::now);
        let since = *self.behind_since.get_or_insert(now);
        (now.duration_since(since) > config.grace).then_some(Cut::Behind)
    }
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
        let size = ev.line.len() as u64;
        let mut now = None;
        let mut gone = Vec::new();
        for (id, sub) in self.subscribers.iter_mut() {
            if !sub.filter.matches(&ev) {
                continue;
            }
            if sub.tx.send(ev.clone()).is_err() {
                // The client went away.
                gone.push((*id, None));
                continue;
            }
            sub.sent_bytes += size;
            sub.sent_events += 1;
            self.counts.delivered += 1;
            if let Some(cut) = sub.verdict(&self.config, &mut now) {
                gone.push((*id, Some(cut)));
            }
        }
        for (id, cut) in gone {
            self.remove(id, cut);
        }
    }

    /// Removes a subscriber. A cut one is told (its reader stops at once and drops what
    /// is queued), logged and counted; one whose client went away is just forgotten.
    fn remove(&mut self, id: SubscriberId, cut: Option<Cut>) {
        let Some(sub) = self.subscribers.remove(&id) else {
            return;
        };
        let Some(cut) = cut else {
            return;
        };
        sub.read.cut();
        let behind_ms = sub
            .behind_since
            .map_or(0, |t| t.elapsed().as_millis() as u64);
        tracing::warn!(
            subscriber = id.0,
            reason = cut.label(),
            lag_bytes = sub.lag_bytes(),
            lag_events = sub.sent_events.saturating_sub(sub.read.events()),
            behind_ms,
            sent_events = sub.sent_events,
            "events subscriber too slow, cut off"
        );
        self.counts.dropped_subscribers += 1;
        crate::metrics::event_subscriber_cut(cut.label());
        // Dropping the sender closes the channel: the reader sees the end.
        drop(sub);
    }

    /// Drops subscribers whose client went away, cuts those behind for too long (they may
    /// have received nothing lately).
    fn check(&mut self) {
        let mut now = None;
        let mut gone = Vec::new();
        for (id, sub) in self.subscribers.iter_mut() {
            if sub.tx.is_closed() {
                gone.push((*id, None));
            } else if let Some(cut) = sub.verdict(&self.config, &mut now) {
                gone.push((*id, Some(cut)));
            }
        }
        for (id, cut) in gone {
            self.remove(id, cut);
        }
    }
}
impl Actor for EventsHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.config.mailbox);
        ctx.run_interval(CHECK_EVERY, |act, _| act.check());
    }
}

impl Handler<NodeEvent> for EventsHub {
    type Result = ();

    fn handle(&mut self, msg: NodeEvent, _ctx: &mut Context<Self>) {
        let node = self.names.fields(&msg.addr);
        for mut event in msg.events {
            self.counts.events_in += 1;
            // An engine too old to send `timeNano` gets the time Shoal saw the event.
            if event.time_nano == 0 {
                event.time_nano = now_nanos();
            }
            match HubEvent::from_engine(event, node.clone()) {
                Some(ev) => self.publish(ev),
                None => {
                    self.counts.malformed += 1;
                    crate::metrics::event_dropped("malformed");
                    tracing::debug!(node = %msg.addr, "engine event is not a JSON object, dropped");
                }
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
            let (tx, rx) = mpsc::unbounded_channel();
            let read = Arc::new(ReadProgress::default());
            self.subscribers.insert(
                id,
                Subscriber {
                    filter: msg.filter,
                    tx,
                    read: read.clone(),
                    sent_bytes: 0,
                    sent_events: 0,
                    behind_since: None,
                },
            );
            LiveEvents::new(rx, read)
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
            events: vec![event],
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
        assert!(b_rx.try_recv().is_none());
        let counts = h.send(HubStats).await.unwrap();
        assert_eq!(counts.events_in, 2);
        assert_eq!(counts.delivered, 3);
        assert_eq!(counts.subscribers, 2);
    }

    /// The size of one `node_event(1, "start", "cNN", ..)` line once the hub added the node.
    async fn line_len() -> usize {
        let h = hub(HubConfig::default());
        let mut s = h.send(sub(EventFilter::default())).await.unwrap();
        h.send(node_event(1, "start", "c00", 1)).await.unwrap();
        s.live.as_mut().unwrap().recv().await.unwrap().line.len()
    }

    #[actix::test]
    async fn a_subscriber_past_the_byte_bound_is_cut_at_once_and_the_others_miss_nothing() {
        let line = line_len().await;
        let h = hub(HubConfig {
            behind_bytes: line,
            grace: Duration::from_secs(3600),
            max_bytes: 3 * line,
            ..HubConfig::default()
        });
        let mut slow = h.send(sub(EventFilter::default())).await.unwrap();
        let mut fast = h.send(sub(EventFilter::default())).await.unwrap();
        let fast_rx = fast.live.as_mut().unwrap();
        for i in 0..10 {
            h.send(node_event(1, "start", &format!("c{i:02}"), 1 + i))
                .await
                .unwrap();
            assert_eq!(
                json(&fast_rx.recv().await.unwrap())["Actor"]["ID"],
                format!("c{i:02}")
            );
        }
        let slow_rx = slow.live.as_mut().unwrap();
        assert!(slow_rx.was_cut());
        assert!(
            slow_rx.recv().await.is_none(),
            "a cut subscriber's queue is dropped: it learns at once"
        );
        let counts = h.send(HubStats).await.unwrap();
        assert_eq!(counts.dropped_subscribers, 1);
        assert_eq!(counts.subscribers, 1);
        assert!(!fast_rx.was_cut());
    }

    #[actix::test]
    async fn a_subscriber_behind_is_cut_only_once_the_grace_is_over() {
        let line = line_len().await;
        let h = hub(HubConfig {
            behind_bytes: 2 * line,
            grace: Duration::from_secs(1),
            max_bytes: 1000 * line,
            ..HubConfig::default()
        });
        let mut s = h.send(sub(EventFilter::default())).await.unwrap();
        let rx = s.live.as_mut().unwrap();
        // Ten events behind, then caught up before the grace is over: not cut, and the
        // next time it falls behind its grace starts again.
        for round in 0..2 {
            let at = Instant::now();
            for i in 0..10 {
                h.send(node_event(1, "start", &format!("r{round}c{i}"), 1))
                    .await
                    .unwrap();
            }
            for i in 0..10 {
                let ev = rx.recv().await.unwrap();
                assert_eq!(ev.event.actor.id, format!("r{round}c{i}"));
            }
            let stats = h.send(HubStats).await.unwrap();
            if at.elapsed() < Duration::from_secs(1) {
                assert_eq!(stats.dropped_subscribers, 0, "caught up within the grace");
            }
            tokio::time::sleep(Duration::from_millis(1300)).await;
        }
        assert_eq!(h.send(HubStats).await.unwrap().dropped_subscribers, 0);
        // Now it stops reading: once the grace is over the hub's own check cuts it, with
        // no further event to notice it by.
        for i in 0..10 {
            h.send(node_event(1, "start", &format!("late{i}"), 1))
                .await
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while h.send(HubStats).await.unwrap().dropped_subscribers == 0 {
            assert!(Instant::now() < deadline, "never cut");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(rx.was_cut());
        assert!(rx.recv().await.is_none());
        assert_eq!(h.send(HubStats).await.unwrap().subscribers, 0);
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
