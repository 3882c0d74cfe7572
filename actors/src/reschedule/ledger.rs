//! The ledger: what the rescheduler has claimed and done, so each move of a container
//! away from a failed node happens once.
//!
//! A move is named by the container's `com.docker.swarm.id` and the node it leaves: the
//! same container may move again later, from its new node. `claim` is the one decision
//! point: only the caller that gets `true` creates the copy. A claim ends as `done` (the
//! copy exists: nobody moves it away from that node again, even if the copy is later
//! removed by hand), or is `release`d (the create failed; a later try may claim it), and
//! the entry is `forget`-ed once the stale original on the returned node is gone.
//!
//! One manager keeps it in memory ([`MemoryLedger`]): after a restart it starts empty,
//! and the containers' labels tell what was done (a copy with the same swarm id on a live
//! node). Replicated managers give it an etcd implementation (a key per move under the
//! cluster prefix, `claim` a transaction that creates it only if absent), so a new primary
//! neither repeats nor misses a move. Async for that reason, though memory answers at once.

use std::cell::RefCell;
use std::collections::HashMap;

use futures_util::future::LocalBoxFuture;
use thiserror::Error;

use crate::scheduler::NodeId;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// The store behind the ledger cannot be reached: nothing is moved until it can.
    #[error("reschedule ledger unavailable: {0}")]
    Unavailable(String),
}

/// What is recorded of one move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A manager is creating the copy.
    Claimed,
    /// The copy exists, as `container_id` on `to`.
    Done { to: NodeId, container_id: String },
}

/// See the module doc. Implementations must make `claim` atomic: of two claims of one
/// move, one answers `true`.
pub trait Ledger {
    /// Claims the move of `swarm_id` away from `from`: `true` when the caller is to do it,
    /// `false` when it is done or being done.
    fn claim(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<bool, LedgerError>>;
    /// The copy exists.
    fn done(
        &self,
        swarm_id: &str,
        from: &NodeId,
        to: &NodeId,
        container_id: &str,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>>;
    /// The claim is given back: the copy could not be made.
    fn release(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>>;
    /// The move is over: the original on `from` was removed.
    fn forget(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>>;
}

/// The ledger of one manager without a store.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: RefCell<HashMap<(String, NodeId), Entry>>,
}

impl MemoryLedger {
    /// The entry of one move, if any (tests, reports).
    pub fn entry(&self, swarm_id: &str, from: &NodeId) -> Option<Entry> {
        self.entries
            .borrow()
            .get(&(swarm_id.to_owned(), from.clone()))
            .cloned()
    }

    fn key(swarm_id: &str, from: &NodeId) -> (String, NodeId) {
        (swarm_id.to_owned(), from.clone())
    }
}

fn ready<T: 'static>(v: T) -> LocalBoxFuture<'static, T> {
    Box::pin(async move { v })
}

impl Ledger for MemoryLedger {
    fn claim(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<bool, LedgerError>> {
        let mut entries = self.entries.borrow_mut();
        let key = Self::key(swarm_id, from);
        let won = !entries.contains_key(&key);
        if won {
            entries.insert(key, Entry::Claimed);
        }
        ready(Ok(won))
    }

    fn done(
        &self,
        swarm_id: &str,
        from: &NodeId,
        to: &NodeId,
        container_id: &str,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>> {
        self.entries.borrow_mut().insert(
            Self::key(swarm_id, from),
            Entry::Done {
                to: to.clone(),
                container_id: container_id.to_owned(),
            },
        );
        ready(Ok(()))
    }

    fn release(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>> {
        let mut entries = self.entries.borrow_mut();
        let key = Self::key(swarm_id, from);
        // A done move stays done: a late release must not undo it.
        if entries.get(&key) == Some(&Entry::Claimed) {
            entries.remove(&key);
        }
        ready(Ok(()))
    }

    fn forget(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>> {
        self.entries.borrow_mut().remove(&Self::key(swarm_id, from));
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix::test]
    async fn one_claim_wins_and_a_done_move_is_not_claimed_again() {
        let l = MemoryLedger::default();
        let (a, b) = (NodeId::new("a:2375"), NodeId::new("b:2375"));
        assert!(l.claim("s1", &a).await.unwrap());
        assert!(!l.claim("s1", &a).await.unwrap(), "claimed already");
        assert!(l.claim("s1", &b).await.unwrap(), "another move of it");
        l.done("s1", &a, &b, "c2").await.unwrap();
        l.release("s1", &a).await.unwrap();
        assert_eq!(
            l.entry("s1", &a),
            Some(Entry::Done {
                to: b.clone(),
                container_id: "c2".into()
            }),
            "a late release does not undo a done move"
        );
        assert!(!l.claim("s1", &a).await.unwrap());
        l.forget("s1", &a).await.unwrap();
        assert!(l.claim("s1", &a).await.unwrap(), "over: it may move again");
    }

    #[actix::test]
    async fn a_released_claim_may_be_claimed_again() {
        let l = MemoryLedger::default();
        let a = NodeId::new("a:2375");
        assert!(l.claim("s1", &a).await.unwrap());
        l.release("s1", &a).await.unwrap();
        assert_eq!(l.entry("s1", &a), None);
        assert!(l.claim("s1", &a).await.unwrap());
    }
}
