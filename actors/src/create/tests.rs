//! The create flow's sequence against fake engines behind the `Engine` trait (see
//! `fake`), making the very requests the NodeActor makes (`node::calls`), with a real
//! SchedulerActor.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use tokio::sync::mpsc;

use super::fake::{FakeEngine, FakeNodes, Step};
use super::*;
use crate::scheduler::{
    GetSchedulerInfo, NodeId, Offer, SchedulerActor, SchedulerConfig, UpdateOffer,
};

struct Cluster {
    scheduler: Addr<SchedulerActor>,
    resolved: mpsc::Receiver<Resolved>,
    flow: CreateFlow,
}

impl Cluster {
    async fn new(engines: &[(&'static str, Rc<FakeEngine>)], retries: u32) -> Cluster {
        let scheduler = SchedulerActor::new(SchedulerConfig::default().with_seed(7)).start();
        for (name, _) in engines {
            let offer = Offer::new(name).capacity(4, 8 << 30);
            scheduler.send(UpdateOffer(Arc::new(offer))).await.unwrap();
        }
        let nodes = FakeNodes(
            engines
                .iter()
                .map(|(n, e)| (NodeId::new(*n), e.clone()))
                .collect(),
        );
        let (tx, resolved) = mpsc::channel(16);
        let config = FlowConfig {
            retries,
            resolve: ResolveConfig {
                first_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                attempts: 10,
                absent_checks: 2,
            },
        };
        let flow = CreateFlow::new(scheduler.clone(), Rc::new(nodes), config).on_resolved(tx);
        Cluster {
            scheduler,
            resolved,
            flow,
        }
    }

    async fn pending(&self) -> u32 {
        let info = self.scheduler.send(GetSchedulerInfo).await.unwrap();
        info.nodes.iter().map(|n| n.pending).sum()
    }

    async fn next_resolution(&mut self) -> Resolved {
        tokio::time::timeout(Duration::from_secs(5), self.resolved.recv())
            .await
            .expect("a resolution within 5 s")
            .expect("the flow is alive")
    }
}

fn request(json: &str, name: Option<&str>) -> CreateRequest {
    CreateRequest::parse(json.as_bytes(), name).unwrap()
}

const BB: &str = r#"{"Image": "busybox"}"#;
/// Prefers node `bad` while it can be met, so the first try is deterministic.
const BB_BAD_FIRST: &str = r#"{"Image": "busybox", "Env": ["constraint:node==~bad"]}"#;

#[actix::test]
async fn pulls_the_missing_image_then_creates_again_on_the_same_node() {
    let n1 = FakeEngine::new("n1");
    let c = Cluster::new(&[("n1", n1.clone())], 2).await;
    let created = c
        .flow
        .run(request(r#"{"Image": "busybox-new"}"#, Some("web")))
        .await
        .unwrap();
    assert_eq!(created.node.as_str(), "n1");
    assert_eq!(created.id, format!("{:064x}", 1));
    let calls = n1.calls.borrow().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0], "POST /containers/create?name=web");
    assert!(calls[1].starts_with("POST /images/create?fromImage=busybox-new&tag=latest"));
    assert_eq!(calls[2], "POST /containers/create?name=web");
    assert_eq!(n1.names(), [Some("web".to_string())]);
}

#[actix::test]
async fn an_engine_5xx_is_tried_on_another_node_and_its_reservation_cancelled() {
    let bad = FakeEngine::new("bad").then(Step::Status(500));
    let good = FakeEngine::new("good");
    let c = Cluster::new(&[("bad", bad.clone()), ("good", good.clone())], 2).await;
    let created = c
        .flow
        .run(request(BB_BAD_FIRST, Some("web")))
        .await
        .unwrap();
    assert_eq!(created.node.as_str(), "good");
    assert_eq!((bad.creates(), good.creates()), (1, 1));
    assert!(bad.containers.borrow().is_empty());
    // The failed try's reservation is gone; the good one's is confirmed (its offer never
    // shows the container here, so it is still counted: one, not two).
    assert_eq!(c.pending().await, 1);
}

#[actix::test]
async fn a_refused_connection_is_tried_on_another_node() {
    let bad = FakeEngine::new("bad").then(Step::Refuse);
    let good = FakeEngine::new("good");
    let c = Cluster::new(&[("bad", bad.clone()), ("good", good.clone())], 2).await;
    let created = c.flow.run(request(BB_BAD_FIRST, None)).await.unwrap();
    assert_eq!(created.node.as_str(), "good");
    assert_eq!((bad.creates(), good.creates()), (1, 1));
}

#[actix::test]
async fn without_retries_or_with_a_4xx_the_failure_is_answered_and_cancelled() {
    let bad = FakeEngine::new("bad").then(Step::Status(500));
    let good = FakeEngine::new("good");
    let c = Cluster::new(&[("bad", bad.clone()), ("good", good.clone())], 0).await;
    let e = c
        .flow
        .run(request(BB_BAD_FIRST, Some("web")))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 500);
    assert_eq!((bad.creates(), good.creates()), (1, 0));
    assert_eq!(c.pending().await, 0);

    // A 4xx is the request's fault: never another node, whatever the retries.
    let bad = FakeEngine::new("bad").then(Step::Status(400));
    let good = FakeEngine::new("good");
    let c = Cluster::new(&[("bad", bad.clone()), ("good", good.clone())], 2).await;
    let e = c
        .flow
        .run(request(BB_BAD_FIRST, Some("web")))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 400);
    assert_eq!(
        e.to_string(),
        "engine bad answered /containers/create with status 400: engine broke"
    );
    assert_eq!((bad.creates(), good.creates()), (1, 0));
    assert_eq!(c.pending().await, 0);
    // The name is free again.
    c.flow.run(request(BB, Some("web"))).await.unwrap();
}

#[actix::test]
async fn retries_are_bounded_and_the_last_engine_failure_is_the_answer() {
    let engines: Vec<(&'static str, Rc<FakeEngine>)> = ["a", "b", "c"]
        .into_iter()
        .map(|n| {
            let e = FakeEngine::new(n);
            e.default.set(Step::Status(503));
            (n, e)
        })
        .collect();
    let c = Cluster::new(&engines, 1).await;
    let e = c.flow.run(request(BB, None)).await.unwrap_err();
    assert_eq!(e.status(), 503);
    let tried: usize = engines.iter().map(|(_, e)| e.creates()).sum();
    assert_eq!(tried, 2, "one try and one retry");
    assert_eq!(c.pending().await, 0);

    // One node and a retry to spare: every node is avoided, and the scheduler's refusal
    // is not what the client sees.
    let only = FakeEngine::new("only").then(Step::Refuse);
    let c = Cluster::new(&[("only", only.clone())], 2).await;
    let e = c.flow.run(request(BB, None)).await.unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert_eq!(e.status(), 502);
    assert_eq!(only.creates(), 1);
}

#[actix::test]
async fn objects_are_made_where_the_container_lands_and_only_when_missing() {
    let bad = FakeEngine::new("bad").then(Step::Refuse);
    let good = FakeEngine::new("good");
    good.networks.borrow_mut().push("shared".into());
    let c = Cluster::new(&[("bad", bad.clone()), ("good", good.clone())], 2).await;
    let body = r#"{"Image": "busybox", "Env": ["constraint:node==~bad"],
        "HostConfig": {"NetworkMode": "mynet", "Binds": ["vol1:/data"]},
        "NetworkingConfig": {"EndpointsConfig": {"mynet": {}, "shared": {}}}}"#;
    let created = c.flow.run(request(body, None)).await.unwrap();
    assert_eq!(created.node.as_str(), "good");
    // The first try made them on `bad` before its create failed; the second try makes
    // them again where the container lands, and leaves `shared` (it exists) alone.
    assert_eq!(*bad.networks.borrow(), ["mynet"]);
    assert_eq!(*bad.volumes.borrow(), ["vol1"]);
    assert_eq!(*good.networks.borrow(), ["shared", "mynet"]);
    assert_eq!(*good.volumes.borrow(), ["vol1"]);

    // Without failures: made on the node the container lands on, and only there.
    let n1 = FakeEngine::new("n1");
    let n2 = FakeEngine::new("n2");
    let c = Cluster::new(&[("n1", n1.clone()), ("n2", n2.clone())], 2).await;
    let body = r#"{"Image": "busybox", "Env": ["constraint:node==n2"],
        "HostConfig": {"NetworkMode": "net2", "Mounts": [{"Type": "volume", "Source": "v2", "Target": "/v"}]}}"#;
    c.flow.run(request(body, None)).await.unwrap();
    assert_eq!(*n2.networks.borrow(), ["net2"]);
    assert_eq!(*n2.volumes.borrow(), ["v2"]);
    assert!(n1.networks.borrow().is_empty() && n1.volumes.borrow().is_empty());
    let calls = n2.calls.borrow().clone();
    assert_eq!(
        calls[..2],
        [
            "POST /networks/create".to_string(),
            "POST /volumes/create".to_string()
        ]
    );
}

#[actix::test]
async fn a_silent_named_create_is_not_retried_its_name_stays_booked_and_the_orphan_is_removed() {
    let before = crate::metrics::create_resolutions("removed");
    let frozen = FakeEngine::new("frozen").then(Step::SilentCreated);
    frozen.silent_lists.set(3);
    let other = FakeEngine::new("other");
    let mut c = Cluster::new(&[("frozen", frozen.clone()), ("other", other.clone())], 2).await;
    let body = r#"{"Image": "busybox", "Env": ["constraint:node==~frozen"]}"#;
    let e = c.flow.run(request(body, Some("web"))).await.unwrap_err();
    assert!(e.to_string().contains("did not answer"), "{e}");
    assert_eq!(e.status(), 502);
    // Not tried elsewhere: that would need the name its silent twin may hold.
    assert_eq!((frozen.creates(), other.creates()), (1, 0));
    assert_eq!(frozen.names(), [Some("web".to_string())]);
    // Until resolved, the name is booked: no second `web` anywhere.
    let e = c.flow.run(request(BB, Some("web"))).await.unwrap_err();
    assert_eq!(e.status(), 409, "{e}");
    assert_eq!(other.creates(), 0);

    let done = c.next_resolution().await;
    assert_eq!(done.node.as_str(), "frozen");
    assert!(
        matches!(done.resolution, Resolution::Removed { .. }),
        "{done:?}"
    );
    assert!(
        frozen.containers.borrow().is_empty(),
        "the orphan is removed"
    );
    assert!(frozen
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("DELETE /containers/")));
    assert!(crate::metrics::create_resolutions("removed") > before);
    // The name is free again.
    assert_eq!(c.pending().await, 0);
    c.flow.run(request(BB, Some("web"))).await.unwrap();
}

#[actix::test]
async fn a_silent_unnamed_create_is_retried_elsewhere_and_its_orphan_removed() {
    let frozen = FakeEngine::new("bad").then(Step::SilentCreated);
    let good = FakeEngine::new("good");
    let mut c = Cluster::new(&[("bad", frozen.clone()), ("good", good.clone())], 2).await;
    let created = c.flow.run(request(BB_BAD_FIRST, None)).await.unwrap();
    assert_eq!(created.node.as_str(), "good");
    let done = c.next_resolution().await;
    assert!(
        matches!(done.resolution, Resolution::Removed { .. }),
        "{done:?}"
    );
    assert!(frozen.containers.borrow().is_empty());
    assert_eq!(good.containers.borrow().len(), 1);
}

/// A connection that broke after the create was sent (the engine was killed mid-call)
/// may have made the container: settled as a silent create, not tried elsewhere when named.
#[actix::test]
async fn a_create_cut_off_mid_call_is_settled_as_a_silent_one() {
    let killed = FakeEngine::new("bad").then(Step::CutOffCreated);
    let other = FakeEngine::new("other");
    let mut c = Cluster::new(&[("bad", killed.clone()), ("other", other.clone())], 2).await;
    let e = c
        .flow
        .run(request(BB_BAD_FIRST, Some("web")))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 502, "{e}");
    assert_eq!((killed.creates(), other.creates()), (1, 0));
    let done = c.next_resolution().await;
    assert!(
        matches!(done.resolution, Resolution::Removed { .. }),
        "{done:?}"
    );
    assert!(
        killed.containers.borrow().is_empty(),
        "the orphan is removed"
    );
    assert_eq!(c.pending().await, 0, "the name is free again");
}

#[actix::test]
async fn a_silent_create_that_never_landed_is_absent_and_releases_its_name() {
    let frozen = FakeEngine::new("frozen").then(Step::SilentNothing);
    let mut c = Cluster::new(&[("frozen", frozen.clone())], 2).await;
    let e = c.flow.run(request(BB, Some("db"))).await.unwrap_err();
    assert_eq!(e.status(), 502);
    let done = c.next_resolution().await;
    assert_eq!(done.resolution, Resolution::Absent);
    // Asked twice before concluding: a thawed engine may read the create late.
    let lists = frozen
        .calls
        .borrow()
        .iter()
        .filter(|c| c.starts_with("GET"))
        .count();
    assert_eq!(lists, 2);
    assert_eq!(c.pending().await, 0);
    c.flow.run(request(BB, Some("db"))).await.unwrap();
}

#[actix::test]
async fn a_silent_create_with_no_waiting_caller_is_adopted() {
    let frozen = FakeEngine::new("frozen").then(Step::SilentCreated);
    let other = FakeEngine::new("other");
    let mut c = Cluster::new(&[("frozen", frozen.clone()), ("other", other.clone())], 2).await;
    let body = r#"{"Image": "busybox", "Env": ["constraint:node==~frozen"]}"#;
    let e = c
        .flow
        .run(request(body, None).adopt_if_landed())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 502);
    // Adopting rules out a second try: it could leave two of one container.
    assert_eq!(other.creates(), 0);
    let done = c.next_resolution().await;
    let Resolution::Adopted { container_id } = done.resolution else {
        panic!("{done:?}");
    };
    assert_eq!(frozen.containers.borrow()[0].id, container_id);
}

#[actix::test]
async fn an_engine_silent_for_good_leaves_the_create_unresolved_and_releases_it() {
    let frozen = FakeEngine::new("frozen").then(Step::SilentCreated);
    frozen.silent_lists.set(1000);
    let mut c = Cluster::new(&[("frozen", frozen.clone())], 2).await;
    c.flow.run(request(BB, Some("x1"))).await.unwrap_err();
    let done = c.next_resolution().await;
    assert_eq!(done.resolution, Resolution::Unresolved);
    let lists = frozen
        .calls
        .borrow()
        .iter()
        .filter(|c| c.starts_with("GET"))
        .count();
    assert_eq!(lists, 10, "bounded by attempts");
    assert_eq!(c.pending().await, 0);
}
