//! One NodeActor per engine: its refresh loop, health, facts, caches and event stream.
//!
//! Messages it takes (in `messages`): `RefreshNode`, `InspectContainer`, `InspectImage`,
//! `StopNode`. It publishes `NodeSnapshot`s through a watch channel and tells its
//! supervisor (the ClusterActor) `NodeStopped` when it ends.

mod actor;
mod events;
mod health;
mod messages;
mod snapshot;

pub use actor::{NodeActor, NodeConfig, NodeEvent};
pub use events::{EngineEvent, EventActor};
pub use health::{Health, HealthTracker};
pub use messages::{
    InspectContainer, InspectImage, ListContainerSizes, NodeStopped, RefreshNode, StopNode,
};
pub use snapshot::{
    ContainerEntry, ContainerResources, ContainerTable, EngineFacts, HostPort, NodeSnapshot,
    Reservation,
};
