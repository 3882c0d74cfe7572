//! `POST /containers/create` through Shoal over simulated engines, for what the create
//! flow adds at the edge: the reschedule policy leaves the env for its
//! `com.docker.swarm.reschedule-policies` label, and an invalid one is refused with 400
//! before anything reaches an engine.

mod sim_fixture;

use awc::http::Method;
use serde_json::json;
use shoal_sim::EngineConfig;
use sim_fixture::SimCluster;

#[actix_rt::test]
async fn the_reschedule_policy_moves_into_its_label_and_bad_ones_are_refused() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("n1"))
        .engine(EngineConfig::new("n2"))
        .start()
        .await;
    c.wait_healthy(2).await;

    let a = c
        .request(
            Method::POST,
            "/v1.41/containers/create?name=keeper",
            Some(json!({"Image": "busybox:latest", "Env": ["A=1", "reschedule:on-node-failure"]})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.message());
    let id = a.json()["Id"].as_str().unwrap().to_string();
    let inspect = c.get(&format!("/containers/{id}/json")).await.json();
    assert_eq!(inspect["Config"]["Env"], json!(["A=1"]));
    assert_eq!(
        inspect["Config"]["Labels"]["com.docker.swarm.reschedule-policies"],
        "[\"on-node-failure\"]"
    );

    // The label alone is read back as it is.
    let a = c
        .request(
            Method::POST,
            "/containers/create",
            Some(json!({"Image": "busybox:latest", "Labels": {"com.docker.swarm.reschedule-policies": "[\"off\"]"}})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.message());

    let before: usize = (0..2).map(|i| c.fleet.engine(i).container_count()).sum();
    for (body, want) in [
        (
            json!({"Image": "busybox:latest", "Env": ["reschedule:always"]}),
            "invalid reschedule policy: always",
        ),
        (
            json!({"Image": "busybox:latest", "Labels": {"com.docker.swarm.reschedule-policies": "[\"false\"]"}}),
            "invalid reschedule policy: false",
        ),
        (
            json!({"Image": "busybox:latest", "Env": ["reschedule:off"], "Labels": {"com.docker.swarm.reschedule-policies": "[\"on-node-failure\"]"}}),
            "too many reschedule policies",
        ),
    ] {
        let a = c
            .request(Method::POST, "/containers/create", Some(body.clone()))
            .await;
        assert_eq!(a.status, 400, "{body}: {}", a.message());
        assert_eq!(a.message(), want, "{body}");
    }
    let after: usize = (0..2).map(|i| c.fleet.engine(i).container_count()).sum();
    assert_eq!(before, after, "refused creates reached no engine");
}
