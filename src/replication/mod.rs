//! Replicated managers (`shoal manage --replication`): several managers over one etcd
//! discovery, one of them primary (elected by `shoal_actors::election`).
//!
//! Every manager runs the whole daemon: it follows the same engines, so it can answer
//! `/_ping`, `/version`, `/info`, `/metrics` and Shoal's own pages itself. Everything else
//! a replica forwards to the primary, which is to it one more upstream Docker endpoint: the
//! route table's `replica` layer sends ordinary requests (streams included, WebSocket
//! attach by its own relay) through the proxy, and the hijack relay sends attach and exec
//! hijacks, both with the manager's engine TLS (its client certificate) when TLS is on.
//! With no primary known a replica answers 503. Only the primary places containers (all
//! creates reach it) and moves the containers of failed nodes: [`follow_role`] tells the
//! rescheduler to act when this manager becomes primary and to stop when it steps down.

use crate::api::ApiError;
use actix::Addr;
use shoal_actors::election::{Election, ElectionConfig, Role, PRIMARY_KEY};
use shoal_actors::engine::EngineAddr;
use shoal_actors::etcd::{Etcd, EtcdConfig};
use shoal_actors::reschedule::{etcd_ledger, EtcdLedger, Follow, Lead, Ledger, Rescheduler};
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

pub use shoal_actors::election::DEFAULT_TTL;

/// `--replication`, `--advertise`, `--replication-ttl`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationConfig {
    /// `host:port` the other managers reach this one at; `None`: the address `-H` bound.
    pub advertise: Option<String>,
    /// The primary's lease.
    pub ttl: Duration,
}

/// Where a request that is not answered locally goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Upstream {
    /// This manager is the primary: it serves the request.
    Here,
    /// Forward to the primary.
    Primary(EngineAddr),
    /// No primary is known: 503.
    NoPrimary,
}

/// What the front reads of the election. Cheap to clone.
#[derive(Clone)]
pub struct Replication {
    role: watch::Receiver<Role>,
    advertise: String,
}

impl Replication {
    /// Over a published role (tests give one of their own).
    pub fn new(role: watch::Receiver<Role>, advertise: String) -> Self {
        Replication { role, advertise }
    }

    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// This manager's advertised address.
    pub fn advertise(&self) -> &str {
        &self.advertise
    }

    /// Where requests go now.
    pub fn upstream(&self) -> Upstream {
        match &*self.role.borrow() {
            Role::Primary { .. } => Upstream::Here,
            Role::Unknown => Upstream::NoPrimary,
            Role::Replica { primary } => match primary_addr(primary) {
                Some(addr) => Upstream::Primary(addr),
                None => Upstream::NoPrimary,
            },
        }
    }

    /// The `docker info` lines: `Role` and `Primary`.
    pub fn info_lines(&self) -> [(&'static str, String); 2] {
        let role = self.role();
        let primary = match &role {
            Role::Primary { .. } => self.advertise.clone(),
            Role::Replica { primary } => primary.clone(),
            Role::Unknown => String::new(),
        };
        [("Role", role.name().to_string()), ("Primary", primary)]
    }
}

/// The primary's advertised `host:port` as an upstream address.
fn primary_addr(advertised: &str) -> Option<EngineAddr> {
    let (host, port) = advertised.rsplit_once(':')?;
    let port = port.parse().ok().filter(|p| *p > 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some(EngineAddr::Tcp {
        host: host.to_string(),
        port,
    })
}

/// The error of a replica that knows no primary.
pub fn no_primary() -> ApiError {
    ApiError::Unavailable(
        "no primary manager is known yet (election in progress or etcd unreachable); try again shortly"
            .into(),
    )
}

/// Whether a replica answers this request itself (`path` without its `/vX.Y` prefix).
pub fn served_locally(path: &str) -> bool {
    matches!(path, "/_ping" | "/version" | "/info")
}

/// Starts taking part in the election under `etcd`'s prefix.
pub fn start(etcd_config: &EtcdConfig, etcd: Etcd, advertise: String, ttl: Duration) -> Election {
    Election::start(
        etcd,
        etcd_config.key(PRIMARY_KEY),
        ElectionConfig { advertise, ttl },
    )
}

/// Tells the rescheduler to act while this manager is primary (with an etcd ledger bound
/// to the term's lease) and to stop when it steps down. Runs for the life of the daemon.
pub async fn follow_role(
    mut role: watch::Receiver<Role>,
    rescheduler: Addr<Rescheduler>,
    etcd: Etcd,
    dir: String,
    advertise: String,
) {
    let mut leading: Option<i64> = None;
    loop {
        let now = role.borrow_and_update().clone();
        match now {
            Role::Primary { lease } if leading != Some(lease) => {
                let (etcd, dir, by) = (etcd.clone(), dir.clone(), advertise.clone());
                let ledger = Box::new(move || {
                    Rc::new(EtcdLedger::new(etcd, dir, lease, by)) as Rc<dyn Ledger>
                });
                if rescheduler.send(Lead { ledger }).await.is_err() {
                    return;
                }
                leading = Some(lease);
            }
            Role::Primary { .. } => {}
            _ if leading.is_some() => {
                if rescheduler.send(Follow).await.is_err() {
                    return;
                }
                leading = None;
            }
            _ => {}
        }
        if role.changed().await.is_err() {
            return;
        }
    }
}

/// On SIGTERM or SIGINT (which also stop the server, after draining its connections for
/// up to a few seconds), resigns at once: a primary revokes its lease, so a replica takes
/// over now rather than after the TTL, and this manager stops acting as primary while it
/// drains.
pub async fn resign_on_signal(election: Rc<Election>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch for SIGTERM; a stopped primary's lease expires with its TTL");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    election.resign().await;
}

/// `<prefix>/reschedule`: the etcd ledger's folder.
pub fn ledger_dir(etcd_config: &EtcdConfig) -> String {
    etcd_config.key(etcd_ledger::RESCHEDULE_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_forwards_to_the_primary_it_knows() {
        let (tx, rx) = watch::channel(Role::Unknown);
        let r = Replication::new(rx, "10.0.0.1:2375".into());
        assert_eq!(r.upstream(), Upstream::NoPrimary);
        assert_eq!(r.info_lines()[0].1, "candidate");
        tx.send_replace(Role::Replica {
            primary: "10.0.0.2:2376".into(),
        });
        assert_eq!(
            r.upstream(),
            Upstream::Primary(EngineAddr::Tcp {
                host: "10.0.0.2".into(),
                port: 2376
            })
        );
        assert_eq!(
            r.info_lines(),
            [
                ("Role", "replica".to_string()),
                ("Primary", "10.0.0.2:2376".to_string())
            ]
        );
        tx.send_replace(Role::Primary { lease: 7 });
        assert_eq!(r.upstream(), Upstream::Here);
        assert_eq!(r.info_lines()[1].1, "10.0.0.1:2375");
        tx.send_replace(Role::Replica {
            primary: "garbage".into(),
        });
        assert_eq!(r.upstream(), Upstream::NoPrimary, "an unusable address");
    }

    #[test]
    fn only_ping_version_and_info_are_served_locally() {
        for p in ["/_ping", "/version", "/info"] {
            assert!(served_locally(p));
        }
        for p in [
            "/containers/json",
            "/events",
            "/info/x",
            "/containers/create",
        ] {
            assert!(!served_locally(p));
        }
    }
}
