//! Shoal's Prometheus metrics: one registry for the process, and the small functions the
//! actors and the API call to feed it.
//!
//! Why process-wide statics beside the actors (which STYLE otherwise avoids): metrics are
//! write-only counters that nobody reads to make a decision, every thread writes them, and
//! a message per increment would cost more than the work it measures. Nothing in Shoal's
//! behaviour depends on them.
//!
//! What is *not* kept here: per-node gauges that the NodeActors already publish in their
//! snapshots (health, containers, CPUs, memory, reservations). `cluster::families` computes
//! those at scrape time from a `ClusterRead`, which costs nothing between scrapes and never
//! leaves a stale series behind for a node that left.
//!
//! Labels never carry raw paths or IDs: API routes are labelled by their route template,
//! engine calls by `route_template`, so the label space stays bounded however many
//! containers the cluster runs. Every metric is documented in `docs/metrics.md`.

mod cluster;
mod route;

pub use cluster::{families as cluster_families, state_label};
pub use route::{api_route_label, route_template};

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::fmt::Display;
use std::future::Future;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Actor handler latency: a handler should take microseconds; milliseconds are a problem.
const HANDLER_BUCKETS: &[f64] = &[
    1e-6, 5e-6, 2.5e-5, 1e-4, 5e-4, 2.5e-3, 0.01, 0.05, 0.25, 1.0,
];
/// Engine calls and full refreshes: local engines answer in milliseconds, remote or busy
/// ones in up to the call timeout.
const ENGINE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// API requests, from a cached list to a slow proxied call.
pub const API_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Scheduling decisions must take microseconds (one actor, one decision at a time).
const SCHEDULER_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1,
];

/// Every metric Shoal keeps between scrapes.
pub struct Metrics {
    registry: Registry,
    // Actors.
    pub actor_messages: IntCounterVec,
    pub actor_handler_seconds: HistogramVec,
    pub actor_mailbox_depth: IntGaugeVec,
    pub actor_restarts: IntCounterVec,
    // Nodes.
    pub node_refresh_seconds: HistogramVec,
    pub node_refresh_failures: IntCounterVec,
    pub node_event_reconnects: IntCounterVec,
    pub engine_request_seconds: HistogramVec,
    pub engine_request_errors: IntCounterVec,
    // Scheduler.
    pub scheduler_decisions: IntCounterVec,
    pub scheduler_decision_seconds: Histogram,
    pub scheduler_refusals: IntCounterVec,
    pub scheduler_reservations: IntGauge,
    // Create flow.
    pub create_retries: IntCounterVec,
    pub create_resolutions: IntCounterVec,
    // API.
    pub api_requests: IntCounterVec,
    pub api_request_seconds: HistogramVec,
    pub api_in_flight: IntGauge,
    pub api_hijacked: IntGauge,
    pub api_event_subscribers: IntGauge,
    pub api_streamed_bytes: IntCounterVec,
    pub authz_denied: IntCounterVec,
    // Process.
    pub build_info: IntGaugeVec,
    pub start_time: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    r.register(Box::new(c.clone())).expect("unique counter");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique gauge");
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique gauge");
    g
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid histogram");
    r.register(Box::new(h.clone())).expect("unique histogram");
    h
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let scheduler_decision_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "shoal_scheduler_decision_seconds",
                "Time the SchedulerActor took to decide one placement (filters and strategy).",
            )
            .buckets(SCHEDULER_BUCKETS.to_vec()),
        )
        .expect("valid histogram");
        r.register(Box::new(scheduler_decision_seconds.clone()))
            .expect("unique histogram");
        let m = Metrics {
            actor_messages: counter(
                &r,
                "shoal_actor_messages_total",
                "Messages an actor handled, by actor kind, actor and message type.",
                &["kind", "actor", "message"],
            ),
            actor_handler_seconds: histogram(
                &r,
                "shoal_actor_handler_seconds",
                "Time an actor spent in one handler (the part that holds its mailbox), by actor kind and message type.",
                &["kind", "message"],
                HANDLER_BUCKETS,
            ),
            actor_mailbox_depth: gauge_vec(
                &r,
                "shoal_actor_mailbox_depth",
                "Messages sent to an actor and not yet handled.",
                &["kind", "actor"],
            ),
            actor_restarts: counter(
                &r,
                "shoal_actor_restarts_total",
                "Times a supervisor restarted an actor that stopped on its own.",
                &["kind", "actor"],
            ),
            node_refresh_seconds: histogram(
                &r,
                "shoal_node_refresh_seconds",
                "Time of one full refresh of a node (info, version, containers, images), failed ones included.",
                &["node"],
                ENGINE_BUCKETS,
            ),
            node_refresh_failures: counter(
                &r,
                "shoal_node_refresh_failures_total",
                "Refreshes of a node that failed (engine unreachable, timeout, error or garbage).",
                &["node"],
            ),
            node_event_reconnects: counter(
                &r,
                "shoal_node_event_stream_reconnects_total",
                "Times a node's engine event stream ended and had to be opened again.",
                &["node"],
            ),
            engine_request_seconds: histogram(
                &r,
                "shoal_engine_request_seconds",
                "Latency of calls to an engine, by node, method and route template.",
                &["node", "method", "route"],
                ENGINE_BUCKETS,
            ),
            engine_request_errors: counter(
                &r,
                "shoal_engine_request_errors_total",
                "Engine calls that got no HTTP answer, by node and reason (connect, timeout, io).",
                &["node", "reason"],
            ),
            scheduler_decisions: counter(
                &r,
                "shoal_scheduler_decisions_total",
                "Placement decisions, by outcome (placed or refused).",
                &["outcome"],
            ),
            scheduler_decision_seconds,
            scheduler_refusals: counter(
                &r,
                "shoal_scheduler_refusals_total",
                "Refused placements, by reason: the filter that left no node, or no_resources.",
                &["reason"],
            ),
            scheduler_reservations: gauge(
                &r,
                "shoal_scheduler_reservations",
                "Reservations the scheduler holds for placed containers no engine reported yet.",
            ),
            create_retries: counter(
                &r,
                "shoal_create_retries_total",
                "Creates tried again on another node, by why the node failed (connect, timeout, status_5xx, io, node_gone).",
                &["reason"],
            ),
            create_resolutions: counter(
                &r,
                "shoal_create_resolutions_total",
                "Creates whose engine went silent, by how they were resolved: removed (an orphan), adopted, absent, unresolved.",
                &["outcome"],
            ),
            api_requests: counter(
                &r,
                "shoal_api_requests_total",
                "API requests answered, by method, route template and status code.",
                &["method", "route", "status"],
            ),
            api_request_seconds: histogram(
                &r,
                "shoal_api_request_seconds",
                "Time to answer an API request (to the response head; streams not included), by method and route template.",
                &["method", "route"],
                API_BUCKETS,
            ),
            api_in_flight: gauge(
                &r,
                "shoal_api_requests_in_flight",
                "API requests being answered now.",
            ),
            api_hijacked: gauge(
                &r,
                "shoal_api_hijacked_connections",
                "Open hijacked connections (attach, exec start) proxied to engines.",
            ),
            api_event_subscribers: gauge(
                &r,
                "shoal_api_event_subscribers",
                "Open /events subscriptions.",
            ),
            api_streamed_bytes: counter(
                &r,
                "shoal_api_streamed_bytes_total",
                "Bytes streamed between clients and engines (logs, attach, exec, export, pulls, build), by direction.",
                &["direction"],
            ),
            authz_denied: counter(
                &r,
                "shoal_authz_denied_total",
                "Requests refused by the --authz-policy guard, by client certificate CN and rule.",
                &["client", "rule"],
            ),
            build_info: gauge_vec(
                &r,
                "shoal_build_info",
                "Always 1; the version of this Shoal in a label.",
                &["version"],
            ),
            start_time: gauge(
                &r,
                "shoal_start_time_seconds",
                "When this Shoal process started, in seconds since the Unix epoch.",
            ),
            registry: r,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m.start_time.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        );
        // Series a dashboard divides by exist from the start, at zero.
        for outcome in ["placed", "refused"] {
            m.scheduler_decisions.with_label_values(&[outcome]);
        }
        for direction in ["to_client", "to_engine"] {
            m.api_streamed_bytes.with_label_values(&[direction]);
        }
        m
    }

    /// Every family kept between scrapes.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// The text exposition of `families` (sorted by name, as Prometheus expects one block each).
pub fn encode(mut families: Vec<prometheus::proto::MetricFamily>) -> String {
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    // Encoding into a Vec fails only for a malformed family, which `new` rules out.
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::warn!(error = %e, "could not encode metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Actors.

/// Counts one message sent to an actor; call it where the message is queued (after a
/// successful `try_send`, or before `send().await`). With `handling`, this makes
/// `shoal_actor_mailbox_depth`: actix has no getter for the length of a mailbox.
pub fn queued(kind: &str, actor: impl Display) {
    METRICS
        .actor_mailbox_depth
        .with_label_values(&[kind, &actor.to_string()])
        .inc();
}

/// Starts timing one handled message; the guard records it when dropped at the end of
/// the handler. `let _m = metrics::handling("node", &self.addr, "InspectContainer");`
pub fn handling(kind: &'static str, actor: impl Display, message: &'static str) -> Handling {
    let actor = actor.to_string();
    let depth = METRICS
        .actor_mailbox_depth
        .with_label_values(&[kind, &actor]);
    // Saturating: a send site that does not call `queued` must not drive the depth below 0.
    if depth.get() > 0 {
        depth.dec();
    }
    METRICS
        .actor_messages
        .with_label_values(&[kind, &actor, message])
        .inc();
    Handling {
        kind,
        message,
        started: Instant::now(),
    }
}

/// Times one handler; see `handling`.
#[must_use = "the handler is timed until this guard drops"]
pub struct Handling {
    kind: &'static str,
    message: &'static str,
    started: Instant,
}

impl Drop for Handling {
    fn drop(&mut self) {
        METRICS
            .actor_handler_seconds
            .with_label_values(&[self.kind, self.message])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// A supervisor restarted `actor`: counts it, and empties its mailbox depth (the messages
/// queued to the stopped actor died with it).
pub fn actor_restarted(kind: &str, actor: impl Display) {
    let actor = actor.to_string();
    METRICS
        .actor_restarts
        .with_label_values(&[kind, &actor])
        .inc();
    METRICS
        .actor_mailbox_depth
        .with_label_values(&[kind, &actor])
        .set(0);
}

/// An actor stopped for good (a node left discovery): its mailbox series goes away.
pub fn actor_removed(kind: &str, actor: impl Display) {
    let _ = METRICS
        .actor_mailbox_depth
        .remove_label_values(&[kind, &actor.to_string()]);
}

// ---------------------------------------------------------------------------------------
// Nodes and engines.

/// Times a node's full refresh: wraps the refresh future, records its latency and, when it
/// fails, a failure.
pub fn time_refresh<T, E, W: Future<Output = Result<T, E>>>(
    node: &dyn Display,
    work: W,
) -> impl Future<Output = Result<T, E>> + use<T, E, W> {
    let node = node.to_string();
    async move {
        let started = Instant::now();
        let result = work.await;
        node_refresh(&node, started.elapsed(), result.is_ok());
        result
    }
}

/// Records one refresh of `node`.
pub fn node_refresh(node: &str, elapsed: Duration, ok: bool) {
    METRICS
        .node_refresh_seconds
        .with_label_values(&[node])
        .observe(elapsed.as_secs_f64());
    if !ok {
        METRICS
            .node_refresh_failures
            .with_label_values(&[node])
            .inc();
    }
}

/// A node's event stream ended and will be reopened.
pub fn node_events_reconnect(node: impl Display) {
    METRICS
        .node_event_reconnects
        .with_label_values(&[&node.to_string()])
        .inc();
}

/// Why an engine call got no HTTP answer, for `shoal_engine_request_errors_total`.
pub trait EngineFailure {
    /// `connect`, `timeout`, `io`, ...; `None` when the engine answered (any status).
    fn failure_reason(&self) -> Option<&'static str>;
}

/// Times one engine call: wraps the call's future. `path` is turned into its route
/// template; the request span, when there is one, gets the latency in `engine_ms`.
pub fn time_engine_call<T, E: EngineFailure, C: Future<Output = Result<T, E>>>(
    node: &dyn Display,
    method: &str,
    path: &str,
    call: C,
) -> impl Future<Output = Result<T, E>> + use<T, E, C> {
    let node = node.to_string();
    let method = method.to_string();
    let route = route_template(path);
    let span = tracing::Span::current();
    async move {
        let started = Instant::now();
        let result = call.await;
        let elapsed = started.elapsed();
        METRICS
            .engine_request_seconds
            .with_label_values(&[&node, &method, &route])
            .observe(elapsed.as_secs_f64());
        if let Err(e) = &result {
            if let Some(reason) = e.failure_reason() {
                METRICS
                    .engine_request_errors
                    .with_label_values(&[&node, reason])
                    .inc();
            }
        }
        span.record("engine_ms", elapsed.as_secs_f64() * 1000.0);
        result
    }
}

// ---------------------------------------------------------------------------------------
// Scheduler. The SchedulerActor calls these; nothing else does.

/// One placement decided: `elapsed` is the time of the decision itself.
pub fn scheduler_placed(elapsed: Duration) {
    METRICS
        .scheduler_decisions
        .with_label_values(&["placed"])
        .inc();
    METRICS
        .scheduler_decision_seconds
        .observe(elapsed.as_secs_f64());
}

/// One placement refused. `reason` is the name of the filter that left no node
/// (`constraint`, `affinity`, `port`, `health`, ...) or `no_resources`: a fixed set,
/// never user text.
pub fn scheduler_refused(elapsed: Duration, reason: &'static str) {
    METRICS
        .scheduler_decisions
        .with_label_values(&["refused"])
        .inc();
    METRICS
        .scheduler_refusals
        .with_label_values(&[reason])
        .inc();
    METRICS
        .scheduler_decision_seconds
        .observe(elapsed.as_secs_f64());
}

/// Reservations the scheduler holds now.
pub fn scheduler_reservations(outstanding: usize) {
    METRICS.scheduler_reservations.set(outstanding as i64);
}

// ---------------------------------------------------------------------------------------
// Create flow. `actors/src/create/` calls these; nothing else does.

/// One create tried again on another node. `reason` is a fixed word, never user text.
pub fn create_retried(reason: &'static str) {
    METRICS.create_retries.with_label_values(&[reason]).inc();
}

/// One silent create resolved: `removed`, `adopted`, `absent` or `unresolved`.
pub fn create_resolved(outcome: &'static str) {
    METRICS
        .create_resolutions
        .with_label_values(&[outcome])
        .inc();
}

/// How many silent creates ended with `outcome` so far (tests).
pub fn create_resolutions(outcome: &str) -> u64 {
    METRICS
        .create_resolutions
        .with_label_values(&[outcome])
        .get()
}

// ---------------------------------------------------------------------------------------
// API.

/// Records one answered API request.
pub fn api_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    METRICS
        .api_requests
        .with_label_values(&[method, route, &status.to_string()])
        .inc();
    METRICS
        .api_request_seconds
        .with_label_values(&[method, route])
        .observe(elapsed.as_secs_f64());
}

/// Counts something open (a request, a hijacked connection, a subscriber) while it lives.
#[must_use = "the count drops when this guard drops"]
pub struct Open(IntGauge);

impl Open {
    fn new(g: &IntGauge) -> Self {
        g.inc();
        Open(g.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One API request in flight, until the guard drops.
pub fn api_in_flight() -> Open {
    Open::new(&METRICS.api_in_flight)
}

/// One hijacked connection (attach, exec) open, until the guard drops. Keep the guard in
/// the task that pumps the connection.
pub fn hijack_opened() -> Open {
    Open::new(&METRICS.api_hijacked)
}

/// One `/events` subscriber, until the guard drops.
pub fn events_subscribed() -> Open {
    Open::new(&METRICS.api_event_subscribers)
}

/// Bytes streamed from an engine to a client.
pub fn streamed_to_client(bytes: usize) {
    METRICS
        .api_streamed_bytes
        .with_label_values(&["to_client"])
        .inc_by(bytes as u64);
}

/// Bytes streamed from a client to an engine.
pub fn streamed_to_engine(bytes: usize) {
    METRICS
        .api_streamed_bytes
        .with_label_values(&["to_engine"])
        .inc_by(bytes as u64);
}

/// One request refused by the authorization guard: the client's CN (empty without a
/// certificate) and the policy rule's name.
pub fn authz_denied(client: &str, rule: &'static str) {
    METRICS
        .authz_denied
        .with_label_values(&[client, rule])
        .inc();
}

/// How many requests of `client` were refused under `rule` so far (tests).
pub fn authz_denials(client: &str, rule: &str) -> u64 {
    METRICS
        .authz_denied
        .get_metric_with_label_values(&[client, rule])
        .map_or(0, |c| c.get())
}

/// The API latency of Docker API routes (Shoal's own `/shoal/...` and `/metrics` left
/// out), summed over routes: bucket upper bounds and cumulative counts, for the page's
/// p99 chart.
pub fn api_latency_buckets() -> (Vec<f64>, Vec<u64>) {
    let mut counts = vec![0u64; API_BUCKETS.len()];
    for mf in METRICS.api_request_seconds.collect() {
        for m in mf.get_metric() {
            let own = m.get_label().iter().any(|l| {
                l.name() == "route" && (l.value().starts_with("/shoal") || l.value() == "/metrics")
            });
            if own {
                continue;
            }
            for (i, b) in m.get_histogram().get_bucket().iter().enumerate() {
                if let Some(c) = counts.get_mut(i) {
                    *c += b.cumulative_count();
                }
            }
        }
    }
    (API_BUCKETS.to_vec(), counts)
}

/// Placements decided since start.
pub fn placements_total() -> u64 {
    METRICS
        .scheduler_decisions
        .with_label_values(&["placed"])
        .get()
}

impl EngineFailure for crate::engine::EngineError {
    fn failure_reason(&self) -> Option<&'static str> {
        use crate::engine::EngineError as E;
        match self {
            E::Connect { .. } => Some("connect"),
            E::Timeout { .. } => Some("timeout"),
            E::Io { .. } => Some("io"),
            E::Garbage { .. } => Some("garbage"),
            E::Status { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_depth_counts_sends_minus_handled_and_never_goes_negative() {
        let depth = || {
            METRICS
                .actor_mailbox_depth
                .with_label_values(&["test", "a1"])
                .get()
        };
        queued("test", "a1");
        queued("test", "a1");
        assert_eq!(depth(), 2);
        drop(handling("test", "a1", "Ping"));
        assert_eq!(depth(), 1);
        drop(handling("test", "a1", "Ping"));
        drop(handling("test", "a1", "Ping"));
        assert_eq!(depth(), 0);
        assert_eq!(
            METRICS
                .actor_messages
                .with_label_values(&["test", "a1", "Ping"])
                .get(),
            3
        );
        queued("test", "a1");
        actor_restarted("test", "a1");
        assert_eq!(depth(), 0);
    }

    #[test]
    fn the_exposition_has_every_family_once_and_sorted() {
        scheduler_refused(Duration::from_micros(3), "constraint");
        let text = encode(get().gather());
        assert!(text.contains("# TYPE shoal_scheduler_decision_seconds histogram"));
        assert!(text.contains("shoal_scheduler_refusals_total{reason=\"constraint\"} 1"));
        assert!(text.contains("shoal_build_info{version="));
    }
}
