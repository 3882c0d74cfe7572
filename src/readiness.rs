//! Telling a service manager when Shoal is ready: systemd's `Type=notify` protocol
//! (sd_notify), spoken with std's `UnixDatagram`, no library and no unsafe.
//!
//! Under a unit with `Type=notify`, systemd passes a datagram socket in `NOTIFY_SOCKET` (a
//! path, or `@name` for the abstract namespace) and waits for `READY=1` on it before it
//! counts the service as started: units ordered after Shoal, and `systemctl start`, wait
//! for it. Shoal says `READY=1` once it serves the API *and* has a first full view of the
//! cluster: every engine discovery named at start has answered its first refresh or
//! failed it. Before that `docker info` would show nodes still pending, and a create
//! could be refused for want of a node that is in fact there. An engine that never
//! answers costs at most one engine timeout (its first refresh fails), and [`READY_LIMIT`]
//! bounds the wait whatever happens, so a start never hangs on the cluster.
//!
//! Meanwhile `STATUS=` lines say how far the view is (`systemctl status shoal` shows the
//! last one). Without `NOTIFY_SOCKET` (not under systemd, or another `Type=`) nothing is
//! sent.

use shoal_actors::cluster::ClusterView;
use shoal_actors::node::Health;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

/// The longest Shoal waits for its first full view before it says `READY=1` anyway (with
/// a `STATUS=` naming how many nodes answered). Below systemd's default start timeout,
/// 90 s, so a cluster of slow engines never fails the unit's start.
pub const READY_LIMIT: Duration = Duration::from_secs(60);

/// How often the view is read again while nodes are still pending, besides every change
/// the ClusterActor publishes (a node's first failed refresh publishes none).
const RECHECK: Duration = Duration::from_millis(250);

#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET={0:?} is not a socket address: {1}")]
    Address(String, #[source] std::io::Error),
    #[error("cannot send to NOTIFY_SOCKET: {0}")]
    Send(#[source] std::io::Error),
}

/// The service manager's notification socket.
pub struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
}

impl Notifier {
    /// The socket `NOTIFY_SOCKET` names; `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<Notifier>, NotifyError> {
        match std::env::var("NOTIFY_SOCKET") {
            Ok(name) if !name.is_empty() => Notifier::to(&name).map(Some),
            _ => Ok(None),
        }
    }

    /// A notifier sending to `name`: a path, or `@name` in the abstract namespace.
    pub fn to(name: &str) -> Result<Notifier, NotifyError> {
        let bad = |e| NotifyError::Address(name.to_string(), e);
        let to = match name.strip_prefix('@') {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name.as_bytes()).map_err(bad)?
            }
            None => SocketAddr::from_pathname(name).map_err(bad)?,
        };
        let socket = UnixDatagram::unbound().map_err(bad)?;
        // A datagram to a local socket is written at once or refused; never wait for it.
        socket.set_nonblocking(true).map_err(bad)?;
        Ok(Notifier { socket, to })
    }

    /// Sends `state`: newline-separated `KEY=VALUE` assignments (`READY=1`, `STATUS=...`).
    pub fn send(&self, state: &str) -> Result<(), NotifyError> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.to)
            .map(|_| ())
            .map_err(NotifyError::Send)
    }
}

/// How far the first full view is: nodes that answered (or failed) their first refresh,
/// of those discovery named at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub answered: usize,
    pub healthy: usize,
    pub expected: usize,
}

impl Progress {
    /// Reads `view`, expecting the `expected` nodes discovery named at start.
    pub fn of(view: &ClusterView, expected: usize) -> Progress {
        let (mut answered, mut healthy) = (0, 0);
        for node in &view.nodes {
            let snap = node.state.borrow();
            if snap.health == Health::Healthy {
                healthy += 1;
            }
            if snap.health != Health::Pending || snap.failures > 0 {
                answered += 1;
            }
        }
        Progress {
            answered,
            healthy,
            expected,
        }
    }

    /// Every node named at start has answered or failed its first refresh.
    pub fn complete(&self) -> bool {
        self.answered >= self.expected
    }

    fn status(&self) -> String {
        format!(
            "STATUS={} of {} nodes answered, {} healthy",
            self.answered, self.expected, self.healthy
        )
    }
}

/// Waits for the first full view (at most `limit`), then tells `notifier` `READY=1`.
/// Runs as a task of its own beside the server, which is already serving.
pub async fn announce(
    notifier: Notifier,
    mut view: watch::Receiver<Arc<ClusterView>>,
    expected: usize,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = None;
    let progress = loop {
        let progress = Progress::of(&view.borrow_and_update(), expected);
        if progress.complete() || tokio::time::Instant::now() >= deadline {
            break progress;
        }
        if last != Some(progress) {
            send(&notifier, &progress.status());
            last = Some(progress);
        }
        tokio::select! {
            changed = view.changed() => {
                // The ClusterActor is gone (shutting down): read again at the slow pace
                // rather than spin on a closed channel.
                if changed.is_err() {
                    tokio::time::sleep(RECHECK).await;
                }
            }
            _ = tokio::time::sleep(RECHECK) => {}
        }
    };
    if !progress.complete() {
        tracing::warn!(
            answered = progress.answered,
            expected,
            "ready before every node answered its first refresh: {} s passed",
            limit.as_secs()
        );
    }
    send(&notifier, &format!("READY=1\n{}", progress.status()));
    tracing::info!(
        answered = progress.answered,
        healthy = progress.healthy,
        "told the service manager READY=1"
    );
}

fn send(notifier: &Notifier, state: &str) {
    if let Err(e) = notifier.send(state) {
        tracing::warn!(error = %e, "service manager notification lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notifier_sends_to_a_path_and_to_an_abstract_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier::to(path.to_str().expect("utf-8")).expect("notifier");
        notifier.send("READY=1").expect("sent");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).expect("received");
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("shoal-readiness-test-{}", std::process::id());
        let receiver = UnixDatagram::bind_addr(
            &SocketAddr::from_abstract_name(name.as_bytes()).expect("addr"),
        )
        .expect("bind abstract");
        Notifier::to(&format!("@{name}"))
            .expect("notifier")
            .send("STATUS=x")
            .expect("sent");
        let n = receiver.recv(&mut buf).expect("received");
        assert_eq!(&buf[..n], b"STATUS=x");
    }

    #[test]
    fn a_socket_nobody_binds_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nobody");
        let notifier = Notifier::to(path.to_str().expect("utf-8")).expect("notifier");
        assert!(matches!(
            notifier.send("READY=1"),
            Err(NotifyError::Send(_))
        ));
    }

    #[test]
    fn progress_is_complete_when_every_named_node_answered() {
        let p = |answered, expected| Progress {
            answered,
            healthy: 0,
            expected,
        };
        assert!(p(0, 0).complete());
        assert!(!p(2, 3).complete());
        assert!(p(3, 3).complete());
        assert_eq!(p(2, 3).status(), "STATUS=2 of 3 nodes answered, 0 healthy");
    }
}
