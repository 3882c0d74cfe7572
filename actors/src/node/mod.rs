//! One NodeActor per engine: its refresh loop, health, facts, caches and event stream.
//!
//! Messages it takes: `RefreshNode`, `SyncContainer`, `SyncOffer`, `InspectContainer`,
//! `InspectImage`, `ListContainerSizes`, `RestartNode`, `StopNode` (in `messages`);
//! `CreateContainer`, `PullImage`, `CreateNetwork`, `CreateVolume`, `FindCreated`,
//! `RemoveOrphan`, `ContainerCall` (in `create`);
//! `ObjectCall` (in `objects`). It publishes `NodeSnapshot`s through a watch channel, keeps
//! the cluster's container index up to date, tells the ClusterActor `LayoutChanged` when
//! its name, health or API version changed and `NodeStopped` when it ends.
//!
//! The actor (`actor`) keeps the state machine; each part it delegates to has its own file:
//! the refresh and its back-off (`refresh`), health (`health`), the container book
//! (`containers`, `listing`), what containers hold (`resources`), the caches (`caches`),
//! publishing (`publish`, `snapshot`), the offer and its flow (`offer`), the engine's events
//! (`events`) and facts (`facts`).

mod actor;
mod caches;
mod containers;
mod create;
mod events;
mod facts;
mod health;
mod list_order;
mod listing;
mod messages;
mod objects;
mod offer;
mod publish;
mod refresh;
mod resources;
mod snapshot;

#[cfg(test)]
pub(crate) mod fake_engine;
#[cfg(test)]
mod tests;

pub use actor::{NodeActor, NodeEvent};
pub use create::{
    calls, pull_query, ContainerCall, ContainerOp, CreateContainer, CreateNetwork, CreateVolume,
    FindCreated, PullImage, RemoveOrphan,
};
pub use events::{EngineEvent, EventActor};
pub use facts::EngineFacts;
pub use health::{Health, HealthTracker};
pub use list_order::{id_head, listed_order, Listed, Ranked};
pub use messages::{
    InspectContainer, InspectImage, LayoutChanged, ListContainerSizes, NodeStopped, RefreshNode,
    RestartNode, StopNode, SyncContainer, SyncOffer,
};
pub use objects::{ObjectCall, ObjectOp, PruneKind};
pub use refresh::{NodeConfig, PROBE_INTERVAL};
pub use resources::{ContainerResources, Reservation};
pub use snapshot::{
    ContainerEntry, ContainerTable, NodeSnapshot, ObjectEntry, RenderCache, ResourceMap,
};
