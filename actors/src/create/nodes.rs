//! What the create flow needs of the nodes, as two small traits: [`Nodes`] finds a node
//! by the scheduler's [`NodeId`] and tells whether a network or volume exists anywhere;
//! [`NodeTarget`] makes the engine calls of a create on one node. In production they go
//! through the cluster view and the NodeActor (which records what it created); the flow's
//! tests put a fake engine behind the same requests (`node::calls`).

use std::rc::Rc;
use std::sync::Arc;

use actix::{Addr, MailboxError};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use tokio::sync::watch;

use crate::cluster::ClusterView;
use crate::engine::EngineError;
use crate::node::{
    ContainerCall, ContainerOp, CreateContainer, CreateNetwork, CreateVolume, FindCreated,
    NodeActor, PullImage, RemoveOrphan,
};
use crate::scheduler::NodeId;

/// The engine calls of a create on one node. Every call has the engine's timeout.
pub trait NodeTarget {
    /// `POST /containers/create`: the engine's status and body as they are.
    fn create(
        &self,
        name: Option<String>,
        body: Bytes,
    ) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>>;
    /// Pulls `image` (the engine answered "No such image").
    fn pull(
        &self,
        image: String,
        registry_auth: Option<String>,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>>;
    fn create_network(&self, name: String) -> LocalBoxFuture<'static, Result<(), EngineError>>;
    fn create_volume(&self, name: String) -> LocalBoxFuture<'static, Result<(), EngineError>>;
    /// The container carrying `com.docker.swarm.id=swarm_id`, if any.
    fn find(
        &self,
        swarm_id: String,
    ) -> LocalBoxFuture<'static, Result<Option<String>, EngineError>>;
    /// Removes a container (force); gone already counts as removed.
    fn remove(&self, id: String) -> LocalBoxFuture<'static, Result<(), EngineError>>;
    /// Starts, renames or connects a container (the rescheduler's calls after a create).
    fn call(&self, id: String, op: ContainerOp)
        -> LocalBoxFuture<'static, Result<(), EngineError>>;
}

/// The nodes as the create flow sees them.
pub trait Nodes {
    /// The node the scheduler calls `id`, if it is still in the cluster.
    fn node(&self, id: &NodeId) -> Option<Rc<dyn NodeTarget>>;
    /// Does a network of this name or ID exist on any node?
    fn network_exists(&self, name: &str) -> bool;
    /// Does a volume of this name exist on any node?
    fn volume_exists(&self, name: &str) -> bool;
}

/// The production [`Nodes`]: the ClusterActor's published view, read at each call.
pub struct ClusterNodes(pub watch::Receiver<Arc<ClusterView>>);

impl Nodes for ClusterNodes {
    fn node(&self, id: &NodeId) -> Option<Rc<dyn NodeTarget>> {
        let view = self.0.borrow().clone();
        let node = view.node(id.as_str())?;
        Some(Rc::new(ActorNode {
            actor: node.handle.actor.clone(),
            addr: id.to_string(),
        }))
    }

    fn network_exists(&self, name: &str) -> bool {
        let view = self.0.borrow().clone();
        view.read().nodes.iter().any(|n| {
            n.snapshot
                .networks
                .iter()
                .any(|x| x.name == name || x.id == name)
        })
    }

    fn volume_exists(&self, name: &str) -> bool {
        let view = self.0.borrow().clone();
        view.read()
            .nodes
            .iter()
            .any(|n| n.snapshot.volumes.iter().any(|x| x.name == name))
    }
}

/// One node through its NodeActor.
struct ActorNode {
    actor: Addr<NodeActor>,
    addr: String,
}

/// A NodeActor that stopped while asked (its supervisor restarts it): the call's fate is
/// as unknown as a broken connection's.
fn gone(addr: String) -> impl FnOnce(MailboxError) -> EngineError {
    move |e| EngineError::Io {
        addr,
        reason: format!("node actor stopped: {e}"),
    }
}

macro_rules! ask {
    ($node:expr, $msg:expr) => {{
        let call = $node.actor.send($msg);
        let addr = $node.addr.clone();
        Box::pin(async move { call.await.map_err(gone(addr))? })
    }};
}

impl NodeTarget for ActorNode {
    fn create(
        &self,
        name: Option<String>,
        body: Bytes,
    ) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        ask!(self, CreateContainer { name, body })
    }

    fn pull(
        &self,
        image: String,
        registry_auth: Option<String>,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        ask!(
            self,
            PullImage {
                image,
                registry_auth
            }
        )
    }

    fn create_network(&self, name: String) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        ask!(self, CreateNetwork { name })
    }

    fn create_volume(&self, name: String) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        ask!(self, CreateVolume { name })
    }

    fn find(
        &self,
        swarm_id: String,
    ) -> LocalBoxFuture<'static, Result<Option<String>, EngineError>> {
        ask!(self, FindCreated { swarm_id })
    }

    fn remove(&self, id: String) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        ask!(self, RemoveOrphan { id })
    }

    fn call(
        &self,
        id: String,
        op: ContainerOp,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        ask!(self, ContainerCall { id, op })
    }
}
