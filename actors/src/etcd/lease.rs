//! A key held by a lease: what `shoal join` writes for its engine, and the pattern an
//! election candidate follows with a lease of its own.
//!
//! [`HeldKey::start`] spawns a task that grants a lease of `ttl`, writes the key with it,
//! and renews the lease every `heartbeat` ([`keep_alive`]). When etcd cannot be reached
//! it retries; if the lease still lives when etcd answers again it goes on with it (and
//! writes the key again, in case it was deleted), otherwise it grants a new one. So the
//! key exists whenever etcd is up and the holder is alive, and disappears within `ttl`
//! of the holder's death. [`HeldKey::release`] revokes the lease: the key goes at once.

use super::{backoff, Etcd, EtcdError, RETRY_MIN};
use etcd_client::{Client, PutOptions};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// What the holder of a key can see of it.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyState {
    /// Not written yet.
    Pending,
    /// Written, with this lease, renewed as it should be.
    Held { lease: i64 },
    /// etcd did not answer the last attempt; the key lives on until its lease expires.
    Failing { error: String },
}

/// Why [`keep_alive`] returned.
#[derive(Debug, PartialEq)]
pub enum LeaseEnd {
    /// `stop` fired (or was dropped): the lease is still alive, the caller revokes it.
    Stopped,
}

/// Renews lease `id` every `heartbeat` until `stop` fires. An error means the lease could
/// not be renewed (etcd unreachable: the lease may live on until its TTL runs out) or has
/// expired ([`EtcdError::LeaseLost`]).
pub async fn keep_alive(
    etcd: &Etcd,
    client: &mut Client,
    id: i64,
    heartbeat: Duration,
    stop: &mut oneshot::Receiver<()>,
) -> Result<LeaseEnd, EtcdError> {
    let (mut keeper, mut answers) = etcd.timed(client.lease_keep_alive(id)).await?;
    loop {
        // The stream opens with no renewal of its own: renew first, then wait.
        etcd.timed(keeper.keep_alive()).await?;
        let answer = etcd.timed(answers.message()).await?;
        match answer {
            Some(a) if a.ttl() > 0 => {}
            Some(_) => return Err(EtcdError::LeaseLost(id)),
            None => return Err(EtcdError::WatchEnded("keep-alive stream closed".into())),
        }
        tokio::select! {
            _ = &mut *stop => return Ok(LeaseEnd::Stopped),
            _ = tokio::time::sleep(heartbeat) => {}
        }
    }
}

/// A key kept under a live lease by a task of its own, until [`HeldKey::release`].
pub struct HeldKey {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    state: watch::Receiver<KeyState>,
}

impl HeldKey {
    /// Starts holding `key` = `value` with a lease of `ttl` renewed every `heartbeat`.
    /// Needs a tokio runtime (actix's is one).
    pub fn start(
        etcd: Etcd,
        key: String,
        value: String,
        ttl: Duration,
        heartbeat: Duration,
    ) -> HeldKey {
        let (stop_tx, mut stop) = oneshot::channel();
        let (state_tx, state) = watch::channel(KeyState::Pending);
        let ttl_secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let task = tokio::spawn(async move {
            let mut lease: Option<i64> = None;
            let mut client: Option<Client> = None;
            let mut wait = RETRY_MIN;
            loop {
                let attempt = hold(
                    &etcd,
                    &mut client,
                    &mut lease,
                    &key,
                    &value,
                    ttl_secs,
                    heartbeat,
                    &state_tx,
                    &mut stop,
                )
                .await;
                match attempt {
                    Ok(LeaseEnd::Stopped) => break,
                    Err(e) => {
                        if matches!(e, EtcdError::LeaseLost(_)) {
                            lease = None;
                        } else {
                            // The next attempt connects afresh, to whichever member answers.
                            client = None;
                        }
                        // A key that was held starts its retries afresh.
                        if matches!(*state_tx.borrow(), KeyState::Held { .. }) {
                            wait = RETRY_MIN;
                        }
                        tracing::warn!(key = %key, error = %e, "cannot keep the etcd key alive; retrying");
                        state_tx.send_replace(KeyState::Failing {
                            error: e.to_string(),
                        });
                    }
                }
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = backoff(wait);
            }
            // Revoke: the key goes now rather than at the end of its TTL.
            let client = match client {
                Some(c) => Some(c),
                None if lease.is_some() => etcd.connect().await.ok(),
                None => None,
            };
            if let (Some(id), Some(mut c)) = (lease, client) {
                match etcd.timed(c.lease_revoke(id)).await {
                    Ok(_) => tracing::info!(key = %key, "etcd lease revoked"),
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "cannot revoke the lease; the key expires with it")
                    }
                }
            }
        });
        HeldKey {
            stop: Some(stop_tx),
            task,
            state,
        }
    }

    /// The key's state, as it changes.
    pub fn state(&self) -> watch::Receiver<KeyState> {
        self.state.clone()
    }

    /// Stops renewing and revokes the lease (within the call timeout), so the key is
    /// deleted now.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for HeldKey {
    fn drop(&mut self) {
        // Dropped without `release`: stop renewing; the key expires with its lease.
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

/// One attempt: connect if needed, reuse the lease if it still lives or grant one, write
/// the key, then renew until stopped or failing.
#[allow(
    clippy::too_many_arguments,
    reason = "the retry loop's state, passed by reference so it survives each attempt"
)]
async fn hold(
    etcd: &Etcd,
    client: &mut Option<Client>,
    lease: &mut Option<i64>,
    key: &str,
    value: &str,
    ttl: i64,
    heartbeat: Duration,
    state: &watch::Sender<KeyState>,
    stop: &mut oneshot::Receiver<()>,
) -> Result<LeaseEnd, EtcdError> {
    let c = match client {
        Some(c) => c,
        None => client.insert(etcd.connect().await?),
    };
    if let Some(id) = *lease {
        let alive = etcd.timed(c.lease_time_to_live(id, None)).await?;
        if alive.ttl() <= 0 {
            *lease = None;
        }
    }
    let id = match *lease {
        Some(id) => id,
        None => {
            let granted = etcd.timed(c.lease_grant(ttl, None)).await?;
            *lease = Some(granted.id());
            granted.id()
        }
    };
    etcd.timed(c.put(key, value, Some(PutOptions::new().with_lease(id))))
        .await?;
    state.send_replace(KeyState::Held { lease: id });
    tracing::info!(key = %key, lease = format_args!("{id:x}"), "etcd key written");
    keep_alive(etcd, c, id, heartbeat, stop).await
}
