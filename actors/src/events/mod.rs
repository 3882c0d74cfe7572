//! The EventsHub: one merged `/events` stream for the whole cluster.
//!
//! Every NodeActor sends its engine's events (`NodeEvent`); the NodeActors and the
//! ClusterActor send Shoal's own node changes (`NodeChanged`: joined, left, turned healthy
//! or unhealthy). The hub adds the node fields to each event as classic Swarm did, keeps a
//! bounded ring of recent events for `since`, and fans every event out to the subscribers
//! whose filter wants it.
//!
//! The rescheduler sends `EmitEvent`: Shoal's own container events (what it re-created,
//! from where to where).
//!
//! Messages it takes (in `messages`): `NodeEvent`, `NodeChanged`, `EmitEvent`, `Subscribe`,
//! `Unsubscribe`, `HubStats`.
//!
//! Each subscriber is a queue the hub sends into without ever waiting, measured in bytes:
//! one that stays too far behind (`HubConfig`: bytes for longer than a grace, or a hard
//! byte bound) is cut off: a slow client never slows the hub or the other subscribers; it
//! sees its stream break and may come back with `since`. The hub module says why.

mod event;
mod filter;
mod hub;
mod messages;

pub use event::{HubEvent, NodeChange, NodeFields};
pub use filter::{EventFilter, EVENT_FILTERS};
pub use hub::{EventsHub, HubConfig};
pub use messages::{
    EmitEvent, HubCounts, HubStats, LiveEvents, NodeChanged, Subscribe, SubscriberId, Subscription,
    Unsubscribe,
};
