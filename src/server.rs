//! Builds the running daemon from a `ManageConfig` and an already-bound listener: the
//! ClusterActor, discovery feeding it, and the HTTP server. Tests call `start` with a
//! listener on `127.0.0.1:0`, so they run exactly what the binary runs.

use crate::api::{self, ApiError, ApiState, DaemonFacts};
use crate::config::{EngineSource, ManageConfig, PlacementConfig};
use crate::discovery::{Discovery, DiscoveryError};
use actix::{Actor, Addr, Arbiter};
use actix_web::{web, App, HttpServer};
use shoal_actors::cluster::{ClusterActor, ClusterView};
use shoal_actors::events::{EventsHub, HubConfig};
use shoal_actors::scheduler::SchedulerActor;
use std::sync::Arc;
use std::time::SystemTime;
use thiserror::Error;
use tokio::sync::watch;

/// A bound socket the API will serve on.
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Discovery(#[from] DiscoveryError),
    #[error("cannot serve the API: {0}")]
    Io(#[from] std::io::Error),
    #[error("simulated engines: {0}")]
    Sim(String),
}

/// The parts of a running daemon a caller may hold.
pub struct Running {
    pub server: actix_web::dev::Server,
    pub cluster: Addr<ClusterActor>,
    pub view: watch::Receiver<Arc<ClusterView>>,
    pub hub: Addr<EventsHub>,
    /// Simulated engines started for `--sim`, kept alive with the daemon.
    pub sim: Option<shoal_sim::SimFleet>,
}

fn daemon_facts(placement: &PlacementConfig) -> DaemonFacts {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "shoal".to_string());
    let id: String = (0..12)
        .map(|_| format!("{:X}", rand::random::<u8>() & 0xF))
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.concat())
        .collect::<Vec<_>>()
        .join(":");
    DaemonFacts {
        id,
        name,
        started: SystemTime::now(),
        strategy: placement.scheduler.strategy.to_string(),
        filters: placement
            .scheduler
            .filters()
            .iter()
            .map(|f| f.name().to_string())
            .collect(),
    }
}

/// Starts everything inside the current actix System.
pub async fn start(config: ManageConfig, listener: Listener) -> Result<Running, StartError> {
    let mut sim = None;
    let discovery = match config.engines {
        EngineSource::Discovery(discovery) => discovery,
        EngineSource::Simulated(n) => {
            let engines = (1..=n)
                .map(|i| shoal_sim::EngineConfig::new(format!("sim-{i}")).containers(3))
                .collect();
            let fleet = shoal_sim::SimFleet::start(engines, shoal_sim::FleetOptions::default())
                .await
                .map_err(|e| StartError::Sim(e.to_string()))?;
            let addrs = fleet
                .addrs()
                .into_iter()
                .map(|a| shoal_actors::engine::EngineAddr::Tcp {
                    host: a.ip().to_string(),
                    port: a.port(),
                })
                .collect();
            sim = Some(fleet);
            Discovery::Nodes(addrs)
        }
    };
    // Discovery is read before any actor starts, so a bad one is a clean start-up error.
    let first = discovery.read().await?;
    // The scheduler gets a thread of its own: its decisions are the one serial point of
    // every create, so nothing else may delay them.
    let scheduler_config = config.placement.scheduler.clone();
    let scheduler = SchedulerActor::start_in_arbiter(&Arbiter::new().handle(), move |_| {
        SchedulerActor::new(scheduler_config)
    });
    let (cluster, view) = ClusterActor::new(config.cluster.clone());
    // The hub gets a thread of its own: a burst of events from many engines must not delay
    // the ClusterActor, and the hub must not wait behind it.
    let hub_view = view.clone();
    let hub = EventsHub::start_in_arbiter(&Arbiter::new().handle(), move |_| {
        EventsHub::new(HubConfig::default(), hub_view)
    });
    let cluster = cluster
        .scheduler(scheduler.clone())
        .events_to(hub.clone().recipient())
        .changes_to(hub.clone().recipient())
        .start();
    actix_rt::spawn(discovery.run(cluster.clone(), first));
    let state = ApiState {
        view: view.clone(),
        info: Arc::new(daemon_facts(&config.placement)),
        scheduler,
        create_retry: config.placement.create_retry,
        hub: hub.clone(),
        timeouts: config.cluster.timeouts,
    };
    let debug = api::metrics::start_observing(&config.observe, &listener, &state)?;
    let http = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(crate::telemetry::observe))
            .app_data(web::Data::new(state.clone()))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(e.to_string()).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(e.to_string()).into()),
            )
            .app_data(
                web::JsonConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(e.to_string()).into()),
            )
            .configure(api::metrics::configure(debug))
            .configure(api::configure)
    })
    .workers(std::thread::available_parallelism().map_or(2, |n| n.get()))
    .shutdown_timeout(5);
    let http = match listener {
        Listener::Tcp(l) => http.listen(l)?,
        Listener::Unix(l) => http.listen_uds(l)?,
    };
    Ok(Running {
        server: http.run(),
        cluster,
        view,
        hub,
        sim,
    })
}
