//! Shoal's actors: one `NodeActor` per engine, the `ClusterActor` that owns the set of
//! nodes and publishes the cluster view, the `SchedulerActor` that places new containers,
//! the create flow that owns a create from typed request to answer, the `EventsHub` that
//! merges the nodes' events, the `Rescheduler` that moves the containers of failed nodes,
//! and the engine client they use.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod create;
pub mod election;
pub mod engine;
pub mod etcd;
pub mod events;
pub mod metrics;
pub mod node;
pub mod reschedule;
pub mod scheduler;
mod shared_list;
