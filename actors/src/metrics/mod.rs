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
mod registry;
mod route;

pub use cluster::{families as cluster_families, state_label};
pub use registry::{get, Metrics, API_BUCKETS};
pub use route::{api_route_label, route_template};

use registry::METRICS;

use prometheus::core::Collector;
use prometheus::{Encoder, IntGauge, TextEncoder};
use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

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

/// An engine event lost before the events hub fanned it out; `reason` is `hub_full`,
/// `hub_stopped` or `malformed`.
pub fn event_dropped(reason: &str) {
    METRICS.events_dropped.with_label_values(&[reason]).inc();
}

/// A node's event stream waited for room in the events hub's mailbox.
pub fn event_hub_wait() {
    METRICS.events_hub_waits.inc();
}

/// An engine connection was opened under the connection budget (`engine::budget`).
pub fn engine_connection_opened() {
    METRICS.engine_connections.inc();
}

/// An engine connection opened under the budget was closed.
pub fn engine_connection_closed() {
    METRICS.engine_connections.dec();
}

/// The connection budget's size, once it is set.
pub fn engine_connection_budget(size: usize) {
    METRICS
        .engine_connection_budget
        .set(i64::try_from(size).unwrap_or(i64::MAX));
}

/// A dial to an engine waited for a slot of the connection budget.
pub fn engine_connection_wait() {
    METRICS.engine_connection_waits.inc();
}

/// An engine client closed its idle pooled connections under budget pressure.
pub fn engine_idle_release() {
    METRICS.engine_idle_releases.inc();
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
// Rescheduler. `actors/src/reschedule/` calls these.

/// One container of a failed node re-created elsewhere (`done`) or not (`failed`).
pub fn rescheduled(outcome: &'static str) {
    METRICS.reschedules.with_label_values(&[outcome]).inc();
}

/// How many reschedules ended with `outcome` so far (tests).
pub fn reschedules(outcome: &str) -> u64 {
    METRICS.reschedules.with_label_values(&[outcome]).get()
}

/// One stale copy on a node that came back: `removed`, `renamed` or `failed`.
pub fn reschedule_stale(outcome: &'static str) {
    METRICS.reschedule_stale.with_label_values(&[outcome]).inc();
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

/// One `/events` subscriber cut off by the hub; `reason` is `behind` or `overflow`.
pub fn event_subscriber_cut(reason: &str) {
    METRICS
        .api_event_subscribers_cut
        .with_label_values(&[reason])
        .inc();
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
