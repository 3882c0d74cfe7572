//! Table-driven tests of the whole placer (filters, strategies, soft expressions,
//! reservations, messages) and actor tests of the concurrency guarantees.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::node::Health;

const GB: u64 = 1 << 30;

fn body(v: serde_json::Value) -> bollard_stubs::models::ContainerCreateBody {
    serde_json::from_value(v).unwrap()
}

fn req(env: &[&str]) -> PlacementRequest {
    PlacementRequest::from_create(&body(json!({ "Env": env })), None).unwrap()
}

fn reqj(v: serde_json::Value, name: Option<&str>) -> PlacementRequest {
    PlacementRequest::from_create(&body(v), name).unwrap()
}

fn node(name: &str) -> Offer {
    Offer::new(name).capacity(4, 8 * GB)
}

fn placer(strategy: Strategy, filters: &[FilterKind], nodes: Vec<Offer>) -> Placer {
    let config = SchedulerConfig::default()
        .with_strategy(strategy)
        .with_filters(filters)
        .with_seed(42);
    let mut p = Placer::new(config);
    for n in nodes {
        p.update_offer(Arc::new(n));
    }
    p
}

fn all(nodes: Vec<Offer>) -> Placer {
    placer(Strategy::Spread, &FilterKind::ALL, nodes)
}

fn labelled() -> Vec<Offer> {
    let mut n1 = node("n1")
        .label("storage", "ssd")
        .label("zone", "eu-west-1");
    Arc::make_mut(&mut n1.facts).kernel_version = "5.15.0-generic".into();
    Arc::make_mut(&mut n1.facts).os_type = "linux".into();
    Arc::make_mut(&mut n1.facts).storage_driver = "overlay2".into();
    Arc::make_mut(&mut n1.facts).operating_system = "Ubuntu 22.04".into();
    let mut n2 = node("n2")
        .label("storage", "hdd")
        .label("zone", "us-east-1");
    Arc::make_mut(&mut n2.facts).kernel_version = "6.1.0".into();
    Arc::make_mut(&mut n2.facts).os_type = "linux".into();
    Arc::make_mut(&mut n2.facts).storage_driver = "btrfs".into();
    n2.engine_id = "ENGINE-TWO".into();
    let mut n3 = node("n3");
    Arc::make_mut(&mut n3.facts).os_type = "windows".into();
    vec![n1, n2, n3]
}

/// Runs `cases` of (env, soft enforced, expected candidates).
fn check(p: &mut Placer, cases: &[(&[&str], bool, &[&str])]) {
    for (env, soft, want) in cases {
        let got = p.candidates(&req(env), *soft).unwrap_or_default();
        assert_eq!(got, *want, "env {env:?} soft {soft}");
    }
}

#[test]
fn constraint_filter() {
    let mut p = placer(Strategy::Spread, &[FilterKind::Constraint], labelled());
    check(
        &mut p,
        &[
            (&[], true, &["n1", "n2", "n3"]),
            (&["constraint:storage==ssd"], true, &["n1"]),
            (&["constraint:storage==SSD"], true, &["n1"]),
            (&["constraint:storage!=ssd"], true, &["n2", "n3"]),
            (&["constraint:zone==*-1"], true, &["n1", "n2"]),
            (&["constraint:zone==eu-*"], true, &["n1"]),
            (&["constraint:zone!=eu-*"], true, &["n2", "n3"]),
            (&["constraint:zone==/^us/"], true, &["n2"]),
            (&["constraint:zone==/east/"], true, &["n2"]),
            (&["constraint:zone==/.*/"], true, &["n1", "n2", "n3"]),
            (&["constraint:node==n2"], true, &["n2"]),
            (&["constraint:node==engine-two"], true, &["n2"]),
            (&["constraint:node!=n2"], true, &["n1", "n3"]),
            (&["constraint:node==n*"], true, &["n1", "n2", "n3"]),
            (&["constraint:storagedriver==overlay2"], true, &["n1"]),
            (&["constraint:kernelversion==5.*"], true, &["n1"]),
            (&["constraint:operatingsystem==/ubuntu/"], true, &["n1"]),
            (
                &["constraint:ostype==linux", "constraint:storage!=hdd"],
                true,
                &["n1"],
            ),
            (&["constraint:storage==nvme"], true, &[]),
            (&["constraint:nosuchlabel==x"], true, &[]),
            (&["constraint:nosuchlabel!=x"], true, &["n1", "n2", "n3"]),
            // soft: enforced on the first pass, skipped on the second
            (&["constraint:storage==~ssd"], true, &["n1"]),
            (&["constraint:storage==~ssd"], false, &["n1", "n2", "n3"]),
            (&["constraint:storage!=~ssd"], true, &["n2", "n3"]),
        ],
    );
}

#[test]
fn soft_constraints_fall_back() {
    let mut p = all(labelled());
    let place = |p: &mut Placer, env: &[&str]| p.choose(&req(env)).map(|n| n.to_string());
    assert_eq!(place(&mut p, &["constraint:storage==~ssd"]).unwrap(), "n1");
    // Unmeetable soft: ignored, spread picks the first by name.
    assert_eq!(place(&mut p, &["constraint:storage==~nvme"]).unwrap(), "n1");
    assert_eq!(
        place(
            &mut p,
            &["constraint:storage==~nvme", "constraint:zone==us-*"]
        )
        .unwrap(),
        "n2"
    );
    // Hard stays hard.
    let e = place(&mut p, &["constraint:storage==nvme", "constraint:zone==~x"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unable to find a node that satisfies the following conditions [constraint:storage==nvme]"
    );
    assert_eq!(e.status(), 422);
    // Soft affinity too.
    assert_eq!(place(&mut p, &["affinity:image==~nothing"]).unwrap(), "n1");
}

#[test]
fn affinity_filter() {
    let nodes = vec![
        node("n1")
            .container(
                ContainerInfo::new("aaaaaaaaaaaa1111", "web")
                    .image("nginx:1", "sha256:img1")
                    .label("tier", "front"),
            )
            .image("sha256:0123456789abcdef", &["redis:7", "redis:latest"]),
        node("n2")
            .container(ContainerInfo::new("bbbbbbbbbbbb2222", "db").label("tier", "back"))
            .image(
                "sha256:fedcba9876543210",
                &["registry.local:5000/team/app:v2"],
            ),
        node("n3"),
    ];
    let mut p = placer(Strategy::Spread, &[FilterKind::Affinity], nodes);
    check(
        &mut p,
        &[
            (&["affinity:container==web"], true, &["n1"]),
            (&["affinity:container==WEB"], true, &["n1"]),
            (&["affinity:container!=web"], true, &["n2", "n3"]),
            (&["affinity:container==aaaaaaaaaaaa1111"], true, &["n1"]),
            (&["affinity:container==aaaaaaaaaaaa"], true, &["n1"]),
            (&["affinity:container==/^d/"], true, &["n2"]),
            (&["affinity:container==*"], true, &["n1", "n2"]),
            (&["affinity:image==redis"], true, &["n1"]),
            (&["affinity:image==redis:7"], true, &["n1"]),
            (&["affinity:image==sha256:0123456789abcdef"], true, &["n1"]),
            (&["affinity:image==0123456789ab"], true, &["n1"]),
            (
                &["affinity:image==registry.local:5000/team/app"],
                true,
                &["n2"],
            ),
            (&["affinity:image!=redis*"], true, &["n2", "n3"]),
            (&["affinity:tier==front"], true, &["n1"]),
            (&["affinity:tier!=front"], true, &["n2", "n3"]),
            (&["affinity:tier==*"], true, &["n1", "n2"]),
            (&["affinity:nolabel==x"], true, &[]),
            (&["affinity:container==~nope"], false, &["n1", "n2", "n3"]),
        ],
    );
}

#[test]
fn whitelist_filter() {
    let mut p = placer(Strategy::Spread, &[FilterKind::Whitelist], labelled());
    check(
        &mut p,
        &[
            (&["whitelist:node==n1|n3"], true, &["n1", "n3"]),
            (&["whitelist:node==n2"], true, &["n2"]),
            (&["whitelist:node!=n2"], true, &["n1", "n3"]),
            (&["whitelist:node==x|y"], true, &[]),
            (&["whitelist:node==n*|x"], true, &["n1", "n2", "n3"]),
        ],
    );
}

#[test]
fn health_filter() {
    let nodes = vec![
        node("n1").health(Health::Unhealthy),
        node("n2"),
        node("n3").health(Health::Pending),
    ];
    let mut p = placer(Strategy::Spread, &[FilterKind::Health], nodes);
    check(&mut p, &[(&[], true, &["n2"])]);
    let mut p = placer(
        Strategy::Spread,
        &[FilterKind::Health],
        vec![node("n1").health(Health::Unhealthy)],
    );
    let e = p.choose(&req(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unable to find a node that satisfies the following conditions [healthy node]"
    );
    // With the health filter off, an unhealthy node is used only when it must be.
    let mut p = placer(
        Strategy::Spread,
        &[],
        vec![
            node("a").health(Health::Unhealthy),
            node("b").reserved(3_000_000_000, 0),
        ],
    );
    assert_eq!(p.choose(&req(&[])).unwrap().as_str(), "b");
}

#[test]
fn port_filter() {
    let nodes = vec![
        node("n1").port(HostPort::tcp(80)).port(HostPort::udp(53)),
        node("n2").port(HostPort::tcp(8080)),
        node("n3"),
    ];
    let mut p = placer(Strategy::Spread, &[FilterKind::Port], nodes);
    let bridge = |host: &str, proto: &str| {
        reqj(
            json!({"HostConfig": {"PortBindings": {format!("1/{proto}"): [{"HostPort": host}]}}}),
            None,
        )
    };
    let host = |port: &str| {
        reqj(
            json!({"ExposedPorts": {port: {}}, "HostConfig": {"NetworkMode": "host"}}),
            None,
        )
    };
    let cases: Vec<(PlacementRequest, &[&str])> = vec![
        (bridge("80", "tcp"), &["n2", "n3"]),
        (bridge("80", "udp"), &["n1", "n2", "n3"]),
        (bridge("53", "udp"), &["n2", "n3"]),
        (bridge("8080", "tcp"), &["n1", "n3"]),
        (bridge("", "tcp"), &["n1", "n2", "n3"]),
        (host("80/tcp"), &["n2", "n3"]),
        (host("53/udp"), &["n2", "n3"]),
        (host("9999/tcp"), &["n1", "n2", "n3"]),
    ];
    for (i, (r, want)) in cases.iter().enumerate() {
        assert_eq!(p.candidates(r, true).unwrap(), *want, "case {i}");
    }
    // Messages as classic Swarm.
    let mut p = placer(
        Strategy::Spread,
        &[FilterKind::Port],
        vec![node("n1").port(HostPort::tcp(80))],
    );
    let e = p.choose(&bridge("80", "tcp")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unable to find a node that satisfies the following conditions [port 80 (Bridge mode)]"
    );
    let e = p.choose(&host("80/tcp")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unable to find a node that satisfies the following conditions [port 80/tcp (Host mode)]"
    );
}

#[test]
fn port_reservations_are_never_double_booked() {
    let mut p = all(vec![node("n1"), node("n2")]);
    let r = reqj(
        json!({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}}),
        None,
    );
    let a = p.place(&r).unwrap();
    let b = p.place(&r).unwrap();
    assert_ne!(a.node, b.node);
    assert!(matches!(
        p.place(&r),
        Err(ScheduleError::Unsatisfiable { .. })
    ));
    assert!(p.cancel(&a.reservation));
    assert_eq!(p.place(&r).unwrap().node, a.node);
}

#[test]
fn containerslots_filter() {
    let nodes = vec![
        node("n1")
            .label("containerslots", "1")
            .container(ContainerInfo::new("c1", "x")),
        node("n2")
            .label("containerslots", "2")
            .container(ContainerInfo::new("c2", "y")),
        node("n3").label("containerslots", "bogus"),
    ];
    let mut p = placer(Strategy::Spread, &[FilterKind::ContainerSlots], nodes);
    check(&mut p, &[(&[], true, &["n2", "n3"])]);
    let only_n2 = req(&["constraint:node==n2"]);
    let mut p2 = placer(
        Strategy::Spread,
        &[FilterKind::ContainerSlots, FilterKind::Constraint],
        vec![node("n2")
            .label("containerslots", "2")
            .container(ContainerInfo::new("c2", "y"))],
    );
    let first = p2.place(&only_n2).unwrap();
    assert_eq!(first.node.as_str(), "n2");
    let e = p2.place(&only_n2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unable to find a node that satisfies the following conditions [available container slots, constraint:node==n2]"
    );
    let _ = p.place(&req(&[])).unwrap();
}

#[test]
fn dependency_filter() {
    let nodes = vec![
        node("n1").container(ContainerInfo::new("1111111111112222", "data")),
        node("n2").container(ContainerInfo::new("3333333333334444", "db")),
        node("n3"),
    ];
    let mut p = placer(Strategy::Spread, &[FilterKind::Dependency], nodes);
    let cases: Vec<(serde_json::Value, &[&str])> = vec![
        (json!({"VolumesFrom": ["data:ro"]}), &["n1"]),
        (json!({"Links": ["/db:database"]}), &["n2"]),
        (json!({"NetworkMode": "container:db"}), &["n2"]),
        (json!({"NetworkMode": "container:333333333333"}), &["n2"]),
        (json!({"VolumesFrom": ["data"], "Links": ["db:db"]}), &[]),
        (json!({"Links": ["ghost:g"]}), &[]),
    ];
    for (hc, want) in cases {
        let r = reqj(json!({ "HostConfig": hc }), None);
        assert_eq!(p.candidates(&r, true).unwrap_or_default(), want, "{hc}");
    }
    let r = reqj(
        json!({"HostConfig": {"VolumesFrom": ["data"], "Links": ["db:db"]}}),
        None,
    );
    let split = p.choose(&r).unwrap_err();
    assert_eq!(
        split.to_string(),
        "cannot place: --volumes-from data is on n1, --link db:db is on n2; a container can only use containers of one node"
    );
    assert_eq!((split.status(), split.reason()), (422, "dependency"));
    // A missing dependency is not a split: the conditions are listed as classic Swarm did.
    let r = reqj(
        json!({"HostConfig": {"VolumesFrom": ["data"], "Links": ["ghost:g"]}}),
        None,
    );
    assert_eq!(
        p.choose(&r).unwrap_err().to_string(),
        "Unable to find a node that satisfies the following conditions [--volumes-from=data, --link=ghost:g]"
    );
    // A container reserved but not yet in an offer is a dependency target too.
    let db2 = p.place(&reqj(json!({"Env": []}), Some("db2"))).unwrap();
    let r = reqj(json!({"HostConfig": {"Links": ["db2:x"]}}), None);
    assert_eq!(p.choose(&r).unwrap(), db2.node);
}

#[test]
fn node_local_objects_pull_placement() {
    let nodes = vec![
        node("n1")
            .network("appnet", "net111", Scope::Local)
            .volume("data"),
        node("n2").network("overlay1", "net222", Scope::Global),
        node("n3")
            .network("overlay1", "net222", Scope::Global)
            .volume("shared"),
        node("n4").volume("shared"),
    ];
    // Enabled filters do not matter: the rule is always on.
    let mut p = placer(Strategy::Spread, &[], nodes);
    let cases: Vec<(serde_json::Value, &[&str])> = vec![
        (json!({"HostConfig": {"NetworkMode": "appnet"}}), &["n1"]),
        (
            json!({"NetworkingConfig": {"EndpointsConfig": {"appnet": {}}}}),
            &["n1"],
        ),
        (
            json!({"HostConfig": {"NetworkMode": "overlay1"}}),
            &["n1", "n2", "n3", "n4"],
        ),
        (
            json!({"HostConfig": {"NetworkMode": "brandnew"}}),
            &["n1", "n2", "n3", "n4"],
        ),
        (json!({"HostConfig": {"Binds": ["data:/d"]}}), &["n1"]),
        (
            json!({"HostConfig": {"Binds": ["/data:/d"]}}),
            &["n1", "n2", "n3", "n4"],
        ),
        (
            json!({"HostConfig": {"Mounts": [{"Type": "volume", "Source": "shared", "Target": "/s"}]}}),
            &["n3", "n4"],
        ),
        (
            json!({"HostConfig": {"Binds": ["data:/d", "shared:/s"]}}),
            &[],
        ),
    ];
    for (v, want) in cases {
        assert_eq!(
            p.candidates(&reqj(v.clone(), None), true)
                .unwrap_or_default(),
            want,
            "{v}"
        );
    }
    let e = p
        .choose(&reqj(
            json!({"HostConfig": {"Binds": ["data:/d", "shared:/s"]}}),
            None,
        ))
        .unwrap_err();
    assert_eq!(e.to_string(), "Unable to find a node that satisfies the following conditions [volume data, volume shared]");
}

#[test]
fn strategies_and_ties() {
    let mk = || {
        vec![
            node("c").reserved(2_000_000_000, 0),
            node("a")
                .reserved(0, 0)
                .container(ContainerInfo::new("x1", "x1")),
            node("b"),
        ]
    };
    let one_cpu = reqj(json!({"HostConfig": {"NanoCpus": 1_000_000_000_i64}}), None);
    // (strategy, request, expected)
    let cases: Vec<(Strategy, PlacementRequest, &str)> = vec![
        // spread: lowest weight, then fewer containers (b has none), then name
        (Strategy::Spread, one_cpu.clone(), "b"),
        (Strategy::Spread, req(&[]), "b"),
        // binpack: highest weight (c is half full)
        (Strategy::Binpack, one_cpu.clone(), "c"),
        (Strategy::Binpack, req(&["constraint:node!=c"]), "a"),
    ];
    for (i, (s, r, want)) in cases.into_iter().enumerate() {
        let mut p = placer(s, &FilterKind::ALL, mk());
        assert_eq!(p.choose(&r).unwrap().as_str(), want, "case {i}");
    }
    // Full tie: name order, for both.
    for s in [Strategy::Spread, Strategy::Binpack] {
        let mut p = placer(s, &FilterKind::ALL, vec![node("z"), node("m"), node("q")]);
        assert_eq!(p.choose(&req(&[])).unwrap().as_str(), "m");
    }
    // Spread spreads, binpack fills.
    let two_gb = reqj(json!({"HostConfig": {"Memory": 2 * GB}}), None);
    let mut p = placer(
        Strategy::Spread,
        &FilterKind::ALL,
        vec![node("a"), node("b")],
    );
    let got: Vec<String> = (0..4)
        .map(|_| p.place(&two_gb).unwrap().node.to_string())
        .collect();
    assert_eq!(got, ["a", "b", "a", "b"]);
    let mut p = placer(
        Strategy::Binpack,
        &FilterKind::ALL,
        vec![node("a"), node("b")],
    );
    let got: Vec<String> = (0..5)
        .map(|_| p.place(&two_gb).unwrap().node.to_string())
        .collect();
    // 8 GB + 5% overcommit holds four 2 GB containers.
    assert_eq!(got, ["a", "a", "a", "a", "b"]);
}

#[test]
fn resources_and_overcommit() {
    let r = |mem: u64| reqj(json!({"HostConfig": {"Memory": mem}}), None);
    let mut p = placer(Strategy::Spread, &FilterKind::ALL, vec![node("a")]);
    assert!(p.choose(&r(8 * GB + GB / 4)).is_ok()); // within 5% overcommit
    assert_eq!(
        p.choose(&r(9 * GB)).unwrap_err(),
        ScheduleError::NoResources
    );
    assert_eq!(
        p.choose(&r(9 * GB)).unwrap_err().to_string(),
        "no resources available to schedule container"
    );
    let cfg = SchedulerConfig::default().with_overcommit(0.0);
    let mut p = Placer::new(cfg);
    p.update_offer(Arc::new(node("a").reserved(0, 7 * GB)));
    assert!(p.choose(&r(GB)).is_ok());
    assert_eq!(
        p.choose(&r(GB + 1)).unwrap_err(),
        ScheduleError::NoResources
    );
    // CpuShares reserves nothing; cpuset does.
    let shares = reqj(json!({"HostConfig": {"CpuShares": 100000}}), None);
    assert_eq!(shares.cpu, 0);
    let cpuset = reqj(json!({"HostConfig": {"CpusetCpus": "0-4"}}), None);
    assert_eq!(p.choose(&cpuset).unwrap_err(), ScheduleError::NoResources);
    // No nodes at all.
    let mut empty = Placer::new(SchedulerConfig::default());
    assert_eq!(empty.choose(&req(&[])).unwrap_err(), ScheduleError::NoNodes);
}

#[test]
fn names_are_cluster_unique() {
    let mut p = all(vec![
        node("n1").container(ContainerInfo::new("abc", "web")),
        node("n2"),
    ]);
    let e = p.place(&reqj(json!({}), Some("web"))).unwrap_err();
    assert_eq!(e.status(), 409);
    assert_eq!(
        e.to_string(),
        "Conflict. The container name \"/web\" is already in use by container \"abc\". You have to remove (or rename) that container to be able to reuse that name."
    );
    let a = p.place(&reqj(json!({}), Some("api"))).unwrap();
    let e = p.place(&reqj(json!({}), Some("/api"))).unwrap_err();
    assert_eq!(
        e,
        ScheduleError::NameConflict {
            name: "api".into(),
            id: a.reservation.to_string()
        }
    );
    assert!(p.cancel(&a.reservation));
    assert!(!p.cancel(&a.reservation));
    p.place(&reqj(json!({}), Some("api"))).unwrap();
}

#[test]
fn reservations_settle_on_offers() {
    let r = reqj(json!({"HostConfig": {"Memory": 2 * GB}}), Some("job"));
    let mut p = all(vec![node("n1")]);
    let pl = p.place(&r).unwrap();
    assert_eq!(p.usage()[0].reserved_memory, 2 * GB);
    assert_eq!(p.usage()[0].pending, 1);
    // An offer without the container keeps the reservation.
    p.update_offer(Arc::new(node("n1")));
    assert_eq!(p.usage()[0].reserved_memory, 2 * GB);
    // Confirmed, then the offer shows it: the offer now counts it, once.
    assert!(p.confirm(&pl.reservation, "cid1"));
    p.update_offer(Arc::new(
        node("n1")
            .reserved(0, 2 * GB)
            .container(ContainerInfo::new("cid1", "job")),
    ));
    assert_eq!(p.pending(), 0);
    assert_eq!(p.usage()[0].reserved_memory, 2 * GB);
    assert!(p.place(&r).is_err()); // name now held by the real container

    // Confirmation through the swarm id label, without ConfirmPlacement.
    let r2 = reqj(json!({}), Some("other"));
    let pl = p.place(&r2).unwrap();
    let c =
        ContainerInfo::new("cid2", "other").label(request::LABEL_SWARM_ID, pl.reservation.as_str());
    p.update_offer(Arc::new(node("n1").container(c)));
    assert_eq!(p.pending(), 0);

    // Confirm after the offer already showed it: dropped at once.
    let pl = p.place(&reqj(json!({}), Some("late"))).unwrap();
    p.update_offer(Arc::new(
        node("n1").container(ContainerInfo::new("cid3", "late")),
    ));
    assert_eq!(p.pending(), 1);
    assert!(p.confirm(&pl.reservation, "cid3"));
    assert_eq!(p.pending(), 0);

    // Removing a node drops its reservations.
    let mut p = all(vec![node("n1"), node("n2")]);
    p.place(&req(&[])).unwrap();
    p.remove_node(&NodeId::from("n1"));
    assert_eq!(p.pending(), 0);
    assert_eq!(p.node_count(), 1);
    assert_eq!(p.choose(&req(&[])).unwrap().as_str(), "n2");
}

/// A node's successive offers share the containers that did not change, as a NodeActor's
/// do: a reservation settles on the offer where its container first shows, whatever the
/// unchanged containers before it, and a confirm looks at the offer it arrives to.
#[test]
fn reservations_settle_on_offers_that_share_containers() {
    let mut p = all(vec![node("n1")]);
    let kept = Arc::new(ContainerInfo::new("cid0", "kept"));
    let offer = |extra: &[ContainerInfo]| {
        let mut o = node("n1");
        o.containers.push(kept.clone());
        o.containers.extend(extra.iter().cloned().map(Arc::new));
        Arc::new(o)
    };
    p.update_offer(offer(&[]));
    let a = p.place(&reqj(json!({}), Some("a"))).unwrap();
    let b = p.place(&reqj(json!({}), Some("b"))).unwrap();
    p.update_offer(offer(&[]));
    assert_eq!(p.pending(), 2);
    let ca = ContainerInfo::new("cida", "a").label(request::LABEL_SWARM_ID, a.reservation.as_str());
    let with_a = offer(&[ca]);
    p.update_offer(with_a.clone());
    assert_eq!(p.pending(), 1, "a's container came with a's label");
    // The next offer shares a's container and adds b's, known by ID only.
    let mut next = Offer::clone(&with_a);
    next.containers
        .push(Arc::new(ContainerInfo::new("cidb", "b")));
    let next = Arc::new(next);
    p.update_offer(next.clone());
    assert_eq!(
        p.pending(),
        1,
        "b's container has no label: b waits for its confirm"
    );
    p.update_offer(Arc::new(Offer::clone(&next)));
    assert_eq!(p.pending(), 1);
    assert!(p.confirm(&b.reservation, "cidb"));
    assert_eq!(p.pending(), 0);
}

#[test]
fn config_errors() {
    assert!(matches!(
        SchedulerConfig::parse("fast", &[], 0.05),
        Err(SchedulerConfigError::UnknownStrategy(_))
    ));
    assert!(
        matches!(SchedulerConfig::parse("random", &["port", "gpu"], 0.05), Err(SchedulerConfigError::UnknownFilter(f)) if f == "gpu")
    );
}

mod actor {
    use super::*;
    use actix::Actor;
    use futures_util::future::join_all;

    #[actix::test]
    async fn exactly_the_room_there_is() {
        // 10 nodes x 20 slots of 1 GB (no overcommit) = room for exactly 200.
        let cfg = SchedulerConfig::default().with_overcommit(0.0).with_seed(1);
        let addr = SchedulerActor::new(cfg).start();
        for i in 0..10 {
            addr.send(UpdateOffer(Arc::new(
                Offer::new(&format!("n{i:02}")).capacity(20, 20 * GB),
            )))
            .await
            .unwrap();
        }
        let r = reqj(json!({"HostConfig": {"Memory": GB}}), None);
        let results = join_all((0..500).map(|_| addr.send(Place(r.clone())))).await;
        let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        let refused: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().unwrap().as_ref().err())
            .collect();
        assert_eq!(ok, 200);
        assert_eq!(refused.len(), 300);
        assert!(refused
            .iter()
            .all(|e| **e == ScheduleError::NoResources && e.status() == 422));
        let info = addr.send(GetSchedulerInfo).await.unwrap();
        assert!(info
            .nodes
            .iter()
            .all(|n| n.reserved_memory == 20 * GB && n.pending == 20));
        assert_eq!(info.strategy, Strategy::Spread);
        assert_eq!(info.filters.len(), 7);
    }

    #[actix::test]
    async fn one_name_one_winner() {
        let addr = SchedulerActor::new(SchedulerConfig::default()).start();
        for i in 0..5 {
            addr.send(UpdateOffer(Arc::new(node(&format!("n{i}")))))
                .await
                .unwrap();
        }
        let r = reqj(json!({}), Some("web"));
        let results = join_all((0..100).map(|_| addr.send(Place(r.clone())))).await;
        let ok: Vec<&Placement> = results
            .iter()
            .filter_map(|r| r.as_ref().unwrap().as_ref().ok())
            .collect();
        assert_eq!(ok.len(), 1);
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Ok(Err(e @ ScheduleError::NameConflict { .. })) if e.status() == 409))
            .count();
        assert_eq!(conflicts, 99);
        // Cancel frees the name; confirm + offer keeps it taken.
        let pl = ok[0].clone();
        assert!(addr
            .send(CancelPlacement {
                reservation: pl.reservation.clone()
            })
            .await
            .unwrap());
        let pl = addr.send(Place(r.clone())).await.unwrap().unwrap();
        assert!(addr
            .send(ConfirmPlacement {
                reservation: pl.reservation.clone(),
                container_id: "c1".into()
            })
            .await
            .unwrap());
        addr.send(UpdateOffer(Arc::new(
            node(pl.node.as_str()).container(ContainerInfo::new("c1", "web")),
        )))
        .await
        .unwrap();
        let e = addr.send(Place(r)).await.unwrap().unwrap_err();
        assert!(e.to_string().contains("by container \"c1\""));
    }

    #[actix::test]
    async fn no_host_port_double_booked() {
        let addr = SchedulerActor::new(SchedulerConfig::default()).start();
        for i in 0..20 {
            addr.send(UpdateOffer(Arc::new(node(&format!("n{i}")))))
                .await
                .unwrap();
        }
        addr.send(RemoveNode(NodeId::from("n19"))).await.unwrap();
        let r = |p: u16| {
            reqj(
                json!({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": p.to_string()}]}}}),
                None,
            )
        };
        // 3 ports x 50 attempts on 19 nodes: exactly 19 per port.
        let results = join_all((0..150).map(|i| {
            let port = 8080 + (i % 3) as u16;
            let fut = addr.send(Place(r(port)));
            async move { (port, fut.await.unwrap()) }
        }))
        .await;
        let mut booked = std::collections::HashSet::new();
        for (port, res) in &results {
            if let Ok(pl) = res {
                assert!(
                    booked.insert((*port, pl.node.clone())),
                    "{port} twice on {}",
                    pl.node
                );
            } else {
                assert!(res
                    .as_ref()
                    .unwrap_err()
                    .to_string()
                    .contains(&format!("port {port} (Bridge mode)")));
            }
        }
        assert_eq!(booked.len(), 3 * 19);
    }
}

/// A node's later offers move its indexes: renamed, relabelled, added and removed
/// containers are found (or not) exactly as if the node had been indexed afresh.
#[test]
fn later_offers_of_a_node_reindex_what_changed() {
    let first =
        node("n1").container(ContainerInfo::new("a".repeat(64), "web").label("tier", "front"));
    let mut p = all(vec![first, node("n2")]);
    let chosen = |p: &mut Placer, env: &[&str]| p.choose(&req(env)).map(|n| n.as_str().to_string());
    assert_eq!(chosen(&mut p, &["affinity:container==web"]).unwrap(), "n1");

    let second = node("n1")
        .container(ContainerInfo::new("a".repeat(64), "web2").label("tier", "back"))
        .container(ContainerInfo::new("b".repeat(64), "db"));
    p.update_offer(Arc::new(second));
    assert!(
        chosen(&mut p, &["affinity:container==web"]).is_err(),
        "old name still indexed"
    );
    assert!(
        chosen(&mut p, &["affinity:tier==front"]).is_err(),
        "old label still indexed"
    );
    assert_eq!(chosen(&mut p, &["affinity:container==web2"]).unwrap(), "n1");
    assert_eq!(chosen(&mut p, &["affinity:tier==back"]).unwrap(), "n1");
    assert_eq!(chosen(&mut p, &["affinity:container==db"]).unwrap(), "n1");
    assert_eq!(
        chosen(
            &mut p,
            &[&format!("affinity:container=={}", &"b".repeat(12))]
        )
        .unwrap(),
        "n1"
    );

    let third = node("n1")
        .label("storage", "ssd")
        .container(ContainerInfo::new("a".repeat(64), "web2").label("tier", "back"));
    p.update_offer(Arc::new(third));
    assert!(
        chosen(&mut p, &["affinity:container==db"]).is_err(),
        "removed container still indexed"
    );
    assert_eq!(chosen(&mut p, &["constraint:storage==ssd"]).unwrap(), "n1");
    // A name freed by a removed container can be taken again.
    assert!(p.place(&reqj(serde_json::json!({}), Some("db"))).is_ok());
}

#[test]
fn avoided_nodes_are_never_chosen_and_are_not_a_condition() {
    let mut p = all(vec![node("n1"), node("n2"), node("n3")]);
    let mut r = req(&["constraint:node!=n3"]);
    r.avoid.insert(NodeId::new("n1"));
    assert_eq!(p.candidates(&r, true).unwrap(), ["n2"]);
    for _ in 0..5 {
        let placed = p.place(&r).unwrap();
        assert_eq!(placed.node.as_str(), "n2");
        p.cancel(&placed.reservation);
    }
    r.avoid.insert(NodeId::new("n2"));
    // The refusal names the client's conditions, never Shoal's avoid set.
    match p.place(&r).unwrap_err() {
        ScheduleError::Unsatisfiable { conditions, .. } => {
            assert_eq!(conditions, ["constraint:node!=n3"])
        }
        e => panic!("{e:?}"),
    }
    let mut r = req(&[]);
    r.avoid = ["n1", "n2", "n3"].into_iter().map(NodeId::new).collect();
    assert_eq!(p.place(&r).unwrap_err(), ScheduleError::NoNodes);
    // An unknown node in the set changes nothing.
    let mut r = req(&[]);
    r.avoid.insert(NodeId::new("gone"));
    assert_eq!(p.candidates(&r, true).unwrap(), ["n1", "n2", "n3"]);
}
