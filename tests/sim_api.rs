//! The read-only Docker API of a Shoal in front of simulated engines: what the CLI sees,
//! the Docker-shaped errors, and one engine's failure staying its own.

mod sim_fixture;

use shoal::discovery::Discovery;
use shoal_actors::node::Health;
use shoal_sim::{EngineConfig, Fault};
use sim_fixture::{tcp, SimCluster};
use std::collections::HashSet;

#[actix_rt::test]
async fn ping_version_and_info_aggregate_the_nodes() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let ping = c.get("/_ping").await;
    assert_eq!(ping.status, 200);
    assert_eq!(&ping.body[..], b"OK");
    assert_eq!(ping.headers.get("Api-Version").unwrap(), "1.41");

    let v = c.get("/v1.41/version").await.json();
    assert_eq!(v["ApiVersion"], "1.41");
    assert!(v["Version"].as_str().unwrap().starts_with("shoal/"));

    let info = c.get("/info").await.json();
    assert_eq!(info["NCPU"], 14);
    assert_eq!(info["MemTotal"], 7i64 << 30);
    assert_eq!(info["Containers"], 9);
    assert_eq!(
        info["ContainersRunning"].as_i64().unwrap() + info["ContainersStopped"].as_i64().unwrap(),
        9
    );
    let status: Vec<(String, String)> = info["SystemStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(status.contains(&("Nodes".into(), "3".into())));
    for n in ["n1", "n2", "n3"] {
        assert!(
            status.iter().any(|(k, _)| k.trim() == n),
            "no block for {n}: {status:?}"
        );
    }
    assert_eq!(
        status
            .iter()
            .filter(|(k, v)| k.contains("Status") && v == "Healthy")
            .count(),
        3
    );
    assert!(status
        .iter()
        .any(|(k, v)| k.contains("Labels") && v.contains("storage=ssd")));
    assert!(status
        .iter()
        .any(|(k, v)| k.contains("Reserved Memory") && v.ends_with("/ 1.000 GiB")));
}

#[actix_rt::test]
async fn container_list_is_every_container_once_with_node_names() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let all = c.get("/v1.41/containers/json?all=1").await.json();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 9);
    let ids: HashSet<&str> = all.iter().map(|x| x["Id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 9);
    for x in all {
        let name = x["Names"][0].as_str().unwrap();
        let node = name.split('/').nth(1).unwrap();
        assert!(["n1", "n2", "n3"].contains(&node), "{name}");
        assert!(name.ends_with(&format!("/{}", name.split('/').nth(2).unwrap())));
    }
    let created: Vec<i64> = all.iter().map(|x| x["Created"].as_i64().unwrap()).collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {created:?}"
    );

    let running = c.get("/containers/json").await.json();
    assert!(running
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["State"] == "running"));
    assert!(running.as_array().unwrap().len() < 9);

    let limited = c.get("/containers/json?limit=2").await.json();
    assert_eq!(limited.as_array().unwrap().len(), 2);
    assert_eq!(limited[0]["Id"], all[0]["Id"]);
}

#[actix_rt::test]
async fn container_list_filters() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let eng = c.fleet.engine(1);
    let id = eng.create_container("web", "busybox:latest", &[("tier", "front")]);
    c.wait_for("web listed", 5, |r| r.resolve_container("web").is_ok())
        .await;

    let q = |f: &str| format!("/containers/json?all=1&filters={}", urlencode(f));
    let by_name = c.get(&q(r#"{"name":["web"]}"#)).await.json();
    assert_eq!(by_name.as_array().unwrap().len(), 1);
    assert_eq!(by_name[0]["Names"][0], "/n2/web");
    let by_label = c.get(&q(r#"{"label":["tier=front"]}"#)).await.json();
    assert_eq!(by_label[0]["Id"], id.as_str());
    let by_id = c
        .get(&q(&format!(r#"{{"id":["{}"]}}"#, &id[..12])))
        .await
        .json();
    assert_eq!(by_id.as_array().unwrap().len(), 1);
    let created = c.get(&q(r#"{"status":["created"]}"#)).await.json();
    assert!(created
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["Id"] == id.as_str()));
    assert!(created
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["State"] == "created"));
    let exited = c.get(&q(r#"{"status":["exited"]}"#)).await.json();
    assert!(!exited.as_array().unwrap().is_empty());
    let ancestors = c.get(&q(r#"{"ancestor":["busybox"]}"#)).await.json();
    assert_eq!(ancestors.as_array().unwrap().len(), 10);
    let none = c.get(&q(r#"{"ancestor":["redis"]}"#)).await.json();
    assert!(none.as_array().unwrap().is_empty());

    let bad = c.get(&q(r#"{"colour":["red"]}"#)).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.message(), "invalid filter 'colour'");
    let bad = c.get(&q(r#"{"status":["sleepy"]}"#)).await;
    assert_eq!(
        (bad.status, bad.message().as_str()),
        (400, "invalid filter 'status=sleepy'")
    );
    let bad = c.get("/containers/json?filters=%7Bnot-json").await;
    assert_eq!(bad.status, 400);
    assert!(bad.message().starts_with("invalid filter"));
    let bad = c.get("/containers/json?limit=many").await;
    assert_eq!(bad.status, 400);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_rt::test]
async fn inspect_by_name_id_prefix_and_node_name() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let id = c
        .fleet
        .engine(2)
        .create_container("db", "busybox:latest", &[]);
    // Wait for "db" itself: a container listed earlier whose ID starts with "db" would
    // resolve by prefix before the name is known.
    c.wait_for("db listed", 5, |r| {
        r.resolve_container("db")
            .is_ok_and(|(_, e)| e.id() == id.as_str())
    })
    .await;
    for reference in ["db", id.as_str(), &id[..10], "/n3/db", "n3/db"] {
        let a = c.get(&format!("/v1.41/containers/{reference}/json")).await;
        assert_eq!(
            a.status,
            200,
            "{reference}: {}",
            String::from_utf8_lossy(&a.body)
        );
        let v = a.json();
        assert_eq!(v["Id"], id.as_str());
        assert_eq!(v["Name"], "/db");
        assert_eq!(v["Node"]["Name"], "n3");
        assert_eq!(v["Node"]["Addr"], c.fleet.engine(2).addr().to_string());
        assert_eq!(v["Node"]["Labels"]["zone"], "b");
    }
    let missing = c.get("/containers/nothing-here/json").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.message(), "No such container: nothing-here");
    let wrong_node = c.get("/containers/n1/db/json").await;
    assert_eq!(wrong_node.status, 404);

    // Sixteen containers share a one-hex-digit prefix with some other.
    for i in 0..16 {
        c.fleet
            .engine(i % 3)
            .create_container(&format!("p{i}"), "busybox:latest", &[]);
    }
    c.wait_for("p15 listed", 5, |r| r.resolve_container("p15").is_ok())
        .await;
    let ambiguous = (0..16u8)
        .map(|d| format!("{d:x}"))
        .find(|p| {
            let view = c.view.borrow().clone();
            let read = view.read();
            read.nodes
                .iter()
                .flat_map(|n| n.snapshot.containers.entries.iter())
                .filter(|e| e.id().starts_with(p.as_str()))
                .count()
                > 1
        })
        .expect("some prefix is shared among 26 containers");
    let a = c.get(&format!("/containers/{ambiguous}/json")).await;
    assert_eq!(
        a.message(),
        format!("multiple IDs found with provided prefix: {ambiguous}")
    );
}

#[actix_rt::test]
async fn images_merge_across_nodes_and_inspect() {
    let c = SimCluster::new()
        .engine(
            EngineConfig::new("a")
                .image("busybox:latest")
                .image("redis:7"),
        )
        .engine(EngineConfig::new("b").image("busybox:latest"))
        .start()
        .await;
    c.wait_healthy(2).await;
    let list = c.get("/v1.41/images/json").await.json();
    let tags: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["RepoTags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
        })
        .collect();
    assert!(tags.contains(&"redis:7".to_string()), "{tags:?}");
    assert!(tags.iter().filter(|t| *t == "busybox:latest").count() >= 1);
    let redis = c.get("/v1.41/images/redis:7/json").await;
    assert_eq!(
        redis.status,
        200,
        "{}",
        String::from_utf8_lossy(&redis.body)
    );
    assert!(redis.json()["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "redis:7"));
    let missing = c.get("/images/nope:1/json").await;
    assert_eq!(
        (missing.status, missing.message().as_str()),
        (404, "No such image: nope:1")
    );
    let filtered = c
        .get("/images/json?filters=%7B%22reference%22%3A%5B%22red%2A%22%5D%7D")
        .await
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 1);
}

#[actix_rt::test]
async fn unknown_routes_404_swarm_routes_503_and_versions_checked() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let a = c.get("/v1.41/nothing/here").await;
    assert_eq!((a.status, a.message().as_str()), (404, "page not found"));
    let a = c
        .request(awc::http::Method::POST, "/v1.41/swarm/init", None)
        .await;
    assert_eq!(a.status, 503);
    assert!(
        a.message().contains("standalone cluster manager"),
        "{}",
        a.message()
    );
    let a = c.get("/v1.99/info").await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.message(),
        "client version 1.99 is too new. Maximum supported API version is 1.41"
    );
    let a = c.get("/v1.12/info").await;
    assert_eq!(a.status, 400);
    assert!(a.message().starts_with("client version 1.12 is too old"));
}

#[actix_rt::test]
async fn api_version_is_the_lowest_of_the_healthy_engines() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("new").api_version("1.43"))
        .engine(EngineConfig::new("old").api_version("1.40"))
        .start()
        .await;
    c.wait_healthy(2).await;
    let ping = c.get("/_ping").await;
    assert_eq!(ping.headers.get("Api-Version").unwrap(), "1.40");
    c.fleet.engine(1).set_fault(Fault::Down);
    c.wait_for("old unhealthy", 10, |r| {
        r.nodes
            .iter()
            .any(|n| n.snapshot.health == Health::Unhealthy)
    })
    .await;
    let ping = c.get("/_ping").await;
    assert_eq!(ping.headers.get("Api-Version").unwrap(), "1.43");
}

#[actix_rt::test]
async fn a_sick_engine_is_its_own_problem() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("ok").containers(2))
        .engine(EngineConfig::new("down").containers(2))
        .engine(EngineConfig::new("garbage").containers(2))
        .engine(EngineConfig::new("slow").containers(2))
        .start()
        .await;
    c.wait_healthy(4).await;
    c.fleet.engine(1).set_fault(Fault::Down);
    c.fleet.engine(2).set_fault(Fault::Garbage);
    c.fleet
        .engine(3)
        .set_fault(Fault::Slow(std::time::Duration::from_secs(30)));
    c.wait_for("three unhealthy", 15, |r| {
        r.nodes
            .iter()
            .filter(|n| n.snapshot.health == Health::Unhealthy)
            .count()
            == 3
    })
    .await;
    let view = c.view.borrow().clone();
    let read = view.read();
    let by_name = |n: &str| read.nodes.iter().find(|x| *x.name == *n).unwrap();
    assert_eq!(by_name("ok").snapshot.health, Health::Healthy);
    let garbage = by_name("garbage").snapshot.last_error.clone().unwrap();
    assert!(garbage.contains("not the expected JSON"), "{garbage}");
    let slow = by_name("slow").snapshot.last_error.clone().unwrap();
    assert!(slow.contains("did not answer"), "{slow}");
    // The API still answers at once, from the healthy node and the last known state.
    let started = std::time::Instant::now();
    let info = c.get("/info").await.json();
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    assert_eq!(info["Containers"], 2);
    let ok_name = c.get("/containers/json?all=1").await.json();
    assert!(ok_name
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["Names"][0].as_str().unwrap().starts_with("/ok/")));
    // And a healed engine comes back.
    c.fleet.engine(1).set_fault(Fault::None);
    c.wait_for("down healthy again", 15, |r| {
        r.nodes
            .iter()
            .filter(|n| n.snapshot.health == Health::Healthy)
            .count()
            == 2
    })
    .await;
}

#[actix_rt::test]
async fn engines_sharing_id_and_name_stay_apart() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("twin").engine_id("SAME:ID").containers(1))
        .engine(EngineConfig::new("twin").engine_id("SAME:ID").containers(1))
        .start()
        .await;
    c.wait_healthy(2).await;
    let info = c.get("/info").await.json();
    let names: Vec<String> = info["SystemStatus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p[0].as_str().unwrap().starts_with(" ") && !p[0].as_str().unwrap().contains('└')
        })
        .map(|p| p[0].as_str().unwrap().trim().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_ne!(names[0], names[1]);
    assert!(
        names.iter().all(|n| n.starts_with("twin@127.0.0.1:")),
        "{names:?}"
    );
    assert_eq!(info["Containers"], 2);
}

#[actix_rt::test]
async fn a_discovery_file_that_changes_adds_and_removes_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("engines");
    let fleet_probe = SimCluster::new()
        .engine(EngineConfig::new("f1"))
        .engine(EngineConfig::new("f2"));
    // Start with a file that lists only the first engine; the fixture starts both engines.
    tokio::fs::write(&file, "# none yet\n").await.unwrap();
    let c = fleet_probe
        .discovery(Discovery::File(file.clone()))
        .start()
        .await;
    let a1 = tcp(c.fleet.addr(0));
    let a2 = tcp(c.fleet.addr(1));
    tokio::fs::write(&file, format!("{a1}  # first\n"))
        .await
        .unwrap();
    c.wait_healthy(1).await;
    tokio::fs::write(&file, format!("{a1}\n{a2}\n"))
        .await
        .unwrap();
    c.wait_healthy(2).await;
    tokio::fs::write(&file, format!("{a2}\n")).await.unwrap();
    c.wait_for("f1 gone", 10, |r| {
        r.nodes.len() == 1 && &*r.nodes[0].name == "f2"
    })
    .await;
    let info = c.get("/info").await.json();
    assert!(info["SystemStatus"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p[0] == "Nodes" && p[1] == "1"));
}

#[actix_rt::test]
async fn a_node_actor_that_stops_is_restarted_by_its_supervisor() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let (addr, old) = {
        let view = c.view.borrow().clone();
        let n = &view.nodes[0];
        (n.addr.clone(), n.actor.clone())
    };
    shoal_actors::metrics::queued("node", &addr);
    old.send(shoal_actors::node::RestartNode).await.unwrap();
    c.wait_for("a new actor for the node", 10, |r| {
        r.nodes.iter().any(|n| {
            n.handle.addr == addr && n.handle.actor != old && n.snapshot.health == Health::Healthy
        })
    })
    .await;
    assert!(!old.connected(), "the old actor is gone");
    let info = c.get("/info").await.json();
    assert_eq!(info["Containers"], 9);
    let metrics = String::from_utf8(c.get("/metrics").await.body.to_vec()).unwrap();
    let restarts = format!("shoal_actor_restarts_total{{actor=\"{addr}\",kind=\"node\"}} 1");
    assert!(metrics.contains(&restarts), "no {restarts}");
}

/// `/info` answers its node part from a memo of the node snapshots (`system.rs`): a node
/// that publishes a new snapshot must show in the very next answer.
#[actix_rt::test]
async fn info_follows_each_new_snapshot() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let containers = |info: &serde_json::Value| info["Containers"].as_u64().unwrap();
    assert_eq!(containers(&c.get("/info").await.json()), 9);
    assert_eq!(containers(&c.get("/info").await.json()), 9);
    let a = c
        .request(
            awc::http::Method::POST,
            "/containers/create?name=memo-check",
            Some(serde_json::json!({"Image": "busybox:latest"})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.message());
    c.wait_for("the new container in a snapshot", 10, |r| {
        r.nodes
            .iter()
            .map(|n| n.snapshot.containers.len())
            .sum::<usize>()
            == 10
    })
    .await;
    let info = c.get("/info").await.json();
    assert_eq!(containers(&info), 10);
    assert_eq!(
        info["ContainersStopped"].as_u64().unwrap() + info["ContainersRunning"].as_u64().unwrap(),
        10
    );
    let shown: u64 = info["SystemStatus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0] == "  └ Containers")
        .map(|p| {
            p[1].as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(shown, 10);
}
