//! The Docker Engine API front, by stage: a request passes `routes` (the table, the
//! cross-site guard, the version check), then a handler of `docker` (containers, images,
//! networks, volumes, system), which answers from the cluster view or hands the call to
//! `forward` (the streaming proxy, the fan-out to every node) or to `create` (placement).
//! Hijacked connections (`attach`, `exec start`) are taken before actix-web by the gate in
//! `hijack`. Shoal's own pages (metrics, cluster JSON, the page) are `own`. `state` is what
//! every handler shares; `error` is the one place errors become Docker's answers.

mod docker;
mod error;
mod exec_registry;
mod forward;
mod own;
mod routes;
mod state;

pub use docker::containers::exec;
pub(crate) use docker::containers::lifecycle::link_of;
pub use docker::networks::resolve as network_resolve;
pub use docker::system::{FALLBACK_API_VERSION, MIN_API_VERSION};
pub use error::ApiError;
pub use exec_registry::{ExecContainer, ExecRegistry, RecordExecContainer};
pub use forward::{hijack, proxy};
pub use own::metrics;
pub use routes::{configure, JSON_BODY_LIMIT};
pub use state::{ApiConfig, ApiState, DaemonFacts};

/// The request's path as the router matched it: percent-encoded characters other than
/// `/`, `+` and `%` decoded (`/containers/w%65b/json` is `/containers/web/json`, as dockerd
/// reads it). Whatever decides what a request is or names (the guard, the body reader, a
/// route's action) reads this, never the raw `HttpRequest::path`, so a spelling the router
/// decodes cannot name one object to a check and another to the handler. Paths forwarded
/// to an engine keep the client's spelling: the engine decodes them by the same rule.
pub fn routed_path(req: &actix_web::HttpRequest) -> &str {
    req.match_info().as_str()
}
