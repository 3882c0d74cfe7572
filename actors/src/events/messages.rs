//! Messages the EventsHub takes. `NodeEvent` (an engine's event) is the NodeActor's and is
//! defined beside it.

use super::event::{HubEvent, NodeChange};
use super::filter::EventFilter;
use crate::engine::EngineAddr;
use actix::Message;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Sent by the ClusterActor (joined, left) and by a NodeActor (health changed). The hub
/// turns it into Shoal's own `Type: "node"` event. Answers nothing.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct NodeChanged {
    pub addr: EngineAddr,
    pub change: NodeChange,
}

/// Sent by the rescheduler: an event of Shoal's own about a container (`reschedule`,
/// `reschedule_cleanup`, ...) on the node at `addr`. The hub gives it the node fields and
/// fans it out as it does an engine's. Answers nothing.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct EmitEvent {
    pub addr: EngineAddr,
    /// Docker's `Type` (`container`).
    pub kind: &'static str,
    /// Docker's `Action`.
    pub action: &'static str,
    /// Docker's `Actor.ID`: the container's ID.
    pub actor_id: String,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Names one subscriber of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId(pub u64);

/// Sent by the API for `GET /events`. Answers the events already in the ring that match
/// (when `since` or `until` is given, as dockerd replays) and, when `follow`, a channel of
/// the live events that match. Replay and registration happen in one step of the hub, so
/// no event falls between them or comes twice.
#[derive(Debug, Message)]
#[rtype(result = "Subscription")]
pub struct Subscribe {
    pub filter: EventFilter,
    /// Unix nanoseconds: replay ring events at or after this time.
    pub since: Option<i64>,
    /// Unix nanoseconds: replay ring events at or before this time.
    pub until: Option<i64>,
    /// Whether to register for live events (`false` when `until` is already past).
    pub follow: bool,
}

/// The answer to `Subscribe`. Dropping `live` unsubscribes (the hub notices the closed
/// channel); `Unsubscribe` does it at once.
#[derive(Debug)]
pub struct Subscription {
    pub id: SubscriberId,
    pub backlog: Vec<Arc<HubEvent>>,
    /// Ends when the subscriber is cut off (it stayed too far behind) or the hub stops.
    pub live: Option<LiveEvents>,
}

/// What a subscriber's reader took out of its queue, shared with the hub, which compares
/// it with what it queued to know how far behind the subscriber is; and whether the hub
/// cut the subscriber off.
#[derive(Debug, Default)]
pub struct ReadProgress {
    bytes: AtomicU64,
    events: AtomicU64,
    cut: AtomicBool,
}

impl ReadProgress {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::Release);
    }

    fn took(&self, ev: &HubEvent) {
        self.bytes
            .fetch_add(ev.line.len() as u64, Ordering::Relaxed);
        self.events.fetch_add(1, Ordering::Relaxed);
    }
}

/// One subscriber's live events, in order. Reading counts what was read for the hub.
#[derive(Debug)]
pub struct LiveEvents {
    rx: mpsc::UnboundedReceiver<Arc<HubEvent>>,
    read: Arc<ReadProgress>,
}

impl LiveEvents {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<Arc<HubEvent>>, read: Arc<ReadProgress>) -> Self {
        LiveEvents { rx, read }
    }

    /// The next event; `None` when the stream ended: cut off (then what is still queued
    /// is dropped unread: the client is told at once, and the memory freed) or the hub
    /// stopped.
    pub async fn recv(&mut self) -> Option<Arc<HubEvent>> {
        if self.was_cut() {
            return None;
        }
        let ev = self.rx.recv().await?;
        if self.was_cut() {
            return None;
        }
        self.read.took(&ev);
        Some(ev)
    }

    /// The next event if one is queued now (`None` also when the stream ended).
    pub fn try_recv(&mut self) -> Option<Arc<HubEvent>> {
        if self.was_cut() {
            return None;
        }
        let ev = self.rx.try_recv().ok()?;
        self.read.took(&ev);
        Some(ev)
    }

    /// Whether the hub cut this subscriber off (rather than the hub stopping).
    pub fn was_cut(&self) -> bool {
        self.read.cut.load(Ordering::Acquire)
    }
}

/// Sent by the API when a client hung up. Answers nothing.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub SubscriberId);

/// Sent by anyone who reports on the hub (tests, metrics). Answers its counters.
#[derive(Debug, Message)]
#[rtype(result = "HubCounts")]
pub struct HubStats;

/// The hub's counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubCounts {
    /// Events received (engine events and Shoal's own node events).
    pub events_in: u64,
    /// Engine events dropped because their line was not a JSON object.
    pub malformed: u64,
    /// Events handed to a subscriber's channel (one event to two subscribers counts two).
    pub delivered: u64,
    /// Subscribers cut off for staying too far behind.
    pub dropped_subscribers: u64,
    /// Subscribers now.
    pub subscribers: usize,
    /// Events now in the ring.
    pub ring: usize,
}
