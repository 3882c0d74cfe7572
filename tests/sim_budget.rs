//! The budget of engine connections (`--engine-connections`) in front of simulated
//! engines: a cluster whose engines need more connections than the budget still refreshes
//! every node and answers every create, and once the calls are done each node holds only
//! its event stream.
//!
//! One test in this binary: the budget is the process's (the first cluster started sets
//! it), so another cluster here with another budget would not get its own.

mod sim_fixture;

use shoal_actors::cluster::ClusterConfig;
use shoal_actors::engine::budget;
use shoal_actors::engine::Timeouts;
use shoal_actors::node::NodeConfig;
use shoal_sim::EngineConfig;
use sim_fixture::{SimCluster, Started};
use std::time::{Duration, Instant};

const ENGINES: usize = 6;
/// The event streams and three more: at most three refreshes or creates at once.
const BUDGET: usize = ENGINES + 3;

/// The value of the sample line `series` in `/metrics`.
async fn metric(c: &Started, series: &str) -> f64 {
    let text = c.get("/metrics").await;
    let text = String::from_utf8_lossy(&text.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

/// Waits until only the event streams are open, or panics after `secs`.
async fn wait_for_event_streams_only(what: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while budget::open() != ENGINES {
        assert!(
            Instant::now() < deadline,
            "{what}: {} engine connections still open, {ENGINES} event streams expected",
            budget::open()
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn more_engines_than_the_budget_are_refreshed_and_placed_on() {
    let mut cluster = SimCluster::new().cluster(ClusterConfig {
        // Refreshed once at start and then rarely: connections left open afterwards are
        // idle ones the budget must close.
        node: NodeConfig {
            refresh_min: Duration::from_secs(60),
            refresh_max: Duration::from_secs(90),
            failure_retry: 2,
        },
        timeouts: Timeouts {
            call: Duration::from_secs(5),
            long: Duration::from_secs(30),
        },
        arbiters: 2,
        engine_connections: Some(BUDGET),
    });
    for i in 0..ENGINES {
        cluster = cluster.engine(
            EngineConfig::new(format!("e{i}"))
                .image("busybox:latest")
                .containers(2),
        );
    }
    let c = cluster.start().await;
    assert_eq!(budget::size(), Some(BUDGET));
    // Every node's first refresh (five calls) needs a connection beside its event stream:
    // six of them do not fit beside six streams in nine slots at once.
    c.wait_healthy(ENGINES).await;
    wait_for_event_streams_only("after start-up", 10).await;
    assert_eq!(
        metric(&c, "shoal_engine_connection_budget").await,
        BUDGET as f64
    );

    // Creates on every engine at once, eight in flight: more than the three free slots.
    let paths: Vec<String> = (0..24)
        .map(|i| format!("/containers/create?name=budget-{i}"))
        .collect();
    let mut answers = Vec::new();
    for batch in paths.chunks(8) {
        let creates = batch.iter().map(|path| {
            c.request(
                awc::http::Method::POST,
                path,
                Some(serde_json::json!({"Image": "busybox:latest"})),
            )
        });
        answers.extend(futures_util::future::join_all(creates).await);
        assert!(budget::open() <= BUDGET);
    }
    for a in &answers {
        assert_eq!(a.status, 201, "{}", a.message());
    }
    assert!(
        metric(&c, "shoal_engine_connection_waits_total").await > 0.0,
        "the creates never waited for a slot: the test did not press the budget"
    );
    assert!(metric(&c, "shoal_engine_idle_releases_total").await > 0.0);
    c.wait_for("every create in a snapshot", 10, |r| {
        r.nodes
            .iter()
            .map(|n| n.snapshot.containers.len())
            .sum::<usize>()
            == ENGINES * 2 + 24
    })
    .await;
    let placed = c.view.borrow().clone();
    let used = placed
        .read()
        .nodes
        .iter()
        .filter(|n| n.snapshot.containers.len() > 2)
        .count();
    assert_eq!(used, ENGINES, "spread placed on every engine");
    c.wait_healthy(ENGINES).await;
    wait_for_event_streams_only("after the creates", 10).await;
    assert_eq!(metric(&c, "shoal_engine_connections").await, ENGINES as f64);
    c.server.stop(true).await;
}
