//! Rescheduling at a scale the real test does not reach, over simulated engines (the
//! real-engine test is `real_reschedule.rs`): 40 `on-node-failure` containers and 5 plain
//! ones on one node; the node goes down; past the grace period the 40 run again on the
//! other nodes, once each, with their names and ports, started as they were; the plain
//! ones stay. When the node answers again its 40 originals are removed.

mod sim_fixture;

use shoal::config::PlacementConfig;
use shoal_actors::cluster::ClusterRead;
use shoal_actors::node::Health;
use shoal_sim::{EngineConfig, Fault};
use sim_fixture::SimCluster;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MOVED: usize = 40;
const PLAIN: usize = 5;

/// Name → (node name, state, HostPort of 80/tcp) of every container on a healthy node.
fn on_healthy(r: &ClusterRead) -> Vec<(String, String, String)> {
    r.nodes
        .iter()
        .filter(|n| n.snapshot.health == Health::Healthy)
        .flat_map(|n| {
            n.snapshot
                .containers
                .entries
                .iter()
                .map(|e| {
                    (
                        e.name().to_string(),
                        n.name.to_string(),
                        e.state().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[actix_rt::test]
async fn forty_containers_of_a_dead_node_move_once_and_their_originals_go_when_it_returns() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("a").containers(0))
        .engine(EngineConfig::new("b").containers(0))
        .engine(EngineConfig::new("c").containers(0))
        .placement(PlacementConfig {
            reschedule_grace: Duration::from_secs(1),
            ..PlacementConfig::default()
        })
        .start()
        .await;
    c.wait_healthy(3).await;
    let post = awc::http::Method::POST;
    let mut ports = HashMap::new();
    for i in 0..MOVED + PLAIN {
        let moved = i < MOVED;
        let name = if moved {
            format!("web-{i}")
        } else {
            format!("plain-{i}")
        };
        let mut env = vec!["constraint:node==~a".to_string()];
        if moved {
            env.push("reschedule:on-node-failure".into());
        }
        let port = (9000 + i).to_string();
        let body = serde_json::json!({
            "Image": "busybox", "Cmd": ["sleep", "1000"], "Env": env,
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": port}]}},
        });
        let a = c
            .request(
                post.clone(),
                &format!("/containers/create?name={name}"),
                Some(body),
            )
            .await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
        let id = a.json()["Id"].as_str().unwrap().to_string();
        // Every other one is left created: its copy must stay so.
        if i.is_multiple_of(2) {
            let s = c
                .request(post.clone(), &format!("/containers/{id}/start"), None)
                .await;
            assert_eq!(s.status, 204);
        }
        ports.insert(name, port);
    }
    assert_eq!(c.fleet.engine(0).container_count(), MOVED + PLAIN);
    // The rescheduler reads the configs while the node is up (32 a second: two ticks).
    actix_rt::time::sleep(Duration::from_secs(4)).await;

    c.fleet.engine(0).set_fault(Fault::Down);
    let down = Instant::now();
    c.wait_for("a to be unhealthy", 15, |r| {
        r.nodes
            .iter()
            .any(|n| &*n.name == "a" && n.snapshot.health == Health::Unhealthy)
    })
    .await;
    c.wait_for("all 40 to run elsewhere", 30, |r| {
        on_healthy(r)
            .iter()
            .filter(|(n, _, _)| n.starts_with("web-"))
            .count()
            >= MOVED
    })
    .await;
    println!(
        "{MOVED} moved {:.1} s after the node went down (grace 1 s)",
        down.elapsed().as_secs_f64()
    );
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let view = c.view.borrow().clone();
    let live = on_healthy(&view.read());
    assert!(
        live.iter().all(|(n, _, _)| !n.starts_with("plain-")),
        "no plain container moved: {live:?}"
    );
    let mut names: Vec<&str> = live.iter().map(|(n, _, _)| n.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), MOVED, "each once: {live:?}");
    assert_eq!(live.len(), MOVED, "each once: {live:?}");
    for (name, node, state) in &live {
        assert_ne!(node, "a");
        let i: usize = name.trim_start_matches("web-").parse().unwrap();
        let want = if i.is_multiple_of(2) {
            "running"
        } else {
            "created"
        };
        assert_eq!(state, want, "{name}");
        let a = c.get(&format!("/containers/{name}/json")).await;
        assert_eq!(a.status, 200, "{name} resolves to its copy");
        let v = a.json();
        assert_eq!(
            v["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            ports[name].as_str(),
            "{name}"
        );
    }
    assert_eq!(
        shoal_actors::metrics::reschedules("done"),
        MOVED as u64,
        "the metric counts each move"
    );

    c.fleet.engine(0).set_fault(Fault::None);
    let back = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.fleet.engine(0).container_count() != PLAIN {
        assert!(
            Instant::now() < deadline,
            "originals left on a: {}",
            c.fleet.engine(0).container_count()
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{MOVED} originals removed {:.1} s after the node answered again",
        back.elapsed().as_secs_f64()
    );
}
