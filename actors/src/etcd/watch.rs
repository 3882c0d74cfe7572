//! Every key under a prefix, kept up to date without polling.
//!
//! [`PrefixWatch::start`] spawns a task that `get`s the prefix, publishes the snapshot
//! with its revision, then watches the prefix from the next revision: etcd replays every
//! change made after the `get`, so none is lost between the two. When the watch or the
//! connection fails (etcd down, the revision compacted, a cancelled watch) the task
//! publishes [`Link::Down`] with the last snapshot unchanged, and tries again with a fresh
//! `get` (which also drops keys deleted or expired while it was away) and a new watch.
//!
//! Readers hold the `watch::Receiver` and read the newest [`PrefixView`]; a burst of
//! changes costs them one wake-up.

use super::{backoff, Etcd, EtcdError, RETRY_MIN};
use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

/// Whether the watch is in step with etcd.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Not synced yet.
    Connecting,
    /// The snapshot is etcd's as of `revision`, and changes arrive as they happen.
    Up,
    /// etcd could not be reached since `since`; the snapshot is the last one seen.
    Down { since: SystemTime, error: String },
}

/// The keys under the prefix (the prefix and its `/` removed) and their values.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixView {
    pub entries: BTreeMap<String, Vec<u8>>,
    /// The etcd revision the entries are as of (0 before the first sync).
    pub revision: i64,
    pub link: Link,
}

/// The task that keeps a [`PrefixView`] up to date; it stops when the watch is dropped.
pub struct PrefixWatch {
    view: watch::Receiver<Arc<PrefixView>>,
    task: tokio::task::JoinHandle<()>,
}

impl PrefixWatch {
    /// Watches every key under `prefix` (e.g. `/shoal/nodes`). Needs a tokio runtime.
    pub fn start(etcd: Etcd, prefix: String) -> PrefixWatch {
        let (tx, view) = watch::channel(Arc::new(PrefixView {
            entries: BTreeMap::new(),
            revision: 0,
            link: Link::Connecting,
        }));
        let task = tokio::spawn(run(etcd, prefix, tx));
        PrefixWatch { view, task }
    }

    /// The newest view, and every later one.
    pub fn view(&self) -> watch::Receiver<Arc<PrefixView>> {
        self.view.clone()
    }
}

impl Drop for PrefixWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(etcd: Etcd, prefix: String, tx: watch::Sender<Arc<PrefixView>>) {
    let dir = format!("{}/", prefix.trim_end_matches('/'));
    let mut client: Option<Client> = None;
    let mut wait = RETRY_MIN;
    // After a watch that was in step fails, one attempt at once, to another member if
    // need be, before etcd is said to be unreachable: losing one member of three is not
    // an outage.
    let mut quick_retry = false;
    loop {
        let error = follow(&etcd, &mut client, &dir, &tx, &mut wait, &mut quick_retry).await;
        if tx.is_closed() {
            return;
        }
        // The next attempt connects afresh, to whichever member answers.
        client = None;
        if std::mem::take(&mut quick_retry) {
            tracing::info!(error = %error, "etcd watch failed; syncing again");
            continue;
        }
        let was_up = !matches!(tx.borrow().link, Link::Down { .. });
        if was_up {
            tracing::warn!(endpoints = etcd.endpoints(), error = %error, "etcd unreachable: keeping the nodes known so far");
            let mut view = PrefixView::clone(&tx.borrow());
            view.link = Link::Down {
                since: SystemTime::now(),
                error: error.to_string(),
            };
            tx.send_replace(Arc::new(view));
        } else {
            tracing::debug!(error = %error, "etcd still unreachable");
        }
        tokio::time::sleep(wait).await;
        wait = backoff(wait);
    }
}

/// Syncs once (`get`, then watch from the revision after it) and follows the watch until
/// it fails; returns why.
async fn follow(
    etcd: &Etcd,
    client: &mut Option<Client>,
    dir: &str,
    tx: &watch::Sender<Arc<PrefixView>>,
    wait: &mut std::time::Duration,
    quick_retry: &mut bool,
) -> EtcdError {
    let c = match client {
        Some(c) => c,
        None => match etcd.connect().await {
            Ok(c) => client.insert(c),
            Err(e) => return e,
        },
    };
    let got = match etcd
        .timed(c.get(dir, Some(GetOptions::new().with_prefix())))
        .await
    {
        Ok(got) => got,
        Err(e) => return e,
    };
    let revision = got.header().map_or(0, |h| h.revision());
    let entries: BTreeMap<String, Vec<u8>> = got
        .kvs()
        .iter()
        .filter_map(|kv| Some((relative(dir, kv.key())?, kv.value().to_vec())))
        .collect();
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1);
    let mut stream = match etcd.timed(c.watch(dir, Some(options))).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    let was_down = matches!(tx.borrow().link, Link::Down { .. });
    if was_down {
        tracing::info!(
            endpoints = etcd.endpoints(),
            revision,
            keys = entries.len(),
            "etcd reachable again: caught up"
        );
    }
    let mut view = PrefixView {
        entries,
        revision,
        link: Link::Up,
    };
    tx.send_replace(Arc::new(view.clone()));
    *wait = RETRY_MIN;
    *quick_retry = true;
    loop {
        let answer = match stream.message().await {
            Ok(Some(a)) => a,
            Ok(None) => return EtcdError::WatchEnded("etcd closed the watch".into()),
            Err(e) => return etcd.unreachable(e),
        };
        if answer.canceled() {
            let why = if answer.compact_revision() > 0 {
                format!("revision {} was compacted", revision + 1)
            } else {
                answer.cancel_reason().to_string()
            };
            return EtcdError::WatchEnded(why);
        }
        let mut changed = false;
        for event in answer.events() {
            let Some(kv) = event.kv() else { continue };
            let Some(key) = relative(dir, kv.key()) else {
                continue;
            };
            changed |= match event.event_type() {
                EventType::Put => {
                    let old = view.entries.insert(key, kv.value().to_vec());
                    old.as_deref() != Some(kv.value())
                }
                EventType::Delete => view.entries.remove(&key).is_some(),
            };
            view.revision = view.revision.max(kv.mod_revision());
        }
        if changed {
            tx.send_replace(Arc::new(view.clone()));
        }
        if tx.is_closed() {
            return EtcdError::WatchEnded("nobody reads the view".into());
        }
    }
}

/// The key below `dir`, when it is valid UTF-8 and not empty.
fn relative(dir: &str, key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    key.strip_prefix(dir)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}
