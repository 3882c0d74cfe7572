//! A fake engine for the create flow's tests: it answers the requests of `node::calls`
//! from an in-memory table, and fails on demand (refused connections, 5xx, silence with
//! or without the create having landed). `FakeNodes` puts a set of them behind `Nodes`.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;

use super::nodes::{NodeTarget, Nodes};
use crate::engine::{Engine, EngineAddr, EngineError, EngineStream, PostRequest};
use crate::node::calls;
use crate::scheduler::{NodeId, LABEL_SWARM_ID};

/// What the fake engine does with its next `POST /containers/create`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
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
    /// Creates, then the connection breaks before the answer (an engine killed mid-call).
    CutOffCreated,
}

pub(crate) struct Container {
    pub(crate) id: String,
    pub(crate) swarm_id: String,
    pub(crate) name: Option<String>,
    /// The create body as the engine got it.
    pub(crate) body: serde_json::Value,
}

pub(crate) struct FakeEngine {
    pub(crate) addr: EngineAddr,
    pub(crate) script: RefCell<VecDeque<Step>>,
    /// Used once the script is empty.
    pub(crate) default: Cell<Step>,
    pub(crate) containers: RefCell<Vec<Container>>,
    pub(crate) images: RefCell<HashSet<String>>,
    pub(crate) networks: RefCell<Vec<String>>,
    pub(crate) volumes: RefCell<Vec<String>>,
    /// Lists that time out before the engine answers again.
    pub(crate) silent_lists: Cell<u32>,
    /// Container removals answered 500 (a daemon that cannot remove).
    pub(crate) refuse_removals: Cell<bool>,
    pub(crate) calls: RefCell<Vec<String>>,
}

impl FakeEngine {
    pub(crate) fn new(name: &str) -> Rc<Self> {
        Rc::new(FakeEngine {
            addr: format!("{name}:2375").parse().unwrap(),
            script: RefCell::new(VecDeque::new()),
            default: Cell::new(Step::Create),
            containers: RefCell::default(),
            images: RefCell::new(HashSet::from(["busybox".to_string()])),
            networks: RefCell::default(),
            volumes: RefCell::default(),
            silent_lists: Cell::new(0),
            refuse_removals: Cell::new(false),
            calls: RefCell::default(),
        })
    }

    pub(crate) fn then(self: &Rc<Self>, step: Step) -> Rc<Self> {
        self.script.borrow_mut().push_back(step);
        self.clone()
    }

    pub(crate) fn creates(&self) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("POST /containers/create"))
            .count()
    }

    pub(crate) fn names(&self) -> Vec<Option<String>> {
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
                body: v.clone(),
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
            Step::CutOffCreated => {
                make();
                Err(EngineError::Io {
                    addr: self.addr.to_string(),
                    reason: "connection reset by peer".into(),
                })
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
        } else if req.path.starts_with("/containers/")
            || (req.path.starts_with("/networks/") && req.path.ends_with("/connect"))
        {
            // start, rename, connect: the fake only records them.
            Ok((204, Bytes::new()))
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
        if self.refuse_removals.get() {
            return ready(Ok((500, Bytes::from(r#"{"message":"device busy"}"#))));
        }
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
    fn call(
        &self,
        id: String,
        op: crate::node::ContainerOp,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        calls::container_op(&*self.0, &id, &op)
    }
}

/// The fake cluster: engines by the scheduler's node ID.
pub(crate) struct FakeNodes(pub(crate) HashMap<NodeId, Rc<FakeEngine>>);

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
