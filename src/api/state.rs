//! What every handler shares: `ApiState` (the cluster view, the actors the front talks to,
//! the engine deadlines, the front's settings) and the facts about this Shoal process read
//! once at start. The route table hands it to the handlers as `web::Data<ApiState>`.

use super::exec_registry::ExecRegistry;
use actix::Addr;
use shoal_actors::cluster::{ClusterRead, ClusterView};
use shoal_actors::engine::Timeouts;
use shoal_actors::events::EventsHub;
use shoal_actors::scheduler::SchedulerActor;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

/// What the handlers share. Cheap to clone per worker.
#[derive(Clone)]
pub struct ApiState {
    pub view: watch::Receiver<Arc<ClusterView>>,
    pub info: Arc<DaemonFacts>,
    pub scheduler: Addr<SchedulerActor>,
    /// Further nodes tried when an engine fails a create.
    pub create_retry: u32,
    /// Where `GET /events` subscribes.
    pub hub: Addr<EventsHub>,
    /// Which node holds which exec.
    pub execs: Addr<ExecRegistry>,
    /// Engine call deadlines, for the calls the front forwards or streams itself (container
    /// routes, pull, save, load, build, exec probes).
    pub timeouts: Timeouts,
    /// `--api-cors-header`: the origins allowed to call (see `routes::cross_site`).
    pub cors_header: Option<String>,
    /// `--authz-policy`: the policy in force, read per request by the guard.
    pub authz: Option<crate::authz::Authz>,
    /// The state of a discovery that can fail while Shoal runs (etcd), for `docker info`.
    pub discovery: Option<watch::Receiver<crate::discovery::DiscoveryStatus>>,
    /// `--replication`: this manager's role, and where a replica forwards.
    pub replication: Option<crate::replication::Replication>,
}

impl ApiState {
    /// Every node, read now.
    pub fn read(&self) -> ClusterRead {
        self.cluster().read()
    }

    /// The current set of nodes, for the reads that need less than every node.
    pub fn cluster(&self) -> Arc<ClusterView> {
        self.view.borrow().clone()
    }
}

/// The front's own settings, from the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiConfig {
    /// `--api-cors-header`: `*` or the origins (comma-separated) whose browser requests are
    /// served; `None`: requests carrying `Origin` are refused.
    pub cors_header: Option<String>,
    /// `--authz-policy`: the policy file and what was read from it at start.
    pub authz: Option<crate::authz::AuthzConfig>,
}

/// Facts about this Shoal process shown by `/info` and `/version`, read once at start.
#[derive(Debug, Clone)]
pub struct DaemonFacts {
    pub id: String,
    pub name: String,
    /// The kernel release, as `/version` and `/info` show it.
    pub kernel: String,
    pub started: SystemTime,
    pub strategy: String,
    pub filters: Vec<String>,
    /// Said under `Warnings` by `docker info` (an API served unprotected).
    pub warnings: Vec<String>,
}

impl DaemonFacts {
    /// Reads the host's name and kernel release and makes this process's ID: once, before
    /// the server starts, so no request reads `/proc`.
    pub fn at_start(strategy: String, filters: Vec<String>) -> Self {
        #[allow(
            clippy::disallowed_methods,
            reason = "once at start-up, before the server accepts a connection; /proc is kernel memory, no disk"
        )]
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .ok()
        };
        let id: String = (0..12)
            .map(|_| format!("{:X}", rand::random::<u8>() & 0xF))
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| c.concat())
            .collect::<Vec<_>>()
            .join(":");
        DaemonFacts {
            id,
            name: read("/proc/sys/kernel/hostname").unwrap_or_else(|| "shoal".to_string()),
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
            started: SystemTime::now(),
            strategy,
            filters,
            warnings: Vec::new(),
        }
    }
}
