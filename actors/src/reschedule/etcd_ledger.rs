//! The ledger of replicated managers, in etcd: one key per move,
//! `<prefix>/reschedule/<swarm_id>/<from>`, so a new primary neither repeats a move the
//! last one made nor misses one it did not finish.
//!
//! - `claim` is a transaction that writes the key only if it does not exist
//!   (`create_revision == 0`), under the primary's election lease: of two claims one wins,
//!   and a claim whose primary died before finishing goes away with that primary's lease,
//!   so the next primary may claim it again (the planner sees by the swarm id whether the
//!   dead primary's copy was made after all).
//! - `done` writes the key again without a lease: a made copy is recorded for good.
//! - `release` deletes the key only while it still holds this primary's claim (a
//!   transaction comparing the lease), so it never undoes a done move.
//! - `forget` deletes the key once the stale original is gone.
//!
//! When etcd cannot be reached each call answers [`LedgerError::Unavailable`]: the
//! rescheduler moves nothing until it can.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use super::ledger::{Entry, Ledger, LedgerError};
use crate::etcd::{Etcd, EtcdError};
use crate::scheduler::NodeId;

/// The folder of the moves under the cluster prefix.
pub const RESCHEDULE_DIR: &str = "reschedule";

/// What a key holds.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "lowercase")]
enum Record {
    /// `by`: the advertised address of the primary making the copy.
    Claimed {
        by: String,
    },
    Done {
        to: String,
        container_id: String,
    },
}

/// See the module doc. One per primary term: it holds that term's lease.
pub struct EtcdLedger {
    etcd: Etcd,
    /// `<prefix>/reschedule`.
    dir: String,
    lease: i64,
    by: String,
    client: Rc<RefCell<Option<Client>>>,
}

impl EtcdLedger {
    /// The ledger under `dir` (`<prefix>/reschedule`), claiming with `lease`, as `by`.
    pub fn new(etcd: Etcd, dir: String, lease: i64, by: String) -> Self {
        EtcdLedger {
            etcd,
            dir,
            lease,
            by,
            client: Rc::new(RefCell::new(None)),
        }
    }

    fn key(&self, swarm_id: &str, from: &NodeId) -> String {
        format!("{}/{swarm_id}/{from}", self.dir)
    }

    /// Runs `op` with a client (connected on first use, dropped after a failure so the
    /// next call dials whichever member answers).
    fn call<T, F, Fut>(&self, op: F) -> LocalBoxFuture<'static, Result<T, LedgerError>>
    where
        T: 'static,
        F: FnOnce(Etcd, Client) -> Fut + 'static,
        Fut: Future<Output = Result<T, EtcdError>>,
    {
        let (etcd, slot) = (self.etcd.clone(), self.client.clone());
        Box::pin(async move {
            let cached = slot.borrow().clone();
            let client = match cached {
                Some(c) => c,
                None => {
                    let c = etcd.connect().await.map_err(unavailable)?;
                    *slot.borrow_mut() = Some(c.clone());
                    c
                }
            };
            let answer = op(etcd, client).await;
            if answer.is_err() {
                slot.borrow_mut().take();
            }
            answer.map_err(unavailable)
        })
    }

    /// The entry of one move, if any (tests, reports).
    pub fn entry(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<Option<Entry>, LedgerError>> {
        let key = self.key(swarm_id, from);
        self.call(move |etcd, mut c| async move {
            let got = etcd.timed(c.get(key, None)).await?;
            Ok(got
                .kvs()
                .first()
                .and_then(|kv| serde_json::from_slice::<Record>(kv.value()).ok())
                .map(|r| match r {
                    Record::Claimed { .. } => Entry::Claimed,
                    Record::Done { to, container_id } => Entry::Done {
                        to: NodeId::new(to),
                        container_id,
                    },
                }))
        })
    }
}

fn unavailable(e: EtcdError) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

fn json(r: &Record) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

impl Ledger for EtcdLedger {
    fn claim(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<bool, LedgerError>> {
        let key = self.key(swarm_id, from);
        let value = json(&Record::Claimed {
            by: self.by.clone(),
        });
        let lease = self.lease;
        self.call(move |etcd, mut c| async move {
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.as_str(),
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                )]);
            Ok(etcd.timed(c.txn(txn)).await?.succeeded())
        })
    }

    fn done(
        &self,
        swarm_id: &str,
        from: &NodeId,
        to: &NodeId,
        container_id: &str,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>> {
        let key = self.key(swarm_id, from);
        let value = json(&Record::Done {
            to: to.to_string(),
            container_id: container_id.to_owned(),
        });
        self.call(move |etcd, mut c| async move {
            etcd.timed(c.put(key, value, None)).await?;
            Ok(())
        })
    }

    fn release(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>> {
        let key = self.key(swarm_id, from);
        let lease = self.lease;
        self.call(move |etcd, mut c| async move {
            let txn = Txn::new()
                .when([Compare::lease(key.as_str(), CompareOp::Equal, lease)])
                .and_then([TxnOp::delete(key.as_str(), None)]);
            etcd.timed(c.txn(txn)).await?;
            Ok(())
        })
    }

    fn forget(
        &self,
        swarm_id: &str,
        from: &NodeId,
    ) -> LocalBoxFuture<'static, Result<(), LedgerError>> {
        let key = self.key(swarm_id, from);
        self.call(move |etcd, mut c| async move {
            etcd.timed(c.delete(key, None)).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written() {
        let claimed = Record::Claimed {
            by: "10.0.0.1:2375".into(),
        };
        let done = Record::Done {
            to: "b:2375".into(),
            container_id: "c2".into(),
        };
        for r in [claimed, done] {
            let back: Record = serde_json::from_str(&json(&r)).unwrap();
            assert_eq!(back, r);
        }
        assert_eq!(
            json(&Record::Claimed { by: "m".into() }),
            r#"{"state":"claimed","by":"m"}"#
        );
    }
}
