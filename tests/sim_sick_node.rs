//! What the API shows of an unhealthy node, over simulated engines (the real-engine
//! version, with a frozen dockerd, is `real_sick_node.rs`): its containers are hidden from
//! `ps`, shown `Host Down` by `ps -a`, and calls about them are refused at once with a 503
//! naming the node; once its engine answers again they go through. Work already in flight
//! there when it turns unhealthy ends then, not after the work timeout.

mod sim_fixture;

use awc::http::Method;
use shoal::config::PlacementConfig;
use shoal_actors::node::Health;
use shoal_sim::{EngineConfig, Fault};
use sim_fixture::SimCluster;
use std::time::{Duration, Instant};

fn names(list: &serde_json::Value) -> Vec<(String, String)> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            (
                c["Names"][0].as_str().unwrap_or("").to_string(),
                c["Status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn containers_of_an_unhealthy_node_are_down_and_refused_at_once() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("ok").containers(2))
        .engine(EngineConfig::new("sick").containers(2))
        .start()
        .await;
    c.wait_healthy(2).await;
    let listed = names(&c.get("/containers/json").await.json());
    assert_eq!(listed.len(), 4, "{listed:?}");
    let list = c.get("/containers/json").await.json();
    let sick_id = list
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["Names"][0].as_str().unwrap_or("").starts_with("/sick/"))
        })
        .and_then(|x| x["Id"].as_str())
        .expect("a container on sick")
        .to_string();
    assert_eq!(
        c.get(&format!("/containers/{sick_id}/json")).await.status,
        200
    );

    c.fleet.engine(1).set_fault(Fault::Down);
    c.wait_for("sick unhealthy", 15, |r| {
        r.nodes
            .iter()
            .any(|n| n.snapshot.health == Health::Unhealthy)
    })
    .await;

    let running = names(&c.get("/containers/json").await.json());
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(running
        .iter()
        .all(|(n, s)| n.starts_with("/ok/") && s.starts_with("Up")));
    let all = names(&c.get("/containers/json?all=1").await.json());
    let down: Vec<_> = all
        .iter()
        .filter(|(n, _)| n.starts_with("/sick/"))
        .collect();
    assert_eq!(down.len(), 2, "{all:?}");
    assert!(down.iter().all(|(_, s)| s == "Host Down"), "{all:?}");

    for path in [
        format!("/containers/{sick_id}/json"),
        format!("/containers/{sick_id}/top"),
    ] {
        let began = Instant::now();
        let a = c.get(&path).await;
        assert_eq!(a.status, 503, "{path}");
        assert!(
            a.message().contains("running on unhealthy node sick"),
            "{}",
            a.message()
        );
        assert!(began.elapsed() < Duration::from_millis(300), "{path}");
    }
    let info = c.get("/info").await.json();
    let status = info["SystemStatus"].to_string();
    assert!(status.contains("Unhealthy"), "{status}");

    c.fleet.engine(1).set_fault(Fault::None);
    let healed = Instant::now();
    loop {
        if c.get(&format!("/containers/{sick_id}/json")).await.status == 200 {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(10),
            "never served again"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let running = names(&c.get("/containers/json").await.json());
    assert_eq!(running.len(), 4, "{running:?}");
}

/// The ID of the first container listed whose name starts with `/node/`.
async fn container_on(c: &sim_fixture::Started, node: &str) -> String {
    let list = c.get("/containers/json").await.json();
    list.as_array()
        .and_then(|a| {
            a.iter().find(|x| {
                x["Names"][0]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(&format!("/{node}/"))
            })
        })
        .and_then(|x| x["Id"].as_str())
        .unwrap_or_else(|| panic!("a container on {node}: {list}"))
        .to_string()
}

/// Work in flight on an engine that stops answering (a `wait` on one of its containers,
/// which the engine answers only when the container exits, and a create placed there) ends
/// as soon as the node is marked unhealthy, not after the work timeout (30 s here): the
/// `wait` answers 503 naming the node, and the unnamed create is tried on the other node
/// and answered 201.
#[actix_rt::test]
async fn work_in_flight_on_a_node_that_turns_unhealthy_ends_then() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("ok").containers(1))
        .engine(EngineConfig::new("sick").containers(1))
        .placement(PlacementConfig {
            create_retry: 2,
            ..PlacementConfig::default()
        })
        .start()
        .await;
    c.wait_healthy(2).await;
    let sick_id = container_on(&c, "sick").await;
    let wait_path = format!("/containers/{sick_id}/wait");
    let wait = async {
        let began = Instant::now();
        (c.request(Method::POST, &wait_path, None).await, began)
    };
    let freeze_then_create = async {
        // The wait is with the engine; then the engine stops answering anything.
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        c.fleet
            .engine(1)
            .set_fault(Fault::Slow(Duration::from_secs(120)));
        let froze = Instant::now();
        let body = serde_json::json!({
            "Image": "busybox",
            "Cmd": ["true"],
            "Env": ["constraint:node==~sick"],
        });
        let created = c
            .request(Method::POST, "/containers/create", Some(body))
            .await;
        (created, froze, froze.elapsed())
    };
    let ((waited, wait_began), (created, froze, create_took)) =
        futures_util::join!(wait, freeze_then_create);
    let wait_took = wait_began.elapsed();
    let marked = c.health().contains(&Health::Unhealthy);
    assert!(marked, "sick marked unhealthy: {:?}", c.health());

    // Marked within failure_retry x (refresh interval + call timeout) = 2 x 1.2 s.
    assert_eq!(
        waited.status,
        503,
        "{}",
        String::from_utf8_lossy(&waited.body)
    );
    assert!(
        waited.message().contains("node sick turned unhealthy"),
        "{}",
        waited.message()
    );
    assert!(
        froze.elapsed() < Duration::from_secs(10) && wait_took < Duration::from_secs(10),
        "the wait ended {wait_took:?} after it began"
    );

    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert!(
        create_took < Duration::from_secs(10),
        "the create took {create_took:?}"
    );
    let id = created.json()["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let inspect = c.get(&format!("/containers/{id}/json")).await.json();
    assert_eq!(inspect["Node"]["Name"], "ok", "{inspect}");
    c.fleet.engine(1).set_fault(Fault::None);
}
