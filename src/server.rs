//! Builds the running daemon from a `ManageConfig` and an already-bound listener: the
//! ClusterActor, discovery feeding it, and the HTTP server. Tests call `start` with a
//! listener on `127.0.0.1:0`, so they run exactly what the binary runs.

use crate::api::{self, ApiError, ApiState, DaemonFacts, ExecRegistry};
use crate::config::{EngineSource, ManageConfig, PlacementConfig};
use crate::discovery::{Discovery, DiscoveryError};
use crate::tls::ClientIdentity;
use actix::{Actor, Addr, Arbiter};
use actix_service::{fn_factory, fn_service, map_config, ServiceFactory, ServiceFactoryExt};
use actix_web::{web, App};
use shoal_actors::cluster::{ClusterActor, ClusterView};
use shoal_actors::create::FlowConfig;
use shoal_actors::events::{EventsHub, HubConfig};
use shoal_actors::reschedule::{MemoryLedger, Rescheduler, ReschedulerConfig};
use shoal_actors::scheduler::SchedulerActor;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

// Connection limits, in one place. A client that holds connections without sending requests
// (a slowloris, thousands of idle sockets) must cost a bounded amount for a bounded time;
// tests/sim_hostile.rs measures each of these.

/// How long a new connection may take to send its first request head before it is
/// answered 408 and closed. Docker clients write a head at once; 10 s bounds a slowloris
/// while leaving a slow or loaded link room (actix-http's default of 5 s closed
/// connections a loaded machine had not yet served). The gate holds an unfinished head
/// back from actix-http, so this clock runs until the whole head is in.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive connection waits for its next request. Docker clients keep
/// a pool and reconnect when a pooled connection was closed; 5 s frees idle sockets soon
/// without making a busy client reconnect between calls.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Connections each worker serves at once (hijacks included); past it the worker stops
/// accepting and new connections wait in the kernel's backlog. 8,192 per worker keeps a
/// few workers below a 20,000 open-file limit with a second socket to an engine for each
/// hijack, and each idle connection costs little memory (see the 5,000-connection test).
pub const MAX_CONNECTIONS_PER_WORKER: usize = 8_192;

/// A bound socket the API will serve on.
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl Listener {
    /// The address a TCP listener serves on (one whose address cannot be read counts as
    /// public: `0.0.0.0`); `None` for a unix socket.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Listener::Tcp(l) => Some(
                l.local_addr()
                    .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |a| {
                        a.ip()
                    }),
            ),
            Listener::Unix(_) => None,
        }
    }
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Discovery(#[from] DiscoveryError),
    #[error("cannot serve the API: {0}")]
    Io(#[from] std::io::Error),
    #[error("simulated engines: {0}")]
    Sim(String),
    #[error("{0}")]
    Exposed(#[from] crate::tls::Exposed),
    #[error("--replication: give --advertise HOST:PORT, the address the other managers reach this one at (-H {0} names none)")]
    NoAdvertise(String),
}

/// The parts of a running daemon a caller may hold.
pub struct Running {
    pub server: actix_web::dev::Server,
    pub cluster: Addr<ClusterActor>,
    pub view: watch::Receiver<Arc<ClusterView>>,
    pub hub: Addr<EventsHub>,
    /// Simulated engines started for `--sim`, kept alive with the daemon.
    pub sim: Option<shoal_sim::SimFleet>,
    /// How many engines discovery named at start: the first full view has them all
    /// (see `readiness`).
    pub discovered: usize,
    /// `--replication`: this manager's part in the election, held for the daemon's life.
    pub election: Option<Rc<shoal_actors::election::Election>>,
}

fn daemon_facts(placement: &PlacementConfig, warnings: Vec<String>) -> DaemonFacts {
    let mut facts = DaemonFacts::at_start(
        placement.scheduler.strategy.to_string(),
        placement
            .scheduler
            .filters()
            .iter()
            .map(|f| f.name().to_string())
            .collect(),
    );
    facts.warnings = warnings;
    facts
}

/// The actix-web application: every route of the Docker API but the hijacks.
fn app(
    state: ApiState,
    debug: bool,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(actix_web::middleware::from_fn(crate::telemetry::observe))
        .app_data(web::Data::new(state))
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
}

/// One worker's service for accepted connections: the hijack front before actix-web's
/// HTTP/1 service (see `api::hijack` for why). Runs on the worker thread, so the awc
/// clients the handlers make there stay there.
fn connection_service<T>(
    state: ApiState,
    debug: bool,
) -> impl ServiceFactory<T, Config = (), Response = (), Error = (), InitError = ()>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + PeerAddr + 'static,
{
    let http = actix_http::HttpService::build()
        // The client's certificate names it for every request of the connection.
        .on_connect_ext(
            |gate: &api::hijack::Gate<T>, data: &mut actix_web::dev::Extensions| {
                if let Some(identity) = gate.inner().and_then(PeerAddr::identity) {
                    data.insert(identity);
                }
            },
        )
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .h1(map_config(app(state.clone(), debug), |_| {
            actix_web::dev::AppConfig::default()
        }));
    fn_factory(move || {
        let made = http.new_service(());
        let state = state.clone();
        async move {
            let http = Rc::new(made.await.map_err(|e| {
                tracing::error!(error = ?e, "cannot build the HTTP service");
            })?);
            Ok(fn_service(move |io: T| {
                let http = http.clone();
                let state = state.clone();
                async move {
                    let peer = io.peer();
                    let identity = io.identity();
                    io.no_delay();
                    if let Err(e) =
                        api::hijack::serve_connection(io, peer, identity, &*http, &state).await
                    {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    Ok::<(), ()>(())
                }
            }))
        }
    })
}

/// What the front needs of an accepted connection: its peer address when it has one
/// (TCP), the socket set up for request/answer traffic, and who the client is when its
/// certificate says so (TLS).
pub trait PeerAddr {
    fn peer(&self) -> Option<std::net::SocketAddr>;

    /// Turns Nagle's algorithm off on TCP: an answer written in several pieces (a container
    /// list is sent a chunk at a time) otherwise waits on the client's delayed ACK, 40 ms.
    fn no_delay(&self) {}

    /// The client named by the certificate it showed in the TLS handshake.
    fn identity(&self) -> Option<ClientIdentity> {
        None
    }
}

/// A client connection after the TLS handshake.
type TlsTcp = actix_tls::accept::rustls_0_23::TlsStream<actix_rt::net::TcpStream>;

impl PeerAddr for TlsTcp {
    fn peer(&self) -> Option<std::net::SocketAddr> {
        self.get_ref().0.peer()
    }

    fn no_delay(&self) {
        self.get_ref().0.no_delay()
    }

    fn identity(&self) -> Option<ClientIdentity> {
        let leaf = self.get_ref().1.peer_certificates()?.first()?;
        ClientIdentity::from_certificate(leaf)
    }
}

impl PeerAddr for actix_rt::net::TcpStream {
    fn peer(&self) -> Option<std::net::SocketAddr> {
        self.peer_addr().ok()
    }

    fn no_delay(&self) {
        if let Err(e) = self.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    }
}

impl PeerAddr for actix_rt::net::UnixStream {
    fn peer(&self) -> Option<std::net::SocketAddr> {
        None
    }
}

/// `-H` as the user wrote it, for messages.
fn listen_text(listen: &crate::config::ListenAddr) -> String {
    match listen {
        crate::config::ListenAddr::Tcp(a) => a.clone(),
        crate::config::ListenAddr::Unix(p) => format!("unix://{}", p.display()),
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
    // Where the API may be served is settled before anything else starts.
    let warning = crate::tls::check_exposure(listener.ip(), &config.tls)?;
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    // Discovery is read before any actor starts, so a bad one is a clean start-up error.
    // etcd's TLS files are checked now; etcd itself may be down at start, which is no
    // start-up error: its watch follows it when it answers.
    let (first, etcd) = match &discovery {
        Discovery::Etcd(etcd) => {
            let loaded = etcd.load().await.map_err(DiscoveryError::from)?;
            (
                crate::discovery::etcd::read_at_start(etcd).await,
                Some((etcd.clone(), loaded)),
            )
        }
        other => (other.read().await?, None),
    };
    // Replicated managers: this one's advertised address, settled before anything starts.
    let advertise = match &config.replication {
        None => None,
        Some(r) => Some(match (&r.advertise, &listener) {
            (Some(a), _) => a.clone(),
            (None, Listener::Tcp(l)) => match l.local_addr() {
                Ok(a) if !a.ip().is_unspecified() => a.to_string(),
                _ => return Err(StartError::NoAdvertise(listen_text(&config.listen))),
            },
            (None, Listener::Unix(_)) => {
                return Err(StartError::NoAdvertise(listen_text(&config.listen)))
            }
        }),
    };
    let (status_out, discovery_status) = discovery.status().unzip();
    let discovered = first.len();
    // The scheduler gets a thread of its own: its decisions are the one serial point of
    // every create, so nothing else may delay them.
    let scheduler_config = config.placement.scheduler.clone();
    let scheduler = SchedulerActor::start_in_arbiter(&Arbiter::new().handle(), move |_| {
        SchedulerActor::new(scheduler_config)
    });
    // Engine clients read how to dial TCP engines when they are made: set before any is.
    shoal_actors::engine::tls::use_engine_tls(config.tls.engines.clone());
    if let Some(n) = config.cluster.engine_connections {
        if !shoal_actors::engine::budget::configure(n) {
            tracing::warn!(
                budget = ?shoal_actors::engine::budget::size(),
                "the engine connection budget was already set in this process; it stands"
            );
        }
    }
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
    actix_rt::spawn(discovery.run(cluster.clone(), first, status_out));
    // One manager: the ledger is in memory, and the containers' labels tell a restarted
    // Shoal what was moved. Replicated managers run it everywhere (a replica keeps the
    // configs a new primary needs) but it acts on the primary only, with an etcd ledger.
    let rescheduler = Rescheduler::new(
        ReschedulerConfig {
            grace: config.placement.reschedule_grace,
            flow: FlowConfig {
                retries: config.placement.create_retry,
                ..FlowConfig::default()
            },
            ..ReschedulerConfig::default()
        },
        view.clone(),
        scheduler.clone(),
        Rc::new(MemoryLedger::default()),
    )
    .events_to(hub.clone().recipient());
    let mut election = None;
    let mut replication = None;
    let rescheduler = match (&etcd, advertise) {
        (Some((etcd_config, etcd)), Some(advertise)) => {
            let ttl = config
                .replication
                .as_ref()
                .map_or(crate::replication::DEFAULT_TTL, |r| r.ttl);
            let started =
                crate::replication::start(etcd_config, etcd.clone(), advertise.clone(), ttl);
            let rescheduler = rescheduler.following().start();
            actix_rt::spawn(crate::replication::follow_role(
                started.role(),
                rescheduler.clone(),
                etcd.clone(),
                crate::replication::ledger_dir(etcd_config),
                advertise.clone(),
            ));
            tracing::info!(%advertise, ?ttl, "replication: taking part in the election");
            replication = Some(crate::replication::Replication::new(
                started.role(),
                advertise,
            ));
            let started = Rc::new(started);
            actix_rt::spawn(crate::replication::resign_on_signal(started.clone()));
            election = Some(started);
            rescheduler
        }
        _ => rescheduler.start(),
    };
    // Its tick keeps it running for the life of the daemon; the address is for `Lead`.
    drop(rescheduler);
    // The policy is published for the workers and read again on SIGHUP.
    let authz = match config.api.authz.clone() {
        None => None,
        Some(authz) => {
            let (publisher, authz) = crate::authz::Publisher::new(authz);
            crate::authz::reload_on_hangup(publisher)?;
            Some(authz)
        }
    };
    let state = ApiState {
        view: view.clone(),
        info: Arc::new(daemon_facts(
            &config.placement,
            warning.into_iter().collect(),
        )),
        scheduler,
        create_retry: config.placement.create_retry,
        hub: hub.clone(),
        execs: ExecRegistry::default().start(),
        timeouts: config.cluster.timeouts,
        cors_header: config.api.cors_header.clone(),
        authz,
        discovery: discovery_status,
        replication,
    };
    let debug = api::metrics::start_observing(&config.observe, &config.tls, listener.ip(), &state)?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let builder = actix_server::Server::build()
        .workers(workers)
        .max_concurrent_connections(MAX_CONNECTIONS_PER_WORKER)
        .shutdown_timeout(5);
    let server = match (listener, config.tls.api) {
        (Listener::Tcp(l), None) => {
            let state = state.clone();
            builder.listen("shoal-api", l, move || {
                connection_service::<actix_rt::net::TcpStream>(state.clone(), debug)
            })?
        }
        (Listener::Tcp(l), Some(tls)) => {
            // TLS ends here, before the hijack gate: the gate, actix-http and the relay
            // read the decrypted connection as they read a plain one.
            let state = state.clone();
            let config = tls.server_config();
            builder.listen("shoal-api", l, move || {
                let mut acceptor = actix_tls::accept::rustls_0_23::Acceptor::new(config.clone());
                acceptor.set_handshake_timeout(crate::tls::HANDSHAKE_TIMEOUT);
                acceptor
                    .map_err(|e| {
                        // A client without a valid certificate ends here; nothing reached
                        // an engine.
                        tracing::debug!(error = %e, "TLS handshake failed");
                    })
                    .and_then(connection_service::<TlsTcp>(state.clone(), debug))
            })?
        }
        // A unix socket is guarded by its file permissions; TLS is for TCP, as in dockerd.
        (Listener::Unix(l), _) => {
            let state = state.clone();
            builder.listen_uds("shoal-api", l, move || {
                connection_service::<actix_rt::net::UnixStream>(state.clone(), debug)
            })?
        }
    };
    Ok(Running {
        server: server.run(),
        cluster,
        view,
        hub,
        sim,
        discovered,
        election,
    })
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "test set-up writes certificate files on the test's own runtime, before anything is served"
)]
mod tests {
    use super::*;
    use crate::tls::{ApiTls, ApiTlsFiles, ClientAuth};
    use actix_service::Service;
    use shoal_actors::engine::tls::{dial_with, EngineTls, EngineTlsFiles};
    use shoal_actors::engine::EngineAddr;
    use std::path::{Path, PathBuf};

    /// CA, server certificate for 127.0.0.1 and client certificate with CN `cn`.
    fn pki(dir: &Path, cn: &str) -> [PathBuf; 5] {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf = |names: Vec<String>, cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            (
                p.signed_by(&key, &ca, &ca_key).unwrap().pem(),
                key.serialize_pem(),
            )
        };
        let (sc, sk) = leaf(vec!["127.0.0.1".into()], "shoal");
        let (cc, ck) = leaf(vec![], cn);
        let w = |n: &str, t: &str| {
            let p = dir.join(n);
            std::fs::write(&p, t).unwrap();
            p
        };
        [
            w("ca.pem", &ca.pem()),
            w("server-cert.pem", &sc),
            w("server-key.pem", &sk),
            w("cert.pem", &cc),
            w("key.pem", &ck),
        ]
    }

    #[actix_rt::test]
    async fn a_client_certificate_names_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let [ca, server_cert, server_key, cert, key] = pki(dir.path(), "ci-runner");
        let tls = ApiTls::load(&ApiTlsFiles {
            auth: ClientAuth::Required,
            ca: Some(ca.clone()),
            cert: server_cert,
            key: server_key,
        })
        .unwrap();
        let acceptor = ServiceFactory::<actix_rt::net::TcpStream>::new_service(
            &actix_tls::accept::rustls_0_23::Acceptor::new(tls.server_config()),
            (),
        )
        .await
        .unwrap();
        let listener = actix_rt::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = EngineTls::load(&EngineTlsFiles {
            ca,
            cert_key: Some((cert, key)),
        })
        .unwrap();
        let addr = EngineAddr::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let dialing = dial_with(&addr, std::time::Duration::from_secs(5), Some(&client));
        let accepting = async {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.call(tcp).await
        };
        let (dialed, accepted) = tokio::join!(dialing, accepting);
        let _client = dialed.unwrap();
        let stream: TlsTcp = accepted.unwrap_or_else(|_| panic!("handshake failed"));
        assert_eq!(
            stream.identity(),
            Some(ClientIdentity {
                common_name: "ci-runner".into()
            })
        );
        assert!(stream.peer().is_some());
    }
}
