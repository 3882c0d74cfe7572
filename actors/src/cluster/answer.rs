//! The last whole-cluster container list, kept with the identity of what it was worked out
//! from: its order (every container it lists, sorted), and its bytes once rendered, so a
//! `ps -a` that finds nothing changed is answered with bytes rendered once instead of a
//! sort and a copy of every container (~12 MB at a thousand nodes), and one that finds a
//! few nodes changed sorts only their containers into the order kept.
//!
//! The identity (a [`ReadKey`]) is, for every node in the order read: its container table
//! (the `Arc` a node publishes anew whenever a container is created, removed or changes),
//! whether the node is down (its containers then show `Host Down`) and the name it is
//! shown under. Nothing else of a snapshot goes into the answer, so a node refreshing its
//! facts or its health counters does not throw the answer away.
//!
//! One answer is kept, whatever the query it answers (`variant`), so the memo costs at most
//! one answer's bytes (and its order, 24 bytes a container) per published view. The bytes
//! are kept only for a cluster that holds still: a list that finds the cluster changed
//! since the last one keeps only the order it worked out (and drops the bytes kept), and
//! the answer is rendered whole by the next list that finds the same. A large cluster
//! whose nodes change between any two lists (at 5,000 engines, status texts alone change
//! ~100 tables a second) then streams every answer, instead of rendering, keeping and
//! sending a whole answer (~58 MB there) that no other list would find current.

use super::key::ReadKey;
use super::view::ClusterRead;
use crate::node::{ContainerTable, Listed, NodeSnapshot};
use bytes::Bytes;
use std::sync::{Arc, Mutex};

fn table(s: &Arc<NodeSnapshot>) -> &Arc<ContainerTable> {
    &s.containers
}

struct Memo {
    variant: u8,
    key: ReadKey<ContainerTable>,
    /// What the answer lists, in order.
    order: Arc<[Listed]>,
    /// The answer, once a second list found the cluster as the first saw it.
    body: Option<Bytes>,
}

/// What the memo says of a list.
pub enum Lookup {
    /// The answer, rendered from what the list reads.
    Kept(Bytes),
    /// What the answer lists, in order; `still` when the last list saw the cluster as
    /// this one does (render the answer whole and `put` it), else stream it.
    Order { order: Arc<[Listed]>, still: bool },
}

/// What changed since the last whole list, for working out the order again: the order
/// kept and the positions of the nodes whose tables or health changed since. `None` when
/// the nodes themselves changed (or the last list was of another variant): sort afresh.
pub struct Since<'a> {
    pub order: &'a [Listed],
    pub changed: &'a [usize],
}

/// See the module docs.
#[derive(Default)]
pub struct AnswerMemo(Mutex<Option<Memo>>);

impl AnswerMemo {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Memo>> {
        // A panic while the lock was held left at worst a stale memo, which the key checks
        // like any other.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer kept for `variant` of the query, if rendered from what `read` holds;
    /// else its order: the one kept when the cluster is as the last list saw it, else
    /// worked out by `order_of` from what changed since (and kept, with `read`'s key).
    ///
    /// `order_of` runs under the memo's lock: a second list meanwhile waits for the order
    /// instead of working it out too.
    pub fn get(
        &self,
        read: &ClusterRead,
        variant: u8,
        order_of: impl FnOnce(Option<Since<'_>>) -> Vec<Listed>,
    ) -> Lookup {
        let mut slot = self.slot();
        let last = slot.as_ref().filter(|m| m.variant == variant);
        if let Some(m) = last.filter(|m| m.key.matches(read)) {
            return match &m.body {
                Some(b) => Lookup::Kept(b.clone()),
                None => Lookup::Order {
                    order: m.order.clone(),
                    still: true,
                },
            };
        }
        let changed = last.and_then(|m| m.key.changed(read).map(|c| (m, c)));
        let order: Arc<[Listed]> = order_of(changed.as_ref().map(|(m, c)| Since {
            order: &m.order,
            changed: c,
        }))
        .into();
        *slot = Some(Memo {
            variant,
            key: ReadKey::of(read, table),
            order: order.clone(),
            body: None,
        });
        Lookup::Order {
            order,
            still: false,
        }
    }

    /// Keeps `body`, the answer to `variant` rendered from `read` in `order`, in place of
    /// any other.
    pub fn put(&self, read: &ClusterRead, variant: u8, order: Arc<[Listed]>, body: Bytes) {
        *self.slot() = Some(Memo {
            variant,
            key: ReadKey::of(read, table),
            order,
            body: Some(body),
        });
    }

    /// Bytes the memo holds (the answer, its order and its key), for the record of its cost.
    pub fn held(&self) -> usize {
        self.slot().as_ref().map_or(0, |m| {
            m.body.as_ref().map_or(0, Bytes::len)
                + std::mem::size_of_val::<[Listed]>(&m.order)
                + m.key.held()
        })
    }
}
