//! Rescheduling on node failure (classic Swarm's `-e reschedule:on-node-failure`, or the
//! label `com.docker.swarm.reschedule-policies=["on-node-failure"]`): when a node stays
//! unhealthy past a grace period, each of its containers with that policy is created again
//! on a healthy node through the create flow, with the same name, config and
//! `com.docker.swarm.id`, and started if it was running. When the node comes back, the
//! stale original is removed (or renamed and reported), so a name means one container.
//!
//! The parts, in the order a move passes through them:
//! - [`actor`]: the `Rescheduler`, reading the cluster view every tick, keeping the inspect
//!   of every such container while its node is up, and running the jobs;
//! - [`plan`]: what to do, decided from the view alone (pure);
//! - [`ledger`]: each move happens once: claimed, then done (the etcd ledger of replicated
//!   managers plugs in behind the same trait);
//! - [`rebuild`]: the create body, rebuilt from the cached inspect;
//! - [`jobs`]: the move (create flow, connect, start) and the stale copy's removal.
//!
//! Nothing here is stored but the ledger: after a restart Shoal rebuilds what it needs
//! from the containers' labels (swarm id, policy, and `com.docker.swarm.rescheduled-from`
//! on the copies it made).

mod actor;
pub mod etcd_ledger;
pub mod jobs;
pub mod ledger;
pub mod plan;
pub mod rebuild;

#[cfg(test)]
mod tests;

pub use actor::{Follow, Lead, Rescheduler, ReschedulerConfig, DEFAULT_GRACE};
pub use etcd_ledger::EtcdLedger;
pub use ledger::{Entry, Ledger, LedgerError, MemoryLedger};

/// Label on a copy the rescheduler made: the address of the node it was moved from. It
/// tells, after a restart, which of two containers with one swarm id is the copy.
pub const LABEL_RESCHEDULED_FROM: &str = "com.docker.swarm.rescheduled-from";
