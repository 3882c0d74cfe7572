//! One NodeActor per engine: its refresh loop, health, facts, caches and event stream.
//!
//! Messages it takes: `RefreshNode`, `SyncContainer`, `SyncOffer`, `InspectContainer`,
//! `InspectImage`, `ListContainerSizes`, `RestartNode`, `StopNode` (in `messages`);
//! `CreateContainer`, `PullImage`, `CreateNetwork`, `CreateVolume`, `FindCreated`,
//! `RemoveOrphan` (in `create`);
//! `ObjectCall` (in `objects`). It publishes `NodeSnapshot`s through a watch channel, keeps
//! the cluster's container index up to date, and tells its supervisor (the ClusterActor)
//! `NodeStopped` when it ends.

mod actor;
mod create;
mod events;
mod health;
mod listing;
mod messages;
mod objects;
mod offer;
mod snapshot;

pub use actor::{NodeActor, NodeConfig, NodeEvent};
pub use create::{
    calls, pull_query, CreateContainer, CreateNetwork, CreateVolume, FindCreated, PullImage,
    RemoveOrphan,
};
pub use events::{EngineEvent, EventActor};
pub use health::{Health, HealthTracker};
pub use messages::{
    InspectContainer, InspectImage, ListContainerSizes, NodeStopped, RefreshNode, RestartNode,
    StopNode, SyncContainer, SyncOffer,
};
pub use objects::{ObjectCall, ObjectOp, PruneKind};
pub use offer::offer_from;
pub use snapshot::{
    ContainerEntry, ContainerResources, ContainerTable, EngineFacts, NodeSnapshot, ObjectEntry,
    RenderCache, Reservation, ResourceMap,
};
