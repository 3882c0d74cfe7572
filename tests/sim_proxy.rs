//! Container routes reach the engine that owns the container, in a Shoal over three
//! simulated engines; lists show the change right after (the node is refreshed).

mod sim_fixture;

use awc::http::Method;
use sim_fixture::SimCluster;

/// The state Shoal lists for the container called `name` (any node).
async fn listed_state(c: &sim_fixture::Started, name: &str) -> Option<String> {
    let list = c.get("/containers/json?all=1").await.json();
    list.as_array()?
        .iter()
        .find(|e| {
            e["Names"].as_array().is_some_and(|ns| {
                ns.iter()
                    .any(|n| n.as_str().is_some_and(|n| n.ends_with(&format!("/{name}"))))
            })
        })
        .map(|e| e["State"].as_str().unwrap_or("").to_string())
}

#[actix_rt::test]
async fn lifecycle_calls_go_to_the_owning_node() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    // `n2-c2` is stopped on n2 (every third container of a sim engine is).
    assert_eq!(listed_state(&c, "n2-c2").await.as_deref(), Some("exited"));
    let a = c
        .request(Method::POST, "/v1.41/containers/n2-c2/start", None)
        .await;
    assert_eq!(a.status, 204, "{:?}", a.body);
    c.wait_for("n2-c2 running", 5, |r| {
        r.nodes.iter().any(|n| {
            n.snapshot
                .containers
                .by_name("n2-c2")
                .is_some_and(|e| e.state() == "running")
        })
    })
    .await;
    // The `/node/name` form picks the node.
    let a = c
        .request(Method::POST, "/containers/n3/n3-c0/stop", None)
        .await;
    assert_eq!(a.status, 204, "{:?}", a.body);
    let a = c.request(Method::DELETE, "/containers/n1-c2", None).await;
    assert_eq!(a.status, 204, "{:?}", a.body);
    c.wait_for("n1-c2 gone", 5, |r| {
        r.nodes
            .iter()
            .all(|n| n.snapshot.containers.by_name("n1-c2").is_none())
    })
    .await;
}

#[actix_rt::test]
async fn unknown_containers_and_execs_are_docker_shaped_404s() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let a = c
        .request(Method::POST, "/v1.41/containers/nosuch/start", None)
        .await;
    assert_eq!(
        (a.status, a.message().as_str()),
        (404, "No such container: nosuch")
    );
    let a = c.request(Method::DELETE, "/containers/n9/x", None).await;
    assert_eq!(a.status, 404);
    let a = c.get("/v1.41/exec/0123abc/json").await;
    assert_eq!(a.status, 404);
    assert_eq!(a.message(), "No such exec instance: 0123abc");
}
