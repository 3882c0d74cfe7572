//! Per-client authorization (`--authz-policy`, with `--tlsverify`): who may do what,
//! decided in one guard before anything reaches an engine.
//!
//! - `policy`: the file, read and checked into a typed `Policy`.
//! - `decide`: pure decisions (request kind, client, create body → allow or the rule
//!   refused).
//! - `guard`: the actix-web middleware in front of the routes, and the same check for the
//!   hijack gate, which takes attach and exec start before actix-web runs.
//!
//! The policy in force is published through a `watch` channel: every request reads the
//! latest snapshot, so a SIGHUP reload (`reload_on_hangup`) applies from the next request
//! without touching open connections, and a bad file leaves the old policy in force.

pub mod decide;
pub mod guard;
pub mod policy;

pub use decide::{Access, RequestKind, Rule};
pub use guard::{Grant, DENIED_PREFIX};
pub use policy::{ClientRules, DefaultAccess, Policy, PolicyError, TENANT_LABEL};

use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// `--authz-policy`: the file and the policy read from it at start.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthzConfig {
    pub path: PathBuf,
    pub policy: Policy,
}

/// The policy in force, as the front reads it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Authz {
    current: watch::Receiver<Arc<Policy>>,
}

impl Authz {
    /// A policy that never changes (tests).
    pub fn fixed(policy: Policy) -> Self {
        let (tx, current) = watch::channel(Arc::new(policy));
        // Kept open for the process: a closed channel still reads its last value.
        drop(tx);
        Authz { current }
    }

    /// The policy for this request.
    pub fn current(&self) -> Arc<Policy> {
        self.current.borrow().clone()
    }
}

/// The policy's publisher: `reload` reads the file again.
pub struct Publisher {
    path: PathBuf,
    tx: watch::Sender<Arc<Policy>>,
}

impl Publisher {
    /// Starts publishing `config.policy`.
    pub fn new(config: AuthzConfig) -> (Publisher, Authz) {
        let (tx, current) = watch::channel(Arc::new(config.policy));
        (
            Publisher {
                path: config.path,
                tx,
            },
            Authz { current },
        )
    }

    /// Reads the file again: a good one is in force from the next request; a bad one is
    /// refused, the old policy kept, and the error returned.
    pub async fn reload(&self) -> Result<(), PolicyError> {
        let policy = Policy::load_async(&self.path).await?;
        self.tx.send_replace(Arc::new(policy));
        Ok(())
    }
}

/// Reloads the policy on every SIGHUP, for the life of the process.
pub fn reload_on_hangup(publisher: Publisher) -> std::io::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    actix_rt::spawn(async move {
        while hangups.recv().await.is_some() {
            match publisher.reload().await {
                Ok(()) => tracing::info!(path = %publisher.path.display(), "authz policy reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "authz policy not reloaded; the previous one stays in force")
                }
            }
        }
    });
    Ok(())
}
