//! Image, network and volume routes against simulated engines: merged lists with the node
//! of each entry, pull progress merged from every node, and Docker-shaped errors for bad
//! input, answered without bothering an engine.

mod sim_fixture;

use awc::http::Method;
use sim_fixture::SimCluster;
use std::collections::HashSet;

#[actix_rt::test]
async fn networks_and_volumes_are_listed_per_node() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let a = c.get("/networks").await;
    assert_eq!(a.status, 200);
    let list = a.json();
    let list = list.as_array().unwrap();
    let nodes: HashSet<&str> = list
        .iter()
        .map(|n| n["Node"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, HashSet::from(["n1", "n2", "n3"]));
    // Names stay the engine's, so clients that look networks up by name find them.
    let a = c
        .get("/networks?filters=%7B%22name%22%3A%5B%22bridge%22%5D%7D")
        .await;
    let bridges = a.json();
    assert_eq!(bridges.as_array().unwrap().len(), 3, "{bridges}");
    assert!(bridges
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["Name"] == "bridge"));
    let a = c
        .get("/networks?filters=%7B%22type%22%3A%5B%22x%22%5D%7D")
        .await;
    assert_eq!(a.status, 400, "{}", a.message());

    let a = c.get("/volumes").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["Volumes"], serde_json::json!([]));
}

#[actix_rt::test]
async fn unknown_objects_and_broken_bodies_answer_like_docker() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let a = c.get("/v1.41/networks/nope").await;
    assert_eq!(
        (a.status, a.message().as_str()),
        (404, "network nope not found")
    );
    let a = c.get("/volumes/nope").await;
    assert_eq!(
        (a.status, a.message().as_str()),
        (404, "get nope: no such volume")
    );
    let a = c.request(Method::DELETE, "/volumes/nope", None).await;
    assert_eq!(a.status, 404);
    for path in ["/networks/create", "/volumes/create", "/networks/x/connect"] {
        let mut resp = c
            .client
            .post(format!("{}{}", c.base, path))
            .insert_header(("Content-Type", "application/json"))
            .send_body("{\"Name\":")
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("invalid JSON"),
            "{body}"
        );
    }
    let a = c
        .request(
            Method::POST,
            "/networks/create",
            Some(serde_json::json!({"Name": "bridge"})),
        )
        .await;
    assert_eq!(
        (a.status, a.message().as_str()),
        (409, "network with name bridge already exists")
    );
}

#[actix_rt::test]
async fn a_pull_runs_on_every_node_with_its_progress_marked() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let a = c
        .request(Method::POST, "/images/create?fromImage=redis&tag=7", None)
        .await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).to_string();
    // The engine's texts are kept; each line says its node in `node`, and a layer's line
    // also in its `id` (one progress bar per node and layer).
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let node = v["node"]["Name"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        assert!(["n1", "n2", "n3"].contains(&node), "{line}");
        seen.insert(node.to_string());
        if let Some(id) = v["id"].as_str() {
            assert!(id.starts_with(&format!("{node}: ")), "{line}");
        }
        if let Some(status) = v["status"].as_str() {
            assert!(
                !status.starts_with("n1: ") && !status.starts_with("n2: "),
                "{line}"
            );
        }
    }
    assert!(
        text.lines().any(|l| l.contains("\"id\"")),
        "no per-layer line: {text}"
    );
    assert_eq!(seen.len(), 3, "{text}");
    let a = c.request(Method::POST, "/images/create", None).await;
    assert_eq!(a.status, 400);
}
