//! The command line: `shoal manage [OPTIONS] [DISCOVERY]`, `shoal list DISCOVERY`,
//! `shoal join --advertise HOST:PORT etcd://...` (register an engine), and
//! `shoal sim`, the simulated fleet (the benchmark harness is `shoal-bench`, a binary of
//! its own: `bench/`). Every flag can also be set by an environment variable `SHOAL_*`
//! (named beside it in `--help`), so a service's environment file can hold them; the
//! hidden `shoal completions SHELL` and `shoal man` print what packaging installs.

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "shoal",
    version,
    about = "One Docker endpoint in front of a pool of Docker engines"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the manager: serve the Docker API in front of the engines DISCOVERY lists.
    Manage(Box<ManageArgs>),
    /// Print the engine addresses DISCOVERY yields, one a line; or, with -H, the nodes of a
    /// running Shoal and their health.
    List(ListArgs),
    /// Register one engine in etcd discovery and keep it there until stopped.
    Join(crate::join_cmd::JoinArgs),
    /// Serve simulated Docker engines on 127.0.0.1 until killed (a fleet to measure against).
    Sim(crate::sim_cmd::SimArgs),
    /// Print the completion script of SHELL (bash, zsh, fish, ...) for `shoal`.
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page shoal(1), or write it and one page per subcommand into a folder.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write shoal.1, shoal-manage.1, ... into this folder instead of shoal.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ManageArgs {
    /// nodes://h1:2375,h2:2375 (ranges like 10.0.0.[10:20]:2375), file:///path,
    /// etcd://h1:2379,h2:2379/prefix, or unix:///path. Default: unix:///var/run/docker.sock
    /// when it exists.
    #[arg(env = "SHOAL_DISCOVERY")]
    pub discovery: Option<String>,

    #[command(flatten)]
    pub discovery_opt: DiscoveryOptArgs,

    /// Where to serve the Docker API: host:port, tcp://host:port or unix:///path.
    #[arg(
        short = 'H',
        long = "host",
        env = "SHOAL_HOST",
        default_value = "127.0.0.1:2375"
    )]
    pub host: String,

    /// Shortest time between two refreshes of an engine.
    #[arg(long, env = "SHOAL_ENGINE_REFRESH_MIN_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub engine_refresh_min_interval: Duration,

    /// Longest time between two refreshes of an engine (also the longest back-off).
    #[arg(long, env = "SHOAL_ENGINE_REFRESH_MAX_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub engine_refresh_max_interval: Duration,

    /// Failed refreshes in a row after which an engine is marked unhealthy.
    #[arg(long, env = "SHOAL_ENGINE_FAILURE_RETRY", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub engine_failure_retry: u32,

    /// Time limit of Shoal's own calls to an engine (refreshes, lists, inspects) and of
    /// connecting to it.
    #[arg(long, env = "SHOAL_ENGINE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub engine_timeout: Duration,

    /// Time limit of the work a client asked an engine for: creates, starts, stops,
    /// removes, pulls, builds (until the answer's head).
    #[arg(long, env = "SHOAL_ENGINE_WORK_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub engine_work_timeout: Duration,

    /// Most connections to engines open at once (event streams, refreshes, creates,
    /// proxied calls). A dial beyond it waits for a connection to close, and once three
    /// quarters of it are in use idle connections are closed after a second. Default: four
    /// fifths of the open-file limit, the rest left for clients, listeners and files.
    #[arg(long, env = "SHOAL_ENGINE_CONNECTIONS", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub engine_connections: Option<u64>,

    /// Start N simulated engines in this process and use them as the cluster.
    #[arg(
        long,
        env = "SHOAL_SIM",
        value_name = "N",
        conflicts_with = "discovery"
    )]
    pub sim: Option<usize>,

    /// Placement strategy: spread, binpack or random.
    #[arg(long, env = "SHOAL_STRATEGY", default_value = "spread")]
    pub strategy: String,

    /// A placement filter to enable (repeat for several): health, port, containerslots,
    /// dependency, affinity, constraint, whitelist. Default: all of them.
    #[arg(
        long = "filter",
        env = "SHOAL_FILTER",
        value_name = "FILTER",
        value_delimiter = ','
    )]
    pub filters: Vec<String>,

    /// Cluster option KEY=VALUE (repeat for several): `swarm.overcommit=0.05` (share of
    /// CPU and memory placed beyond a node's total), `swarm.createretry=2` (further nodes
    /// tried after an engine failed a create: refused connection, 5xx, or, for an unnamed
    /// container, no answer).
    #[arg(
        long = "cluster-opt",
        env = "SHOAL_CLUSTER_OPT",
        value_name = "KEY=VALUE",
        value_delimiter = ','
    )]
    pub cluster_opts: Vec<String>,

    /// How long a node stays unhealthy before its containers with the reschedule policy
    /// `on-node-failure` are created again on other nodes (the originals are removed when
    /// the node comes back).
    #[arg(long, env = "SHOAL_RESCHEDULE_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub reschedule_grace: Duration,

    /// Run as one of several managers over an etcd:// discovery: they elect a primary
    /// through etcd, which alone places and reschedules; the others (replicas) forward
    /// every request but /_ping, /version, /info and /metrics to it.
    #[arg(long, env = "SHOAL_REPLICATION", value_parser = BoolishValueParser::new())]
    pub replication: bool,

    /// With --replication: the host:port the other managers reach this one at. Default:
    /// the -H address (when it is not 0.0.0.0).
    #[arg(long, env = "SHOAL_ADVERTISE", value_name = "HOST:PORT")]
    pub advertise: Option<String>,

    /// With --replication: the primary's etcd lease. A dead primary is replaced within it;
    /// a primary cut off from etcd steps down within two thirds of it.
    #[arg(long, env = "SHOAL_REPLICATION_TTL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub replication_ttl: Duration,

    /// Log level: error, warn, info, debug, trace (or a tracing filter directive).
    #[arg(long, env = "SHOAL_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// How log lines are written.
    #[arg(long, env = "SHOAL_LOG_FORMAT", value_enum, default_value_t = crate::telemetry::LogFormat::Text)]
    pub log_format: crate::telemetry::LogFormat,

    /// Debug logs (when --log-level is left at info), and /shoal/debug/* routes, mounted
    /// only when -H is a loopback address or a unix socket.
    #[arg(long, env = "SHOAL_DEBUG", value_parser = BoolishValueParser::new())]
    pub debug: bool,

    /// Serve browser requests (which carry `Origin`) from this origin, or from any with `*`;
    /// written into `Access-Control-Allow-Origin`, as dockerd's flag. Default: refuse them.
    #[arg(long, env = "SHOAL_API_CORS_HEADER", value_name = "ORIGIN")]
    pub api_cors_header: Option<String>,

    /// Per-client authorization: a TOML policy deciding, by client certificate CN, what
    /// each client may do and see (needs --tlsverify; reloaded on SIGHUP).
    #[arg(long, env = "SHOAL_AUTHZ_POLICY", value_name = "FILE")]
    pub authz_policy: Option<std::path::PathBuf>,

    /// Also serve /metrics on this host:port (e.g. a port only Prometheus can reach).
    #[arg(long, env = "SHOAL_METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,

    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS flags, spelt as dockerd, the docker CLI and classic Swarm spell them. The manager's
/// files serve both sides: its clients, and its TCP engines.
#[derive(Debug, Args, Default)]
pub struct TlsArgs {
    /// Serve TLS to clients (with --tlscert and --tlskey) and dial TCP engines with TLS.
    #[arg(long, env = "SHOAL_TLS", value_parser = BoolishValueParser::new())]
    pub tls: bool,

    /// Like --tls, and clients must show a certificate signed by --tlscacert (implies --tls).
    #[arg(long, env = "SHOAL_TLSVERIFY", value_parser = BoolishValueParser::new())]
    pub tlsverify: bool,

    /// CA certificate(s) (PEM): clients' certificates are checked against it, and so are
    /// the engines' unless --engine-tlscacert is given.
    #[arg(long, env = "SHOAL_TLSCACERT", value_name = "PATH")]
    pub tlscacert: Option<std::path::PathBuf>,

    /// Shoal's certificate (PEM), shown to clients and, unless --engine-tlscert is given,
    /// to engines.
    #[arg(long, env = "SHOAL_TLSCERT", value_name = "PATH")]
    pub tlscert: Option<std::path::PathBuf>,

    /// The key of --tlscert (PEM).
    #[arg(long, env = "SHOAL_TLSKEY", value_name = "PATH")]
    pub tlskey: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub engine: EngineTlsArgs,

    /// Serve a -H address other than loopback without --tlsverify. Anyone who reaches it is
    /// root on every engine; a warning says so at start and in `docker info`.
    #[arg(long, env = "SHOAL_INSECURE_LISTEN", value_parser = BoolishValueParser::new())]
    pub insecure_listen: bool,
}

/// The options of a discovery (`manage`, `list` and `join` take the same): today the TLS
/// files of etcd.
#[derive(Debug, Args, Default)]
pub struct DiscoveryOptArgs {
    /// Discovery option KEY=VALUE (repeat for several), for etcd: kv.cacertfile=PATH,
    /// kv.certfile=PATH, kv.keyfile=PATH (TLS to etcd).
    #[arg(
        long = "discovery-opt",
        env = "SHOAL_DISCOVERY_OPT",
        value_name = "KEY=VALUE",
        value_delimiter = ','
    )]
    pub opts: Vec<String>,
}

/// TLS to engines with files of their own, apart from the manager's: `shoal manage` and
/// `shoal join` (which checks the engine it registers) take the same flags.
#[derive(Debug, Args, Default)]
pub struct EngineTlsArgs {
    /// Dial engines with TLS and check their certificates against this CA (PEM); `manage`
    /// uses --tlscacert when it is not given.
    #[arg(
        id = "engine_tlscacert",
        long = "engine-tlscacert",
        env = "SHOAL_ENGINE_TLSCACERT",
        value_name = "PATH"
    )]
    pub ca: Option<std::path::PathBuf>,

    /// The client certificate (PEM) shown to engines; `manage` shows --tlscert when it is
    /// not given.
    #[arg(
        id = "engine_tlscert",
        long = "engine-tlscert",
        env = "SHOAL_ENGINE_TLSCERT",
        value_name = "PATH",
        requires = "engine_tlskey"
    )]
    pub cert: Option<std::path::PathBuf>,

    /// The key of --engine-tlscert.
    #[arg(
        id = "engine_tlskey",
        long = "engine-tlskey",
        env = "SHOAL_ENGINE_TLSKEY",
        value_name = "PATH",
        requires = "engine_tlscert"
    )]
    pub key: Option<std::path::PathBuf>,
}

impl EngineTlsArgs {
    /// The client pair, when both files are given.
    pub fn cert_key(&self) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
        self.cert.clone().zip(self.key.clone())
    }
}

impl ManageArgs {
    /// `--log-level`, or `debug` when `--debug` is given and the level left at its default.
    pub fn effective_log_level(&self) -> String {
        if self.debug && self.log_level == "info" {
            "debug".to_string()
        } else {
            self.log_level.clone()
        }
    }
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["discovery", "host"]))]
pub struct ListArgs {
    /// The discovery to read, as for `shoal manage`: prints the engine addresses it yields.
    pub discovery: Option<String>,

    /// A running Shoal (host:port) to ask instead: prints each node's name, address,
    /// health and containers, as `docker info`, the page and the metrics show them.
    #[arg(
        short = 'H',
        long = "host",
        env = "SHOAL_HOST",
        conflicts_with = "discovery"
    )]
    pub host: Option<String>,

    #[command(flatten)]
    pub discovery_opt: DiscoveryOptArgs,

    /// Ask -H over TLS, checking its certificate against --tlscacert and showing
    /// --tlscert, as `docker --tlsverify` does (also on when DOCKER_TLS_VERIFY is set, or
    /// when any of the files below is given).
    #[arg(
        long,
        env = "SHOAL_TLSVERIFY",
        value_parser = BoolishValueParser::new(),
        conflicts_with = "discovery"
    )]
    pub tlsverify: bool,

    /// The CA that signed Shoal's certificate [default: $DOCKER_CERT_PATH/ca.pem, else
    /// ~/.docker/ca.pem].
    #[arg(long, env = "SHOAL_TLSCACERT", conflicts_with = "discovery")]
    pub tlscacert: Option<std::path::PathBuf>,

    /// The client certificate to show [default: cert.pem beside the CA's default, when it
    /// and key.pem exist].
    #[arg(
        long,
        env = "SHOAL_TLSCERT",
        requires = "tlskey",
        conflicts_with = "discovery"
    )]
    pub tlscert: Option<std::path::PathBuf>,

    /// The key of --tlscert.
    #[arg(
        long,
        env = "SHOAL_TLSKEY",
        requires = "tlscert",
        conflicts_with = "discovery"
    )]
    pub tlskey: Option<std::path::PathBuf>,
}
