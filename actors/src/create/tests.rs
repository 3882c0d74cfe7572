//! The create flow's sequence against fake engines behind the `Engine` trait, making the
//! very requests the NodeActor makes (`node::calls`), with a real SchedulerActor.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use tokio::sync::mpsc;

use super::*;
use crate::engine::{Engine, EngineAddr, EngineError, EngineStream, PostRequest};
use crate::node::calls;
use crate::scheduler::{
    GetSchedulerInfo, NodeId, Offer, SchedulerActor, SchedulerConfig, UpdateOffer, LABEL_SWARM_ID,
};

/// What the fake engine does with its next `POST /containers/create`.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Creates (404 "No such image" when the image is missing).
    Create,
    /// Connection refused: nothing reached the engine.
    Refuse,
    /// Answers this status without creating.
    Status(u16),
    /// Creates, but the answer never comes (a frozen engine read it).
    SilentCreated,
    /// Neither answers nor creates.
    SilentNothing,
}

struct Container {
    id: String,
    swarm_id: String,
    name: Option<String>,
}

struct FakeEngine {
    addr: EngineAddr,
    script: RefCell<VecDeque<Step>>,
    /// Used once the script is empty.
    default: Cell<Step>,
    containers: RefCell<Vec<Container>>,
    images: RefCell<HashSet<String>>,
    networks: RefCell<Vec<String>>,
    volumes: RefCell<Vec<String>>,
    /// Lists that time out before the engine answers again.
    silent_lists: Cell<u32>,
    calls: RefCell<Vec<String>>,
}

impl FakeEngine {
    fn new(name: &str) -> Rc<Self> {
        Rc::new(FakeEngine {
            addr: format!("{name}:2375").parse().unwrap(),
            script: RefCell::new(VecDeque::new()),
            default: Cell::new(Step::Create),
            containers: RefCell::default(),
            images: RefCell::new(HashSet::from(["busybox".to_string()])),
            networks: RefCell::default(),
            volumes: RefCell::default(),
            silent_lists: Cell::new(0),
            calls: RefCell::default(),
        })
    }

    fn then(self: &Rc<Self>, step: Step) -> Rc<Self> {
        self.script.borrow_mut().push_back(step);
        self.clone()
    }

    fn creates(&self) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("POST /containers/create"))
            .count()
    }

    fn names(&self) -> Vec<Option<String>> {
        self.containers
            .borrow()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    fn timeout(&self, path: &str) -> EngineError {
        EngineError::Timeout {
            addr: self.addr.to_string(),
            path: path.into(),
            secs: 3.0,
        }
    }

    fn do_create(&self, path: &str, body: &[u8]) -> Result<(u16, Bytes), EngineError> {
        let step = self
            .script
            .borrow_mut()
            .pop_front()
            .unwrap_or(self.default.get());
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        let image = v["Image"].as_str().unwrap_or("").to_string();
        let swarm_id = v["Labels"][LABEL_SWARM_ID].as_str().unwrap().to_string();
        let name = path.split_once("?name=").map(|(_, n)| n.to_string());
        let make = || {
            let id = format!("{:064x}", self.containers.borrow().len() + 1);
            self.containers.borrow_mut().push(Container {
                id: id.clone(),
                swarm_id: swarm_id.clone(),
                name: name.clone(),
            });
            id
        };
        match step {
            Step::Refuse => Err(EngineError::Connect {
                addr: self.addr.to_string(),
                reason: "connection refused".into(),
            }),
            Step::Status(status) => Ok((status, Bytes::from(r#"{"message":"engine broke"}"#))),
            Step::SilentNothing => Err(self.timeout(path)),
            Step::SilentCreated => {
                make();
                Err(self.timeout(path))
            }
            Step::Create if !self.images.borrow().contains(&image) => Ok((
                404,
                Bytes::from(format!(r#"{{"message":"No such image: {image}:latest"}}"#)),
            )),
            Step::Create => {
                let id = make();
                Ok((
                    201,
                    Bytes::from(format!(r#"{{"Id":"{id}","Warnings":[]}}"#)),
                ))
            }
        }
    }
}

fn ready<T: 'static>(v: T) -> LocalBoxFuture<'static, T> {
    Box::pin(async move { v })
}

impl Engine for FakeEngine {
    fn get(&self, path: &str) -> LocalBoxFuture<'static, Result<Bytes, EngineError>> {
        self.calls.borrow_mut().push(format!("GET {path}"));
        if self.silent_lists.get() > 0 {
            self.silent_lists.set(self.silent_lists.get() - 1);
            return ready(Err(self.timeout(path)));
        }
        let found: Vec<serde_json::Value> = self
            .containers
            .borrow()
            .iter()
            .filter(|c| calls::find_path(&c.swarm_id) == path)
            .map(|c| serde_json::json!({ "Id": c.id }))
            .collect();
        ready(Ok(Bytes::from(serde_json::to_vec(&found).unwrap())))
    }

    fn post(&self, req: PostRequest) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        self.calls.borrow_mut().push(format!("POST {}", req.path));
        let body = req.body.clone().unwrap_or_default();
        let name = || {
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["Name"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let answer = if req.path.starts_with("/containers/create") {
            self.do_create(&req.path, &body)
        } else if req.path.starts_with("/images/create") {
            self.images.borrow_mut().insert("busybox-new".into());
            Ok((200, Bytes::from("{\"status\":\"Downloaded\"}\n")))
        } else if req.path == "/networks/create" {
            self.networks.borrow_mut().push(name());
            Ok((201, Bytes::from("{}")))
        } else if req.path == "/volumes/create" {
            self.volumes.borrow_mut().push(name());
            Ok((201, Bytes::from("{}")))
        } else {
            Ok((404, Bytes::from(r#"{"message":"page not found"}"#)))
        };
        ready(answer)
    }

    fn delete(&self, path: &str) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        self.calls.borrow_mut().push(format!("DELETE {path}"));
        let id = path
            .trim_start_matches("/containers/")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let mut list = self.containers.borrow_mut();
        let before = list.len();
        list.retain(|c| c.id != id);
        let status = if list.len() < before { 204 } else { 404 };
        ready(Ok((status, Bytes::new())))
    }

    fn events(&self, _: &str) -> LocalBoxFuture<'static, Result<EngineStream, EngineError>> {
        ready(Err(EngineError::Io {
            addr: self.addr.to_string(),
            reason: "no events here".into(),
        }))
    }

    fn addr(&self) -> &EngineAddr {
        &self.addr
    }
}

/// A node straight over its fake engine.
struct FakeNode(Rc<FakeEngine>);

impl NodeTarget for FakeNode {
    fn create(
        &self,
        name: Option<String>,
        body: Bytes,
    ) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        calls::create(&*self.0, name.as_deref(), body)
    }
    fn pull(
        &self,
        image: String,
        auth: Option<String>,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        calls::pull(&*self.0, &image, auth)
    }
    fn create_network(&self, name: String) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        calls::create_named(&*self.0, "/networks/create", &name)
    }
    fn create_volume(&self, name: String) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        calls::create_named(&*self.0, "/volumes/create", &name)
    }
    fn find(
        &self,
        swarm_id: String,
    ) -> LocalBoxFuture<'static, Result<Option<String>, EngineError>> {
        calls::find(&*self.0, &swarm_id)
    }
    fn remove(&self, id: String) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        calls::remove(&*self.0, &id)
    }
}

/// The fake cluster: engines by the scheduler's node ID.
struct FakeNodes(HashMap<NodeId, Rc<FakeEngine>>);

impl Nodes for FakeNodes {
    fn node(&self, id: &NodeId) -> Option<Rc<dyn NodeTarget>> {
        self.0
            .get(id)
            .map(|e| Rc::new(FakeNode(e.clone())) as Rc<dyn NodeTarget>)
    }
    fn network_exists(&self, name: &str) -> bool {
        self.0
            .values()
            .any(|e| e.networks.borrow().iter().any(|n| n == name))
    }
    fn volume_exists(&self, name: &str) -> bool {
        self.0
            .values()
            .any(|e| e.volumes.borrow().iter().any(|n| n == name))
    }
}

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
