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
        let changes = answer.events().iter().filter_map(|event| {
            let kv = event.kv()?;
            Some(match event.event_type() {
                EventType::Put => Change::Put {
                    key: kv.key(),
                    value: kv.value(),
                    revision: kv.mod_revision(),
                },
                EventType::Delete => Change::Delete {
                    key: kv.key(),
                    revision: kv.mod_revision(),
                },
            })
        });
        if apply(&mut view, dir, changes) {
            tx.send_replace(Arc::new(view.clone()));
        }
        if tx.is_closed() {
            return EtcdError::WatchEnded("nobody reads the view".into());
        }
    }
}

/// One event of a watch answer.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    Put {
        key: &'a [u8],
        value: &'a [u8],
        revision: i64,
    },
    Delete {
        key: &'a [u8],
        revision: i64,
    },
}

/// Applies watch events to the view; true when its entries changed (readers need a new
/// snapshot only then).
fn apply<'a>(view: &mut PrefixView, dir: &str, changes: impl Iterator<Item = Change<'a>>) -> bool {
    let mut changed = false;
    for change in changes {
        let (key, revision) = match change {
            Change::Put { key, revision, .. } | Change::Delete { key, revision } => (key, revision),
        };
        view.revision = view.revision.max(revision);
        let Some(key) = relative(dir, key) else {
            continue;
        };
        changed |= match change {
            Change::Put { value, .. } => {
                let old = view.entries.insert(key, value.to_vec());
                old.as_deref() != Some(value)
            }
            Change::Delete { .. } => view.entries.remove(&key).is_some(),
        };
    }
    changed
}

/// The key below `dir`, when it is valid UTF-8 and not empty.
fn relative(dir: &str, key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    key.strip_prefix(dir)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> PrefixView {
        PrefixView {
            entries: BTreeMap::new(),
            revision: 5,
            link: Link::Up,
        }
    }

    #[test]
    fn puts_and_deletes_under_the_prefix() {
        let mut v = view();
        let put = |key: &'static str, value: &'static str, revision| Change::Put {
            key: key.as_bytes(),
            value: value.as_bytes(),
            revision,
        };
        assert!(apply(
            &mut v,
            "/shoal/nodes/",
            [
                put("/shoal/nodes/a:1", "a:1", 6),
                put("/shoal/nodes/b:2", "b:2", 7)
            ]
            .into_iter()
        ));
        assert_eq!(v.entries.keys().collect::<Vec<_>>(), ["a:1", "b:2"]);
        assert_eq!(v.revision, 7);
        // The same value again is no change; a new value is one.
        assert!(!apply(
            &mut v,
            "/shoal/nodes/",
            [put("/shoal/nodes/a:1", "a:1", 8)].into_iter()
        ));
        assert!(apply(
            &mut v,
            "/shoal/nodes/",
            [put("/shoal/nodes/a:1", "x", 9)].into_iter()
        ));
        // A delete, one of a key not held, and a key outside the folder (or the folder
        // itself) change nothing but the revision.
        let del = |key: &'static str, revision| Change::Delete {
            key: key.as_bytes(),
            revision,
        };
        assert!(apply(
            &mut v,
            "/shoal/nodes/",
            [del("/shoal/nodes/b:2", 10)].into_iter()
        ));
        assert!(!apply(
            &mut v,
            "/shoal/nodes/",
            [
                del("/shoal/nodes/zz:1", 11),
                put("/shoal/other", "o", 12),
                put("/shoal/nodes/", "", 13)
            ]
            .into_iter()
        ));
        assert_eq!(v.entries.keys().collect::<Vec<_>>(), ["a:1"]);
        assert_eq!(v.revision, 13);
    }

    #[test]
    fn keys_below_the_folder_only() {
        assert_eq!(relative("/p/nodes/", b"/p/nodes/h:1"), Some("h:1".into()));
        assert_eq!(relative("/p/nodes/", b"/p/nodes/"), None);
        assert_eq!(relative("/p/nodes/", b"/p/nodesX"), None);
        assert_eq!(relative("/p/nodes/", &[0x2f, 0xff]), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        use crate::etcd::{backoff, RETRY_MAX, RETRY_MIN};
        assert_eq!(backoff(RETRY_MIN), RETRY_MIN * 2);
        assert_eq!(backoff(RETRY_MAX), RETRY_MAX);
        assert_eq!(backoff(std::time::Duration::ZERO), RETRY_MIN);
    }
}
