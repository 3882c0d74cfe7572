//! Shoal's actors: one `NodeActor` per engine, the `ClusterActor` that owns the set of
//! nodes and publishes the cluster view, the `EventsHub` that merges their events, and the
//! engine client they use.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod engine;
pub mod events;
pub mod node;
