//! Electing one primary among replicated managers (`shoal manage --replication`), through
//! etcd and nothing home-made.
//!
//! The primary is whoever holds the key `<prefix>/managers/primary`: a manager grants a
//! lease of `--replication-ttl`, and in one transaction writes its advertised address
//! under that lease *only if the key does not exist* (`create_revision == 0`); otherwise
//! the same transaction reads who holds it. So of any number of candidates, exactly one
//! wins, and the key lives as long as the winner renews its lease.
//!
//! - The primary renews its lease every third of the TTL. It steps down (publishes
//!   [`Role::Unknown`]) when it could not renew it for two thirds of the TTL, counted from
//!   the moment the last successful renewal was *sent*: etcd renewed no earlier than that,
//!   so the lease cannot have expired yet, and by the time it does (and a replica takes
//!   over) this manager no longer acts as primary. A lease etcd says is gone ends the term
//!   at once.
//! - A replica watches the key from the revision it read it at; when the key is deleted
//!   (lease expired or revoked) it campaigns again at once, so a replica takes over within
//!   the TTL of the primary's death.
//! - While etcd cannot be reached a replica keeps the primary it knew (forwarding to it
//!   still works); a primary keeps its role until its lease may have run out.
//!
//! The role is published through a `watch` channel read by the front (forward or serve) and
//! by the daemon (start and stop the rescheduler's acting).

use crate::etcd::{backoff, Etcd, EtcdError, RETRY_MIN};
use etcd_client::{
    Client, Compare, CompareOp, EventType, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn,
    TxnOp, TxnOpResponse, WatchOptions,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// `--replication-ttl` when not given: long enough that an etcd hiccup does not cost the
/// primary its role, short enough that a dead primary is replaced quickly.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// The key the primary holds, under the cluster prefix.
pub const PRIMARY_KEY: &str = "managers/primary";

/// What this manager is, as the front and `docker info` read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// No primary is known: etcd not reached yet, or this manager just stepped down.
    Unknown,
    /// This manager is the primary, for as long as etcd keeps `lease`.
    Primary { lease: i64 },
    /// Another manager, at `primary` (its advertised `host:port`), is the primary.
    Replica { primary: String },
}

impl Role {
    /// `primary`, `replica` (or `candidate` while no primary is known), for `docker info`.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Unknown => "candidate",
            Role::Primary { .. } => "primary",
            Role::Replica { .. } => "replica",
        }
    }
}

/// How this manager takes part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// The `host:port` the other managers reach this one at (`--advertise`).
    pub advertise: String,
    /// The primary's lease (`--replication-ttl`).
    pub ttl: Duration,
}

/// A running campaign: the task that takes part, and the role it publishes. Dropping it
/// stops taking part (the lease then expires).
pub struct Election {
    role: watch::Receiver<Role>,
    /// Shared with the task, so that resigning can say so at once.
    tx: Arc<watch::Sender<Role>>,
    task: tokio::task::JoinHandle<()>,
    etcd: Etcd,
}

impl Election {
    /// Starts taking part in the election held at `key`. Needs a tokio runtime.
    pub fn start(etcd: Etcd, key: String, config: ElectionConfig) -> Election {
        let (tx, role) = watch::channel(Role::Unknown);
        let tx = Arc::new(tx);
        let (handle, shared) = (etcd.clone(), tx.clone());
        let task = tokio::spawn(async move {
            let mut wait = RETRY_MIN;
            loop {
                let began = Instant::now();
                let e = campaign(&etcd, &key, &config, &tx).await;
                // A campaign that went on for a while starts its retries afresh.
                if began.elapsed() > crate::etcd::RETRY_MAX {
                    wait = RETRY_MIN;
                }
                tracing::warn!(error = %e, "election: etcd failed; trying again");
                tokio::time::sleep(wait).await;
                wait = backoff(wait);
            }
        });
        Election {
            role,
            tx: shared,
            task,
            etcd: handle,
        }
    }

    /// Stops taking part; a primary revokes its lease, so a replica takes over at once
    /// instead of after the TTL (a clean shutdown). Bounded by the etcd call timeouts.
    pub async fn resign(&self) {
        self.task.abort();
        let was = self.tx.send_replace(Role::Unknown);
        let Role::Primary { lease } = was else {
            return;
        };
        let revoked = async {
            let mut c = self.etcd.connect().await?;
            self.etcd.timed(c.lease_revoke(lease)).await
        };
        match revoked.await {
            Ok(_) => tracing::info!("election: resigned; the primary's lease is revoked"),
            Err(e) => {
                tracing::warn!(error = %e, "election: cannot revoke the primary's lease; it expires with its TTL")
            }
        }
    }

    /// The role, as it changes.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn set(tx: &watch::Sender<Role>, role: Role) {
    if *tx.borrow() == role {
        return;
    }
    match &role {
        Role::Primary { lease } => {
            tracing::info!(
                lease = format_args!("{lease:x}"),
                "election: this manager is the primary"
            )
        }
        Role::Replica { primary } => {
            tracing::info!(%primary, "election: this manager is a replica")
        }
        Role::Unknown => tracing::warn!("election: no primary known"),
    }
    tx.send_replace(role);
}

/// Campaigns, leads or follows until etcd fails; answers the failure.
async fn campaign(
    etcd: &Etcd,
    key: &str,
    config: &ElectionConfig,
    tx: &watch::Sender<Role>,
) -> EtcdError {
    let mut client = match etcd.connect().await {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ttl_secs = i64::try_from(config.ttl.as_secs().max(1)).unwrap_or(i64::MAX);
    loop {
        let asked = Instant::now();
        let lease = match etcd.timed(client.lease_grant(ttl_secs, None)).await {
            Ok(l) => l.id(),
            Err(e) => return e,
        };
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                config.advertise.as_str(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let answer = match etcd.timed(client.txn(txn)).await {
            Ok(a) => a,
            Err(e) => return e,
        };
        if answer.succeeded() {
            set(tx, Role::Primary { lease });
            let e = lead(etcd, client, lease, asked, config, tx).await;
            set(tx, Role::Unknown);
            return e;
        }
        // Lost: this lease is not needed (it would expire anyway).
        let _ = etcd.timed(client.lease_revoke(lease)).await;
        let revision = answer.header().map_or(0, |h| h.revision());
        let holder = answer.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
            _ => None,
        });
        if let Some(holder) = holder {
            if holder == config.advertise {
                // Our own key, from a previous life of this manager whose lease still
                // runs: forwarding to ourselves would loop. Wait for it to expire.
                tracing::warn!(
                    "election: the primary key names this manager's own address (a previous run); waiting for its lease to expire"
                );
                set(tx, Role::Unknown);
            } else {
                set(tx, Role::Replica { primary: holder });
            }
        }
        if let Err(e) = follow(etcd, &mut client, key, revision, config, tx).await {
            return e;
        }
    }
}

/// Watches the primary key from after `revision` until it is deleted (then the caller
/// campaigns again); a put names a new primary.
async fn follow(
    etcd: &Etcd,
    client: &mut Client,
    key: &str,
    revision: i64,
    config: &ElectionConfig,
    tx: &watch::Sender<Role>,
) -> Result<(), EtcdError> {
    let options = WatchOptions::new().with_start_revision(revision + 1);
    let mut stream = etcd.timed(client.watch(key, Some(options))).await?;
    loop {
        let answer = match stream.message().await {
            Ok(Some(a)) => a,
            Ok(None) => return Err(EtcdError::WatchEnded("the primary's watch closed".into())),
            Err(e) => return Err(etcd.unreachable(e)),
        };
        if answer.canceled() {
            return Err(EtcdError::WatchEnded(answer.cancel_reason().to_string()));
        }
        for event in answer.events() {
            match event.event_type() {
                EventType::Delete => return Ok(()),
                EventType::Put => {
                    if let Some(kv) = event.kv() {
                        let holder = String::from_utf8_lossy(kv.value()).into_owned();
                        if holder != config.advertise {
                            set(tx, Role::Replica { primary: holder });
                        }
                    }
                }
            }
        }
    }
}

/// Renews `lease` every third of the TTL until it cannot be renewed in time; answers why
/// the term ended. `granted` is when the lease was asked for.
async fn lead(
    etcd: &Etcd,
    client: Client,
    lease: i64,
    granted: Instant,
    config: &ElectionConfig,
    tx: &watch::Sender<Role>,
) -> EtcdError {
    let ttl = config.ttl.max(Duration::from_secs(1));
    let heartbeat = ttl / 3;
    // See the module doc: the role ends before the lease can.
    let valid_for = ttl - heartbeat;
    let mut valid_until = granted + valid_for;
    let mut client = Some(client);
    let mut stream: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    loop {
        let sent = Instant::now();
        let renewed = tokio::time::timeout_at(
            valid_until.into(),
            renew(etcd, &mut client, &mut stream, lease),
        )
        .await;
        let pause = match renewed {
            Err(_) => {
                tracing::warn!("election: the lease was not renewed in time; stepping down");
                return EtcdError::LeaseLost(lease);
            }
            Ok(Ok(true)) => {
                valid_until = sent + valid_for;
                heartbeat
            }
            Ok(Ok(false)) => return EtcdError::LeaseLost(lease),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "election: cannot renew the primary's lease; retrying");
                stream = None;
                client = None;
                RETRY_MIN
            }
        };
        if !matches!(*tx.borrow(), Role::Primary { .. }) {
            return EtcdError::LeaseLost(lease);
        }
        let until = (Instant::now() + pause).min(valid_until);
        tokio::time::sleep_until(until.into()).await;
    }
}

/// One renewal, connecting and opening the keep-alive stream first if needed: `true` when
/// etcd says the lease lives.
async fn renew(
    etcd: &Etcd,
    client: &mut Option<Client>,
    stream: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    lease: i64,
) -> Result<bool, EtcdError> {
    if stream.is_none() {
        let c = match client {
            Some(c) => c,
            None => client.insert(etcd.connect().await?),
        };
        *stream = Some(etcd.timed(c.lease_keep_alive(lease)).await?);
    }
    let Some((keeper, answers)) = stream.as_mut() else {
        return Ok(false);
    };
    etcd.timed(keeper.keep_alive()).await?;
    match etcd.timed(answers.message()).await? {
        Some(a) => Ok(a.ttl() > 0),
        None => Err(EtcdError::WatchEnded("keep-alive stream closed".into())),
    }
}
