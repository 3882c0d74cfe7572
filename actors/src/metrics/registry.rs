//! The registry: every metric Shoal exports, made once for the process (`get`), with the
//! buckets each histogram uses. What feeds them is in the parent module.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use std::sync::LazyLock;

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
    pub events_dropped: IntCounterVec,
    pub events_hub_waits: IntCounter,
    pub engine_request_seconds: HistogramVec,
    pub engine_request_errors: IntCounterVec,
    pub engine_connections: IntGauge,
    pub engine_connection_budget: IntGauge,
    pub engine_connection_waits: IntCounter,
    pub engine_idle_releases: IntCounter,
    // Scheduler.
    pub scheduler_decisions: IntCounterVec,
    pub scheduler_decision_seconds: Histogram,
    pub scheduler_refusals: IntCounterVec,
    pub scheduler_reservations: IntGauge,
    // Create flow.
    pub create_retries: IntCounterVec,
    pub create_resolutions: IntCounterVec,
    // Rescheduler.
    pub reschedules: IntCounterVec,
    pub reschedule_stale: IntCounterVec,
    // API.
    pub api_requests: IntCounterVec,
    pub api_request_seconds: HistogramVec,
    pub api_in_flight: IntGauge,
    pub api_hijacked: IntGauge,
    pub api_event_subscribers: IntGauge,
    pub api_event_subscribers_cut: IntCounterVec,
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

fn plain_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid counter");
    r.register(Box::new(c.clone())).expect("unique counter");
    c
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
            events_dropped: {
                let c = counter(
                    &r,
                    "shoal_events_dropped_total",
                    "Engine events lost before the events hub fanned them out, by reason (hub_full: a node's health change found the hub's mailbox full; hub_stopped: the hub is gone; malformed: the line was not a JSON object).",
                    &["reason"],
                );
                // Every series exists from the start, at 0: `increase()` sees the first drop.
                for reason in ["hub_full", "hub_stopped", "malformed"] {
                    c.with_label_values(&[reason]);
                }
                c
            },
            events_hub_waits: plain_counter(
                &r,
                "shoal_events_hub_waits_total",
                "Times a node's event stream waited for room in the events hub's mailbox before reading on (the hub's bound holding the engines back instead of dropping).",
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
            engine_connections: gauge(
                &r,
                "shoal_engine_connections",
                "Connections to engines open now, under the budget (--engine-connections).",
            ),
            engine_connection_budget: gauge(
                &r,
                "shoal_engine_connection_budget",
                "Connections to engines that may be open at once (--engine-connections).",
            ),
            engine_connection_waits: plain_counter(
                &r,
                "shoal_engine_connection_waits_total",
                "Dials to an engine that waited for a free slot of the connection budget.",
            ),
            engine_idle_releases: plain_counter(
                &r,
                "shoal_engine_idle_releases_total",
                "Times an engine client closed its idle pooled connections because three quarters of the connection budget were in use.",
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
            reschedules: counter(
                &r,
                "shoal_reschedules_total",
                "Containers of a failed node created again on another node (outcome=done), or not (outcome=failed: placement, create or start refused; tried again later).",
                &["outcome"],
            ),
            reschedule_stale: counter(
                &r,
                "shoal_reschedule_stale_total",
                "Stale copies found on a node that came back after its containers were rescheduled: removed, renamed (removal failed), or failed (both failed; tried again).",
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
            api_event_subscribers_cut: {
                let c = counter(
                    &r,
                    "shoal_api_event_subscribers_cut_total",
                    "/events subscribers the events hub cut off for staying too far behind, by reason (behind: past the byte bound for longer than the grace; overflow: past the hard byte bound).",
                    &["reason"],
                );
                // Both series exist from the start, at 0: `increase()` sees the first cut.
                for reason in ["behind", "overflow"] {
                    c.with_label_values(&[reason]);
                }
                c
            },
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

pub(super) static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}
