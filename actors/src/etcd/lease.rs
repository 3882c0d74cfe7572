//! A key held by a lease: what `shoal join` writes for its engine, and the pattern an
//! election candidate follows with a lease of its own.
//!
//! [`HeldKey::start`] spawns a task that grants a lease of `ttl`, writes the key with it,
//! and renews the lease every `heartbeat` ([`keep_alive`]). When etcd cannot be reached
//! it retries; if the lease still lives when etcd answers again it goes on with it (and
//! writes the key again, in case it was deleted), otherwise it grants a new one. So the
//! key exists whenever etcd is up and the holder is alive, and disappears within `ttl`
//! of the holder's death. [`HeldKey::release`] stops whatever attempt is under way
//! (a connection to an etcd that does not answer included) and revokes the lease: the key
//! goes at once.

use super::{backoff, Etcd, EtcdError, RETRY_MIN};
use etcd_client::{Client, PutOptions};
use std::convert::Infallible;
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

/// Renews lease `id` every `heartbeat`, for as long as the future is polled: it returns
/// only when a renewal fails, etcd unreachable (the lease may live on until its TTL runs
/// out) or the lease expired ([`EtcdError::LeaseLost`]). Drop the future to stop renewing
/// (in a `select!` with whatever ends the holder's term).
pub async fn keep_alive(
    etcd: &Etcd,
    client: &mut Client,
    id: i64,
    heartbeat: Duration,
) -> Result<Infallible, EtcdError> {
    let (mut keeper, mut answers) = etcd.timed(client.lease_keep_alive(id)).await?;
    loop {
        // The stream opens with no renewal of its own: renew first, then wait.
        etcd.timed(keeper.keep_alive()).await?;
        match etcd.timed(answers.message()).await? {
            Some(a) if a.ttl() > 0 => {}
            Some(_) => return Err(EtcdError::LeaseLost(id)),
            None => return Err(EtcdError::WatchEnded("keep-alive stream closed".into())),
        }
        tokio::time::sleep(heartbeat).await;
    }
}

/// A key kept under a live lease by a task of its own, until [`HeldKey::release`].
pub struct HeldKey {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    state: watch::Receiver<KeyState>,
}

/// What the holding task keeps from one attempt to the next.
struct Holder {
    etcd: Etcd,
    key: String,
    value: String,
    ttl: i64,
    heartbeat: Duration,
    client: Option<Client>,
    lease: Option<i64>,
    state: watch::Sender<KeyState>,
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
        let (stop_tx, mut stop) = oneshot::channel::<()>();
        let (state_tx, state) = watch::channel(KeyState::Pending);
        let mut holder = Holder {
            etcd,
            key,
            value,
            ttl: i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX),
            heartbeat,
            client: None,
            lease: None,
            state: state_tx,
        };
        let task = tokio::spawn(async move {
            // Stopping drops the attempt where it is; the holder keeps the lease to revoke.
            tokio::select! {
                _ = &mut stop => {}
                _ = holder.hold_until_dropped() => {}
            }
            holder.revoke().await;
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

impl Holder {
    /// Attempts, with a growing wait between failed ones, for as long as it is polled.
    async fn hold_until_dropped(&mut self) {
        let mut wait = RETRY_MIN;
        loop {
            let Err(e) = self.attempt().await;
            if matches!(e, EtcdError::LeaseLost(_)) {
                self.lease = None;
            } else {
                // The next attempt connects afresh, to whichever member answers.
                self.client = None;
            }
            // A key that was held starts its retries afresh.
            if matches!(*self.state.borrow(), KeyState::Held { .. }) {
                wait = RETRY_MIN;
            }
            tracing::warn!(key = %self.key, error = %e, "cannot keep the etcd key alive; retrying");
            self.state.send_replace(KeyState::Failing {
                error: e.to_string(),
            });
            tokio::time::sleep(wait).await;
            wait = backoff(wait);
        }
    }

    /// One attempt: connect if needed, reuse the lease if it still lives or grant one,
    /// write the key, then renew until that fails.
    async fn attempt(&mut self) -> Result<Infallible, EtcdError> {
        let etcd = &self.etcd;
        let client = match &mut self.client {
            Some(c) => c,
            None => self.client.insert(etcd.connect().await?),
        };
        if let Some(id) = self.lease {
            if etcd.timed(client.lease_time_to_live(id, None)).await?.ttl() <= 0 {
                self.lease = None;
            }
        }
        let id = match self.lease {
            Some(id) => id,
            None => {
                let granted = etcd.timed(client.lease_grant(self.ttl, None)).await?;
                self.lease = Some(granted.id());
                granted.id()
            }
        };
        let put = client.put(
            self.key.as_str(),
            self.value.as_str(),
            Some(PutOptions::new().with_lease(id)),
        );
        etcd.timed(put).await?;
        self.state.send_replace(KeyState::Held { lease: id });
        tracing::info!(key = %self.key, lease = format_args!("{id:x}"), "etcd key written");
        keep_alive(etcd, client, id, self.heartbeat).await
    }

    /// Revokes the lease, if one was granted: the key goes now rather than at the end of
    /// its TTL.
    async fn revoke(&mut self) {
        let Some(id) = self.lease else { return };
        let client = match self.client.take() {
            Some(c) => Some(c),
            None => self.etcd.connect().await.ok(),
        };
        let Some(mut client) = client else {
            tracing::warn!(key = %self.key, "etcd unreachable: the key expires with its lease");
            return;
        };
        match self.etcd.timed(client.lease_revoke(id)).await {
            Ok(_) => tracing::info!(key = %self.key, "etcd lease revoked"),
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "cannot revoke the lease; the key expires with it")
            }
        }
    }
}
