//! The last whole-cluster container list answer, kept with the identity of what it was
//! rendered from, so a `ps -a` that finds nothing changed is answered with bytes rendered
//! once instead of a merge and a copy of every container (~12 MB at a thousand nodes).
//!
//! The identity is, for every node in the order read: its container table (the `Arc` a
//! node publishes anew whenever a container is created, removed or changes), whether the
//! node is down (its containers then show `Host Down`) and the name it is shown under.
//! Nothing else of a snapshot goes into the answer, so a node refreshing its facts or
//! its health counters does not throw the answer away. Tables are held weakly: the memo
//! keeps no container alive, and a table's allocation (not its contents) outlives it only
//! so that its address cannot be taken by a newer table while the memo compares with it.
//!
//! One answer is kept, whatever the query it answers (`variant`), so the memo costs at most
//! one answer's bytes per published view. And it is kept only for a cluster that holds
//! still: a list that finds the cluster changed since the last one only notes what it saw
//! (and drops the answer kept), and the answer is rendered whole by the next list that
//! finds the same. A large cluster whose nodes change between any two lists (at 5,000
//! engines, status texts alone change ~100 tables a second) then streams every answer as
//! it did without the memo, instead of rendering, keeping and sending a whole answer
//! (~58 MB there) that no other list would find current.

use super::view::ClusterRead;
use crate::node::{ContainerTable, Health};
use bytes::Bytes;
use std::sync::{Arc, Mutex, Weak};

/// One node as an answer was rendered from it.
struct NodeKey {
    table: Weak<ContainerTable>,
    down: bool,
    name: Arc<str>,
}

struct Memo {
    variant: u8,
    key: Vec<NodeKey>,
    /// The answer, once a second list found the cluster as the first saw it.
    body: Option<Bytes>,
}

/// What the memo says of a list.
pub enum Lookup {
    /// The answer, rendered from what the list reads.
    Kept(Bytes),
    /// The last list saw the cluster as this one does: render the answer and keep it.
    Unchanged,
    /// The cluster changed since the last list (noted now): stream this answer.
    Changed,
}

impl Memo {
    fn answers(&self, read: &ClusterRead, variant: u8) -> bool {
        self.variant == variant
            && self.key.len() == read.nodes.len()
            && self.key.iter().zip(&read.nodes).all(|(k, n)| {
                std::ptr::eq(k.table.as_ptr(), Arc::as_ptr(&n.snapshot.containers))
                    && k.down == (n.snapshot.health == Health::Unhealthy)
                    && (Arc::ptr_eq(&k.name, &n.name) || k.name == n.name)
            })
    }
}

/// See the module docs.
#[derive(Default)]
pub struct AnswerMemo(Mutex<Option<Memo>>);

impl AnswerMemo {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Memo>> {
        // A panic while the lock was held left at worst a stale memo, which `answers`
        // checks like any other.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer kept for `variant` of the query, if rendered from what `read` holds; if
    /// not, whether the last list saw the same (and if not, `read` is noted as seen).
    pub fn get(&self, read: &ClusterRead, variant: u8) -> Lookup {
        let mut slot = self.slot();
        match slot.as_ref().filter(|m| m.answers(read, variant)) {
            Some(Memo { body: Some(b), .. }) => Lookup::Kept(b.clone()),
            Some(_) => Lookup::Unchanged,
            None => {
                *slot = Some(Memo::of(read, variant, None));
                Lookup::Changed
            }
        }
    }

    /// Keeps `body`, the answer to `variant` rendered from `read`, in place of any other.
    pub fn put(&self, read: &ClusterRead, variant: u8, body: Bytes) {
        *self.slot() = Some(Memo::of(read, variant, Some(body)));
    }

    /// Bytes the memo holds (the answer and its key), for the record of its cost.
    pub fn held(&self) -> usize {
        self.slot().as_ref().map_or(0, |m| {
            m.body.as_ref().map_or(0, Bytes::len)
                + m.key.capacity() * std::mem::size_of::<NodeKey>()
        })
    }
}

impl Memo {
    fn of(read: &ClusterRead, variant: u8, body: Option<Bytes>) -> Memo {
        let key = read
            .nodes
            .iter()
            .map(|n| NodeKey {
                table: Arc::downgrade(&n.snapshot.containers),
                down: n.snapshot.health == Health::Unhealthy,
                name: n.name.clone(),
            })
            .collect();
        Memo { variant, key, body }
    }
}
