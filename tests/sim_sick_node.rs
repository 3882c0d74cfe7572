//! What the API shows of an unhealthy node, over simulated engines (the real-engine
//! version, with a frozen dockerd, is `real_sick_node.rs`): its containers are hidden from
//! `ps`, shown `Host Down` by `ps -a`, and calls about them are refused at once with a 503
//! naming the node; once its engine answers again they go through.

mod sim_fixture;

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
