//! `POST /containers/create` through Shoal over simulated engines: placement expressions,
//! reservations under concurrency, names unique in the cluster, host ports never booked
//! twice, pulling a missing image, and Docker-shaped refusals.

mod sim_fixture;

use awc::http::Method;
use serde_json::{json, Value};
use shoal::config::PlacementConfig;
use shoal_sim::EngineConfig;
use sim_fixture::{SimCluster, Started};
use std::collections::HashMap;

const MIB: i64 = 1 << 20;

async fn create(c: &Started, name: Option<&str>, body: Value) -> (u16, Value) {
    let path = match name {
        Some(n) => format!("/v1.41/containers/create?name={n}"),
        None => "/v1.41/containers/create".to_string(),
    };
    let a = c.request(Method::POST, &path, Some(body)).await;
    (a.status, a.json())
}

async fn node_of(c: &Started, id: &str) -> String {
    let a = c.get(&format!("/containers/{id}/json")).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    a.json()["Node"]["Name"].as_str().unwrap().to_string()
}

fn placement(strategy: &str, overcommit: &str) -> PlacementConfig {
    PlacementConfig::from_args(strategy, &[], &[format!("swarm.overcommit={overcommit}")]).unwrap()
}

#[actix_rt::test]
async fn constraints_pick_the_node_and_move_into_labels() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("n1").label("storage", "ssd"))
        .engine(EngineConfig::new("n2").label("storage", "disk"))
        .engine(EngineConfig::new("n3").label("storage", "disk"))
        .start()
        .await;
    c.wait_healthy(3).await;
    let (status, answer) = create(
        &c,
        Some("fast"),
        json!({"Image": "busybox:latest", "Env": ["A=1", "constraint:storage==ssd"], "HostConfig": {"CpuShares": 512}}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["Id"].as_str().unwrap();
    assert_eq!(node_of(&c, id).await, "n1");
    let inspect = c.get(&format!("/containers/{id}/json")).await.json();
    assert_eq!(inspect["Config"]["Env"], json!(["A=1"]));
    assert_eq!(
        inspect["Config"]["Labels"]["com.docker.swarm.constraints"],
        "[\"storage==ssd\"]"
    );
    assert!(
        inspect["Config"]["Labels"]["com.docker.swarm.id"]
            .as_str()
            .unwrap()
            .len()
            >= 32
    );
    assert_eq!(
        inspect["HostConfig"]["CpuShares"], 512,
        "cpu shares reach the engine unchanged"
    );

    // By node name, negation, and a label array.
    let (s, a) = create(
        &c,
        None,
        json!({"Image": "busybox:latest", "Env": ["constraint:node==n3"]}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(node_of(&c, a["Id"].as_str().unwrap()).await, "n3");
    let (s, a) = create(
        &c,
        None,
        json!({"Image": "busybox:latest", "Labels": {"com.docker.swarm.constraints": "[\"storage!=disk\"]"}}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(node_of(&c, a["Id"].as_str().unwrap()).await, "n1");

    // Nothing satisfies: a 4xx that lists the conditions; nothing is created.
    let before: usize = (0..3).map(|i| c.fleet.engine(i).container_count()).sum();
    let (s, a) = create(
        &c,
        None,
        json!({"Image": "busybox:latest", "Env": ["constraint:storage==tape"]}),
    )
    .await;
    assert_eq!(s, 422, "{a}");
    let msg = a["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Unable to find a node that satisfies the following conditions"),
        "{msg}"
    );
    assert!(msg.contains("storage==tape"), "{msg}");
    // A malformed expression is a 400 naming it.
    for bad in [
        "constraint:==x",
        "constraint:storage==/[/",
        "constraint:storage<>ssd",
    ] {
        let (s, a) = create(&c, None, json!({"Image": "busybox:latest", "Env": [bad]})).await;
        assert_eq!(s, 400, "{bad}: {a}");
        let expr = bad.trim_start_matches("constraint:");
        assert!(a["message"].as_str().unwrap().contains(expr), "{bad}: {a}");
    }
    let (s, _) = c
        .request(Method::POST, "/containers/create", None)
        .await
        .pipe(|a| (a.status, ()));
    assert_eq!(s, 400);
    let after: usize = (0..3).map(|i| c.fleet.engine(i).container_count()).sum();
    assert_eq!(before, after, "refused creates changed nothing");

    // The scheduler's decisions and refusals show in the metrics, by reason.
    let metrics = String::from_utf8(c.get("/metrics").await.body.to_vec()).unwrap();
    for needle in [
        "shoal_scheduler_refusals_total{reason=\"constraint\"}",
        "shoal_scheduler_decision_seconds_count",
    ] {
        assert!(metrics.contains(needle), "no {needle} in metrics");
    }
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[actix_rt::test]
async fn five_hundred_concurrent_creates_with_room_for_two_hundred() {
    // 4 nodes x 800 MiB, 16 MiB each, no overcommit: exactly 50 a node.
    let mut cluster = SimCluster::new().placement(placement("spread", "0"));
    for i in 0..4 {
        cluster = cluster.engine(
            EngineConfig::new(format!("m{i}"))
                .memory(800 * MIB)
                .containers(0),
        );
    }
    let c = cluster.start().await;
    c.wait_healthy(4).await;
    let body = json!({"Image": "busybox:latest", "HostConfig": {"Memory": 16 * MIB}});
    let answers =
        futures_util::future::join_all((0..500).map(|_| create(&c, None, body.clone()))).await;
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for (s, a) in &answers {
        *by_status.entry(*s).or_default() += 1;
        if *s != 201 {
            assert_eq!(
                a["message"], "no resources available to schedule container",
                "{a}"
            );
        }
    }
    assert_eq!(by_status.get(&201), Some(&200), "{by_status:?}");
    assert_eq!(by_status.get(&422), Some(&300), "{by_status:?}");
    let counts: Vec<usize> = (0..4)
        .map(|i| c.fleet.engine(i).container_count())
        .collect();
    assert_eq!(counts, vec![50, 50, 50, 50]);
}

#[actix_rt::test]
async fn a_hundred_concurrent_creates_of_one_name_make_one_container() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("a").containers(0))
        .engine(EngineConfig::new("b").containers(0))
        .start()
        .await;
    c.wait_healthy(2).await;
    let body = json!({"Image": "busybox:latest"});
    let answers =
        futures_util::future::join_all((0..100).map(|_| create(&c, Some("only"), body.clone())))
            .await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let conflicts: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 409)
        .map(|(_, a)| a)
        .collect();
    assert_eq!((created, conflicts.len()), (1, 99));
    assert!(conflicts[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Conflict. The container name \"/only\" is already in use by container"));
    // The name stays taken cluster-wide once the container exists.
    c.wait_for("only listed", 5, |r| r.resolve_container("only").is_ok())
        .await;
    let (s, a) = create(&c, Some("only"), body.clone()).await;
    assert_eq!(s, 409, "{a}");
    let (s, a) = create(&c, Some("bad%20name!"), body).await;
    assert_eq!(s, 400, "{a}");
}

#[actix_rt::test]
async fn a_host_port_is_never_booked_twice_on_a_node() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("p1").containers(0))
        .engine(EngineConfig::new("p2").containers(0))
        .engine(EngineConfig::new("p3").containers(0))
        .start()
        .await;
    c.wait_healthy(3).await;
    let body = json!({
        "Image": "busybox:latest",
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}}
    });
    let answers =
        futures_util::future::join_all((0..20).map(|_| create(&c, None, body.clone()))).await;
    let ok: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, a)| a)
        .collect();
    assert_eq!(ok.len(), 3, "one per node");
    let mut nodes = Vec::new();
    for a in ok {
        nodes.push(node_of(&c, a["Id"].as_str().unwrap()).await);
    }
    nodes.sort();
    assert_eq!(nodes, ["p1", "p2", "p3"]);
    for (s, a) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*s, 422);
        assert!(a["message"].as_str().unwrap().contains("port 8080"), "{a}");
    }
    // Another port, or UDP on the same number, still fits.
    let udp = json!({"Image": "busybox:latest", "HostConfig": {"PortBindings": {"8080/udp": [{"HostPort": "8080"}]}}});
    assert_eq!(create(&c, None, udp).await.0, 201);
}

#[actix_rt::test]
async fn spread_spreads_binpack_packs_and_a_missing_image_is_pulled() {
    let spread = SimCluster::new()
        .engine(EngineConfig::new("s1").containers(0).memory(1024 * MIB))
        .engine(EngineConfig::new("s2").containers(0).memory(1024 * MIB))
        .engine(EngineConfig::new("s3").containers(0).memory(1024 * MIB))
        .start()
        .await;
    spread.wait_healthy(3).await;
    for _ in 0..6 {
        let (s, _) = create(
            &spread,
            None,
            json!({"Image": "busybox:latest", "HostConfig": {"Memory": 64 * MIB}}),
        )
        .await;
        assert_eq!(s, 201);
        spread.wait_for("reservation visible", 5, |_| true).await;
    }
    let counts: Vec<usize> = (0..3)
        .map(|i| spread.fleet.engine(i).container_count())
        .collect();
    assert_eq!(counts, vec![2, 2, 2]);

    let binpack = SimCluster::new()
        .placement(placement("binpack", "0.05"))
        .engine(EngineConfig::new("b1").containers(0).memory(1024 * MIB))
        .engine(EngineConfig::new("b2").containers(0).memory(1024 * MIB))
        .start()
        .await;
    binpack.wait_healthy(2).await;
    for _ in 0..4 {
        let (s, _) = create(
            &binpack,
            None,
            json!({"Image": "busybox:latest", "HostConfig": {"Memory": 64 * MIB}}),
        )
        .await;
        assert_eq!(s, 201);
    }
    let counts: Vec<usize> = (0..2)
        .map(|i| binpack.fleet.engine(i).container_count())
        .collect();
    assert!(counts == vec![4, 0] || counts == vec![0, 4], "{counts:?}");

    // redis:7 is on no engine: the chosen engine pulls it, then creates.
    let (s, a) = create(&binpack, None, json!({"Image": "redis:7"})).await;
    assert_eq!(s, 201, "{a}");
}

#[actix_rt::test]
async fn affinity_follows_containers_and_images() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("x").containers(0))
        .engine(EngineConfig::new("y").containers(0).image("redis:7"))
        .start()
        .await;
    c.wait_healthy(2).await;
    let (s, web) = create(
        &c,
        Some("web"),
        json!({"Image": "busybox:latest", "Env": ["constraint:node==x"]}),
    )
    .await;
    assert_eq!(s, 201);
    c.wait_for("web listed", 5, |r| r.resolve_container("web").is_ok())
        .await;
    let (s, a) = create(
        &c,
        None,
        json!({"Image": "busybox:latest", "Env": ["affinity:container==web"]}),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(node_of(&c, a["Id"].as_str().unwrap()).await, "x");
    let (s, a) = create(
        &c,
        None,
        json!({"Image": "busybox:latest", "Env": ["affinity:container!=web"]}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(node_of(&c, a["Id"].as_str().unwrap()).await, "y");
    let (s, a) = create(
        &c,
        None,
        json!({"Image": "busybox:latest", "Env": ["affinity:image==redis"]}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(node_of(&c, a["Id"].as_str().unwrap()).await, "y");
    // An image on one node only (as `docker commit` leaves it) pulls the container there,
    // unless that node cannot take it: then another node pulls the image.
    for _ in 0..3 {
        let (s, a) = create(&c, None, json!({"Image": "redis:7"})).await;
        assert_eq!(s, 201, "{a}");
        assert_eq!(node_of(&c, a["Id"].as_str().unwrap()).await, "y");
    }
    let (s, a) = create(
        &c,
        None,
        json!({"Image": "redis:7", "Env": ["constraint:node==x"]}),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(node_of(&c, a["Id"].as_str().unwrap()).await, "x");
    // Soft: used when it can be met, ignored when it cannot.
    let (s, a) = create(
        &c,
        None,
        json!({"Image": "busybox:latest", "Env": ["affinity:container==~nothing"]}),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    let _ = web;
}
