//! The route table of the Docker API: which handler answers which method and path, and
//! what every request passes first (a redirect of a path with `//`, as dockerd's router
//! answers it (`clean_path`), the cross-site guard, the authorization guard of
//! `--authz-policy` (`crate::authz::guard`), a replica's forwarding to the primary
//! (`replica`), the API version check).
//!
//! Each route is registered twice, unversioned and under `/v{version}`, as the engine does.
//! A versioned request above what every healthy engine speaks is refused like the engine
//! refuses it, so clients negotiate down. A request no route takes is answered by
//! `fallback` as dockerd answers it.

pub mod buildkit;
mod clean_path;
pub mod cross_site;
mod fallback;
mod replica;
mod swarm;

use super::docker::containers::{attach_ws, create, exec, lifecycle, list as containers};
use super::docker::images::{build, names as image_names, read as images, transfer};
use super::docker::system::{FALLBACK_API_VERSION, MIN_API_VERSION};
use super::docker::{disk_usage, events, json_keys, networks, prune, system, volumes};
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::web;
use shoal_actors::cluster::compare_versions;
use std::cmp::Ordering;

/// Largest request body the front reads whole (the JSON bodies of create, update, exec,
/// commit, network and volume routes). dockerd sets no limit on these; Shoal reads them into
/// memory (create's `Env` and `Labels` are rewritten), so it bounds them, far above what a
/// working container config reaches: the kernel caps a process's arguments and environment
/// together at a few MiB. Streamed bodies (build context, image load, archive upload) have
/// no limit.
pub const JSON_BODY_LIMIT: usize = 32 << 20;

/// All routes, for `App::configure`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(JSON_BODY_LIMIT));
    cfg.service(
        web::scope("/v{api_version:[0-9]+\\.[0-9]+}")
            .wrap(from_fn(check_version))
            // A replica sends what it does not answer itself to the primary, after its own
            // policy check.
            .wrap(from_fn(replica::forward))
            // Before the version check: a client the policy refuses hears only that.
            .wrap(from_fn(crate::authz::guard::guard))
            .wrap(from_fn(json_keys::canonical_body))
            .wrap(from_fn(cross_site::guard))
            .wrap(from_fn(clean_path::redirect))
            .configure(routes)
            .default_service(web::to(fallback::unrouted)),
    )
    .service(
        web::scope("")
            .wrap(from_fn(replica::forward))
            .wrap(from_fn(crate::authz::guard::guard))
            .wrap(from_fn(json_keys::canonical_body))
            .wrap(from_fn(cross_site::guard))
            .wrap(from_fn(clean_path::redirect))
            .configure(routes)
            .default_service(web::to(fallback::unrouted)),
    );
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
        .route("/containers/prune", web::post().to(prune::containers))
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
    cfg.route("/images/create", web::post().to(transfer::pull))
        .route("/images/load", web::post().to(transfer::load))
        .route("/images/prune", web::post().to(prune::images))
        .route("/images/search", web::get().to(images::search))
        .route("/images/get", web::get().to(transfer::save_many))
        .route("/images/{name:.+}/get", web::get().to(transfer::save_one))
        .route("/images/{name:.+}/tag", web::post().to(image_names::tag))
        .route("/images/{name:.+}/push", web::post().to(transfer::push))
        .route("/images/{name:.+}/history", web::get().to(images::history))
        .route("/images/{name:.+}", web::delete().to(image_names::remove))
        .route("/commit", web::post().to(image_names::commit))
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
        .route("/system/df", web::get().to(disk_usage::df))
        .route("/auth", web::post().to(system::auth))
        .route(
            "/distribution/{name:.+}/json",
            web::get().to(transfer::distribution),
        )
        .configure(swarm::configure)
        .configure(buildkit::configure);
}
