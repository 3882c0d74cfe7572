//! Messages the EventsHub takes. `NodeEvent` (an engine's event) is the NodeActor's and is
//! defined beside it.

use super::event::{HubEvent, NodeChange};
use super::filter::EventFilter;
use crate::engine::EngineAddr;
use actix::Message;
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
    /// Ends when the subscriber is cut off (it fell `subscriber_buffer` events behind) or
    /// the hub stops.
    pub live: Option<mpsc::Receiver<Arc<HubEvent>>>,
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
    /// Subscribers cut off because their buffer was full.
    pub dropped_subscribers: u64,
    /// Subscribers now.
    pub subscribers: usize,
    /// Events now in the ring.
    pub ring: usize,
}
