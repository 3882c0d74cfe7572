//! Shoal's own routes, beside the Docker API: `GET /metrics` (Prometheus text), the
//! cluster page `GET /shoal/` and its JSON `GET /shoal/api/cluster`, and, with `--debug`
//! on a loopback or unix listener only, `GET /shoal/debug/nodes`.

use super::{cluster_json, page};
use crate::api::state::ApiState;
use crate::server::StartError;
use crate::telemetry::ObserveConfig;
use crate::tls::{check_metrics_exposure, TlsConfig, HANDSHAKE_TIMEOUT};
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use shoal_actors::metrics;
use std::net::IpAddr;
use std::time::UNIX_EPOCH;

/// The Prometheus text exposition format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Shoal's own routes, for `App::configure`. `debug` mounts the debug routes: the caller
/// decides it from `--debug` *and* the listener (see `debug_allowed`).
pub fn configure(debug: bool) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.route("/metrics", web::get().to(scrape))
            .route("/shoal", web::get().to(page::redirect))
            .route("/shoal/", web::get().to(page::index))
            .route("/shoal/api/cluster", web::get().to(cluster_json::cluster));
        if debug {
            cfg.route("/shoal/debug/nodes", web::get().to(debug_nodes));
        }
    }
}

/// Only `/metrics`, for the `--metrics-addr` listener.
pub fn configure_scrape_only(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}

/// Whether `--debug` may mount its routes on this listener: only on loopback addresses and
/// unix sockets (whose file permissions guard them). The debug routes show engine errors,
/// every container's reservations and internal addresses, which nobody off the host needs.
pub fn debug_allowed(debug: bool, listener_ip: Option<std::net::IpAddr>) -> bool {
    debug && listener_ip.is_none_or(|ip| ip.is_loopback())
}

/// What the API listener gets besides the Docker API, decided once at start: starts the
/// `--metrics-addr` listener when asked, and answers whether the debug routes are mounted.
///
/// `/metrics` follows the API's rule about where it may listen: with TLS to clients on, it
/// is served with the same TLS (the same certificate and, with `--tlsverify`, the same
/// demand for a client certificate of the CA: Prometheus's `tls_config` shows one); without
/// `--tlsverify`, an address other than loopback is refused at start unless
/// `--insecure-listen` (then a warning is logged).
pub fn start_observing(
    observe: &ObserveConfig,
    tls: &TlsConfig,
    listener_ip: Option<IpAddr>,
    state: &ApiState,
) -> Result<bool, StartError> {
    let ip = listener_ip;
    let debug = debug_allowed(observe.debug, ip);
    if observe.debug && !debug {
        tracing::warn!(
            "--debug: the API listens on a non-loopback address, so /shoal/debug/* is not served"
        );
    }
    if let Some(addr) = &observe.metrics_addr {
        let l = std::net::TcpListener::bind(addr)
            .map_err(|e| std::io::Error::new(e.kind(), format!("--metrics-addr {addr}: {e}")))?;
        if let Some(w) = check_metrics_exposure(l.local_addr()?.ip(), tls)? {
            tracing::warn!("{w}");
        }
        let state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .configure(configure_scrape_only)
        })
        .workers(1)
        .tls_handshake_timeout(HANDSHAKE_TIMEOUT);
        let server = match &tls.api {
            Some(api) => server.listen_rustls_0_23(l, api.server_config())?,
            None => server.listen(l)?,
        }
        .run();
        tracing::info!(%addr, tls = tls.api.is_some(), "serving /metrics");
        // Lives as long as the actix System, like the API server.
        actix_rt::spawn(server);
    }
    Ok(debug)
}

/// `GET /metrics`: the process's metrics and the per-node gauges of this cluster.
pub async fn scrape(state: web::Data<ApiState>) -> HttpResponse {
    let read = state.read();
    let mut families = metrics::get().gather();
    families.extend(metrics::cluster_families(&read));
    HttpResponse::Ok()
        .content_type(PROMETHEUS_TEXT)
        .body(metrics::encode(families))
}

/// `GET /shoal/debug/nodes`: everything each node's snapshot holds that is not a list.
async fn debug_nodes(state: web::Data<ApiState>) -> HttpResponse {
    let read = state.read();
    let nodes: Vec<_> = read
        .nodes
        .iter()
        .map(|n| {
            let s = &n.snapshot;
            json!({
                "name": n.name,
                "addr": n.handle.addr.to_string(),
                "health": s.health.to_string(),
                "failures": s.failures,
                "last_error": s.last_error,
                "last_refresh": s.last_update
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs_f64()),
                "facts": s.facts.as_ref().map(|f| format!("{f:?}")),
                "containers": s.containers.len(),
                "images": s.images.len(),
                "reserved": { "nano_cpus": s.reserved.nano_cpus, "memory": s.reserved.memory },
                "resources": s.resources.iter()
                    .map(|(id, r)| (id.clone(), format!("{r:?}")))
                    .collect::<std::collections::BTreeMap<_, _>>(),
                "actor_connected": n.handle.actor.connected(),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "nodes": nodes }))
}

#[cfg(test)]
mod tests {
    use super::debug_allowed;

    #[test]
    fn debug_routes_only_on_loopback_or_unix() {
        assert!(debug_allowed(true, Some("127.0.0.1".parse().unwrap())));
        assert!(debug_allowed(true, Some("::1".parse().unwrap())));
        assert!(debug_allowed(true, None));
        assert!(!debug_allowed(true, Some("0.0.0.0".parse().unwrap())));
        assert!(!debug_allowed(true, Some("10.1.2.3".parse().unwrap())));
        assert!(!debug_allowed(false, Some("127.0.0.1".parse().unwrap())));
    }
}
