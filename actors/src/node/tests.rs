//! The NodeActor against a fake engine (`fake_engine`): health transitions and back-off, a
//! failed refresh, the probe that brings an unhealthy node back, an engine event that
//! lists one container again, and work refused while the node is unhealthy.

use super::fake_engine::{FakeEngine, Mode};
use super::{Health, NodeActor, NodeConfig, NodeSnapshot};
use crate::events::{NodeChange, NodeChanged};
use actix::prelude::*;
use serde_json::json;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn config(min_ms: u64, max_ms: u64, retry: u32) -> NodeConfig {
    NodeConfig {
        refresh_min: Duration::from_millis(min_ms),
        refresh_max: Duration::from_millis(max_ms),
        failure_retry: retry,
    }
}

/// The health changes a node reported, in order.
type Heard = Arc<Mutex<Vec<NodeChange>>>;

/// Starts a node over `engine`; answers its snapshots and the health changes it reports.
fn start(
    engine: &FakeEngine,
    config: NodeConfig,
) -> (Addr<NodeActor>, watch::Receiver<Arc<NodeSnapshot>>, Heard) {
    let (tx, rx) = watch::channel(Arc::new(NodeSnapshot::pending(
        "127.0.0.1:2375".parse().unwrap(),
    )));
    let changes = Arc::new(Mutex::new(Vec::new()));
    let heard = Changes(changes.clone()).start();
    let node = NodeActor::new(Rc::new(engine.clone()), config, tx)
        .changes_to(heard.recipient())
        .start();
    (node, rx, changes)
}

/// Records the health changes a node reports.
struct Changes(Heard);

impl Actor for Changes {
    type Context = Context<Self>;
}

impl Handler<NodeChanged> for Changes {
    type Result = ();

    fn handle(&mut self, msg: NodeChanged, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(msg.change);
    }
}

/// Waits (at most `secs`) until the published snapshot satisfies `check`.
async fn until(
    rx: &watch::Receiver<Arc<NodeSnapshot>>,
    secs: u64,
    what: &str,
    check: impl Fn(&NodeSnapshot) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check(&rx.borrow()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix::test]
async fn health_goes_pending_healthy_unhealthy_and_back() {
    let engine = FakeEngine::new("127.0.0.1:2375", "node-1");
    let (_node, rx, changes) = start(&engine, config(20, 80, 2));
    until(&rx, 5, "healthy", |s| s.health == Health::Healthy).await;
    assert_eq!(rx.borrow().engine_name(), "node-1");

    engine.set_mode(Mode::Down);
    until(&rx, 5, "unhealthy", |s| s.health == Health::Unhealthy).await;
    let s = rx.borrow().clone();
    assert!(s.failures >= 2, "{}", s.failures);
    assert!(s
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("connection refused"));

    engine.set_mode(Mode::Up);
    until(&rx, 5, "healthy again", |s| s.health == Health::Healthy).await;
    assert_eq!(rx.borrow().failures, 0);
    let seen = changes.lock().unwrap().clone();
    assert!(
        matches!(
            seen.as_slice(),
            [
                NodeChange::Healthy {
                    previous: Health::Pending
                },
                NodeChange::Unhealthy { .. },
                NodeChange::Healthy {
                    previous: Health::Unhealthy
                },
            ]
        ),
        "{seen:?}"
    );
}

#[actix::test]
async fn failed_refreshes_back_off() {
    let engine = FakeEngine::new("127.0.0.1:2375", "node-1");
    engine.set_mode(Mode::Down);
    // Never unhealthy within the test (no probes): only the refresh loop asks.
    let (_node, rx, _) = start(&engine, config(50, 400, 1000));
    actix_rt::time::sleep(Duration::from_millis(1200)).await;
    // Without back-off a refresh every 50 ms would be ~24; backing off (50, 100, 200, 400,
    // 400 ms, ...) it is 5 or 6.
    let asked = engine.calls_to("/info").len();
    assert!((2..=8).contains(&asked), "{asked} refreshes in 1.2 s");
    assert_eq!(rx.borrow().health, Health::Pending);
    assert_eq!(rx.borrow().failures as usize, asked);
}

#[actix::test]
async fn a_failed_refresh_is_published_and_a_later_one_heals_it() {
    let engine = FakeEngine::new("127.0.0.1:2375", "node-1");
    engine.set_mode(Mode::Garbage);
    let (_node, rx, _) = start(&engine, config(100, 100, 3));
    until(&rx, 5, "a failed refresh", |s| s.failures >= 1).await;
    let s = rx.borrow().clone();
    assert_eq!(s.health, Health::Pending, "one failure is not unhealthy");
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("/info"),
        "{s:?}"
    );
    assert!(s.facts.is_none());
    engine.set_mode(Mode::Up);
    until(&rx, 5, "healthy", |s| s.health == Health::Healthy).await;
    assert!(rx.borrow().last_error.is_none());
}

#[actix::test]
async fn an_unhealthy_node_is_probed_and_back_long_before_its_back_off() {
    let engine = FakeEngine::new("127.0.0.1:2375", "node-1");
    // Backing off up to 20 s: without probes the node would stay unhealthy that long.
    let (node, rx, _) = start(&engine, config(200, 20_000, 1));
    until(&rx, 5, "healthy", |s| s.health == Health::Healthy).await;
    engine.set_mode(Mode::Down);
    node.send(super::RefreshNode).await.unwrap();
    until(&rx, 5, "unhealthy", |s| s.health == Health::Unhealthy).await;
    // Let the back-off grow (200, 400, 800, 1600 ms ...).
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !engine.calls_to("/_ping").is_empty(),
        "probed while unhealthy"
    );
    engine.set_mode(Mode::Up);
    let back = Instant::now();
    until(&rx, 5, "healthy again", |s| s.health == Health::Healthy).await;
    assert!(
        back.elapsed() < Duration::from_millis(700),
        "healthy {:?} after the engine answered again",
        back.elapsed()
    );
}

#[actix::test]
async fn an_event_lists_its_one_container_again() {
    let engine = FakeEngine::new("127.0.0.1:2375", "node-1");
    engine.add_container("aaa", "running");
    // Refreshes far apart: whatever lists the container below is the event's doing.
    let (_node, rx, _) = start(&engine, config(60_000, 60_000, 3));
    until(&rx, 5, "healthy with its container", |s| {
        s.containers.by_id("aaa").is_some()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !engine.events_open() {
        assert!(Instant::now() < deadline, "event stream never opened");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    // The list that follows the stream's opening.
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    let full_lists = engine.calls_to("/containers/json?all=1").len();

    engine.add_container("bbb", "running");
    assert!(
        engine.push_event(json!({"Type": "container", "Action": "create",
        "Actor": {"ID": "bbb", "Attributes": {"name": "bbb"}}, "timeNano": 1}))
    );
    until(&rx, 5, "the new container", |s| {
        s.containers.by_id("bbb").is_some()
    })
    .await;

    let lists = engine.calls_to("/containers/json?all=1");
    let new: Vec<&String> = lists[full_lists..].iter().collect();
    assert!(!new.is_empty());
    assert!(
        new.iter()
            .all(|p| p.contains("filters=") && p.contains("bbb") && !p.contains("aaa")),
        "only bbb is listed again: {new:?}"
    );
    assert!(rx.borrow().containers.by_id("aaa").is_some());
    // What it holds is learned by an inspect of that one container.
    until(&rx, 5, "its reservation", |s| s.reserved.memory == 128).await;
}

/// Work sent to a node after it turned unhealthy (placed before the scheduler saw the
/// mark) is refused at once, as a failure that reached no engine, so a create is tried
/// on another node instead of waiting on a frozen engine.
#[actix::test]
async fn work_sent_to_an_unhealthy_node_is_refused_at_once() {
    use super::CreateContainer;
    use crate::engine::EngineError;
    let engine = FakeEngine::new("127.0.0.1:2375", "node-1");
    let (node, rx, _) = start(&engine, config(20, 80, 2));
    until(&rx, 5, "healthy", |s| s.health == Health::Healthy).await;
    engine.set_mode(Mode::Down);
    until(&rx, 5, "unhealthy", |s| s.health == Health::Unhealthy).await;
    let began = Instant::now();
    let answer = node
        .send(CreateContainer {
            name: None,
            body: bytes::Bytes::from_static(b"{\"Image\":\"busybox\"}"),
        })
        .await
        .expect("the node answers");
    assert!(began.elapsed() < Duration::from_millis(100));
    match answer {
        Err(EngineError::Connect { reason, .. }) => {
            assert!(reason.contains("node node-1 is unhealthy"), "{reason}")
        }
        other => panic!("not refused: {other:?}"),
    }
    assert!(engine.calls_to("/containers/create").is_empty());
}
