//! The Docker Engine API front: actix-web handlers that read the actors' published state
//! or send them messages, and write answers in the engine's shapes.
//!
//! Each route is registered twice, unversioned and under `/v{version}`, as the engine does.
//! A versioned request above what every healthy engine speaks is refused like the engine
//! refuses it, so clients negotiate down.

mod attach_ws;
mod build;
mod cluster_json;
mod containers;
mod create;
mod error;
mod events;
pub mod exec;
mod fallback;
mod fanout;
mod filters;
pub mod hijack;
mod images;
mod images_write;
mod lifecycle;
pub mod metrics;
mod networks;
mod page;
pub mod proxy;
mod prune;
mod system;
mod system_df;
mod volumes;

pub use error::ApiError;
pub use exec::ExecRegistry;

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::web;
use shoal_actors::cluster::compare_versions;
use shoal_actors::cluster::ClusterView;
use shoal_actors::engine::Timeouts;
use shoal_actors::events::EventsHub;
use shoal_actors::scheduler::SchedulerActor;
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

/// Lowest API version Shoal accepts from a client (what current Docker engines accept).
pub const MIN_API_VERSION: &str = "1.24";
/// Answered before any engine is healthy, so a client has something to negotiate with.
pub const FALLBACK_API_VERSION: &str = "1.41";

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
    pub execs: actix::Addr<ExecRegistry>,
    /// Engine call deadlines, for the calls the front forwards or streams itself (container
    /// routes, pull, save, load, build).
    pub timeouts: Timeouts,
}

/// Facts about this Shoal process shown by `/info` and `/version`.
#[derive(Debug, Clone)]
pub struct DaemonFacts {
    pub id: String,
    pub name: String,
    pub started: SystemTime,
    pub strategy: String,
    pub filters: Vec<String>,
    /// Said under `Warnings` by `docker info` (an API served unprotected).
    pub warnings: Vec<String>,
}

impl ApiState {
    /// Every node, read now.
    pub fn read(&self) -> shoal_actors::cluster::ClusterRead {
        self.cluster().read()
    }

    /// The current set of nodes, for the reads that need less than every node.
    pub fn cluster(&self) -> Arc<ClusterView> {
        self.view.borrow().clone()
    }
}

/// All routes, for `App::configure`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v{api_version:[0-9]+\\.[0-9]+}")
            .wrap(from_fn(check_version))
            .configure(routes),
    )
    .configure(routes)
    .default_service(web::to(fallback::unrouted));
}

/// Refuses a versioned path the cluster cannot speak, with the engine's own words.
async fn check_version(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let asked = req
        .match_info()
        .get("api_version")
        .unwrap_or("")
        .to_string();
    let max = req
        .app_data::<web::Data<ApiState>>()
        .and_then(|s| s.cluster().api_version())
        .unwrap_or_else(|| FALLBACK_API_VERSION.to_string());
    if compare_versions(&asked, &max) == Ordering::Greater {
        return Err(ApiError::BadRequest(format!(
            "client version {asked} is too new. Maximum supported API version is {max}"
        ))
        .into());
    }
    if compare_versions(&asked, MIN_API_VERSION) == Ordering::Less {
        return Err(ApiError::BadRequest(format!(
            "client version {asked} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        ))
        .into());
    }
    next.call(req).await
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/_ping", web::get().to(system::ping))
        .route("/_ping", web::head().to(system::ping))
        .route("/version", web::get().to(system::version))
        .route("/info", web::get().to(system::info))
        .route("/events", web::get().to(events::events))
        .route("/containers/json", web::get().to(containers::list))
        .route("/containers/create", web::post().to(create::create))
        .route(
            "/containers/{id:.+}/json",
            web::get().to(containers::inspect),
        )
        .route("/containers/prune", web::post().to(lifecycle::prune))
        .route(
            "/containers/{id:.+}/attach/ws",
            web::get().to(attach_ws::attach_ws),
        )
        .route("/containers/{id:.+}/exec", web::post().to(exec::create))
        .route(
            "/exec/{id}/{action:start|resize}",
            web::post().to(exec::forward),
        )
        .route("/exec/{id}/{action:json}", web::get().to(exec::forward))
        .route(
            "/containers/{id:.+}/archive",
            web::head().to(lifecycle::action),
        )
        .route(
            "/containers/{id:.+}/archive",
            web::put().to(lifecycle::action),
        )
        .route("/containers/{id:.+}", web::delete().to(lifecycle::remove));
    // One pattern per method for all the actions: the router tries patterns one by one,
    // and a proxied request went through a dozen `{id:.+}` patterns before its own.
    cfg.route(
        &format!(
            "/containers/{{id:.+}}/{{action:{}}}",
            lifecycle::POST_ACTIONS.join("|")
        ),
        web::post().to(lifecycle::action),
    )
    .route(
        &format!(
            "/containers/{{id:.+}}/{{action:{}}}",
            lifecycle::GET_ACTIONS.join("|")
        ),
        web::get().to(lifecycle::action),
    );
    cfg.route("/images/json", web::get().to(images::list))
        .route("/images/{name:.+}/json", web::get().to(images::inspect))
        .configure(object_routes);
}

/// Images, networks, volumes, `system df`, `auth`, `commit`, `build`
/// (the README's route table says how each is routed).
fn object_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/images/create", web::post().to(images_write::pull))
        .route("/images/load", web::post().to(images_write::load))
        .route("/images/prune", web::post().to(prune::images))
        .route("/images/search", web::get().to(images_write::search))
        .route("/images/get", web::get().to(images_write::save_many))
        .route(
            "/images/{name:.+}/get",
            web::get().to(images_write::save_one),
        )
        .route("/images/{name:.+}/tag", web::post().to(images_write::tag))
        .route("/images/{name:.+}/push", web::post().to(images_write::push))
        .route(
            "/images/{name:.+}/history",
            web::get().to(images_write::history),
        )
        .route("/images/{name:.+}", web::delete().to(images_write::remove))
        .route("/commit", web::post().to(images_write::commit))
        .route("/build", web::post().to(build::build))
        .route("/networks", web::get().to(networks::list))
        .route("/networks/create", web::post().to(networks::create))
        .route("/networks/prune", web::post().to(prune::networks))
        .route(
            "/networks/{id:.+}/connect",
            web::post().to(networks::connect),
        )
        .route(
            "/networks/{id:.+}/disconnect",
            web::post().to(networks::disconnect),
        )
        .route("/networks/{id:.+}", web::get().to(networks::inspect))
        .route("/networks/{id:.+}", web::delete().to(networks::remove))
        .route("/volumes", web::get().to(volumes::list))
        .route("/volumes/create", web::post().to(volumes::create))
        .route("/volumes/prune", web::post().to(prune::volumes))
        .route("/volumes/{name:.+}", web::get().to(volumes::inspect))
        .route("/volumes/{name:.+}", web::delete().to(volumes::remove))
        .route("/system/df", web::get().to(system_df::df))
        .route("/auth", web::post().to(system_df::auth));
}
