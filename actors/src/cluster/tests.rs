//! The ClusterActor over fake engines: it restarts a node actor that stops on its own,
//! publishes a view laid out anew when a node's health changes, and refuses calls to the
//! containers of an unhealthy node at once.

use super::{ClusterActor, ClusterConfig, ClusterView, ResolveError, SetEngines};
use crate::engine::Engine;
use crate::node::fake_engine::{FakeEngine, Mode};
use crate::node::{Health, NodeConfig, RestartNode};
use actix::prelude::*;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn start(engines: &[FakeEngine]) -> (Addr<ClusterActor>, watch::Receiver<Arc<ClusterView>>) {
    let config = ClusterConfig {
        node: NodeConfig {
            refresh_min: Duration::from_millis(20),
            refresh_max: Duration::from_millis(40),
            failure_retry: 2,
        },
        arbiters: 2,
        ..ClusterConfig::default()
    };
    let known = engines.to_vec();
    let (cluster, view) = ClusterActor::new(config);
    let cluster = cluster
        .engines_from(Arc::new(move |addr, _| {
            let engine = known
                .iter()
                .find(|e| *e.addr() == addr)
                .expect("a fake engine for every address")
                .clone();
            Rc::new(engine) as Rc<dyn Engine>
        }))
        .start();
    let addrs = engines.iter().map(|e| e.addr().clone()).collect();
    cluster.do_send(SetEngines(addrs));
    (cluster, view)
}

async fn until(
    view: &watch::Receiver<Arc<ClusterView>>,
    what: &str,
    check: impl Fn(&ClusterView) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check(&view.borrow()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

fn all_healthy(v: &ClusterView, n: usize) -> bool {
    let read = v.read();
    read.nodes.len() == n
        && read
            .nodes
            .iter()
            .all(|n| n.snapshot.health == Health::Healthy)
}

#[actix::test]
async fn a_node_actor_that_stops_is_restarted() {
    let engine = FakeEngine::new("127.0.0.1:2375", "node-1");
    let (_cluster, view) = start(std::slice::from_ref(&engine));
    until(&view, "a healthy node", |v| all_healthy(v, 1)).await;
    let old = view.borrow().nodes[0].actor.clone();
    let infos = engine.calls_to("/info").len();

    old.send(RestartNode).await.unwrap();
    until(&view, "a new actor, healthy", |v| {
        v.nodes.len() == 1 && v.nodes[0].actor != old && all_healthy(v, 1)
    })
    .await;
    assert!(!old.connected(), "the old actor is gone");
    assert!(
        engine.calls_to("/info").len() > infos,
        "the new actor refreshed"
    );
}

#[actix::test]
async fn health_changes_are_laid_out_and_calls_to_a_sick_node_fail_at_once() {
    let (a, b) = (
        FakeEngine::new("127.0.0.1:2375", "node-1"),
        FakeEngine::new("127.0.0.1:2376", "node-2"),
    );
    a.add_container("aaa", "running");
    b.add_container("bbb", "running");
    let (_cluster, view) = start(&[a.clone(), b.clone()]);
    until(&view, "two healthy nodes", |v| {
        all_healthy(v, 2) && v.find_container("bbb").is_ok()
    })
    .await;
    // The view published after the nodes turned healthy is laid out with their names.
    until(&view, "a view laid out anew", |v| !v.layout_is_stale()).await;
    let names: Vec<String> = view
        .borrow()
        .read()
        .nodes
        .iter()
        .map(|n| n.name.to_string())
        .collect();
    assert_eq!(names, ["node-1", "node-2"]);

    b.set_mode(Mode::Down);
    until(&view, "node-2 unhealthy", |v| {
        v.node("127.0.0.1:2376")
            .is_some_and(|n| n.snapshot.health == Health::Unhealthy)
    })
    .await;
    // Told by the node (`LayoutChanged`), not found by the cluster's five-second check.
    let seen = Instant::now();
    until(&view, "a view laid out anew", |v| !v.layout_is_stale()).await;
    assert!(
        seen.elapsed() < Duration::from_secs(1),
        "{:?}",
        seen.elapsed()
    );
    let v = view.borrow().clone();
    let err = v.find_container("bbb").err().expect("refused");
    assert_eq!(err.status(), 503);
    assert!(
        matches!(&err, ResolveError::NodeUnhealthy { node, .. } if node == "node-2"),
        "{err}"
    );
    assert!(err.to_string().contains("node-2"), "{err}");
    // Reading what is known of it still works, and the other node still serves.
    assert!(v.read().lookup_container("bbb").is_ok());
    assert!(v.read().resolve_container("bbb").is_err());
    assert!(v.find_container("aaa").is_ok());
    drop(v);

    b.set_mode(Mode::Up);
    until(&view, "node-2 serving again", |v| {
        v.find_container("bbb").is_ok()
    })
    .await;
}
