//! Changes Shoal makes on its node's engine for a placement: create the container, pull its
//! image when the engine lacks it, create the network or volume it needs, and, for a create
//! whose engine went silent, find the container by its `com.docker.swarm.id` and remove it.
//!
//! These go through the NodeActor (not straight from the front) so the node can refresh
//! what it publishes right after, and so every call to an engine keeps its timeout and its
//! failure in one place. The engine calls themselves are plain functions over the `Engine`
//! trait ([`calls`]), so the create flow's tests drive the very same requests against a
//! fake engine.

use super::actor::NodeActor;
use super::ContainerResources;
use crate::engine::{error_message, query_escape, Engine, EngineError, PostRequest};
use actix::prelude::*;
use bytes::Bytes;

/// Sent by the create flow after the scheduler chose this node: `POST /containers/create`.
/// Answers the engine's status and body as they are (201 and `{"Id":...}` on success).
#[derive(Debug, Message)]
#[rtype(result = "Result<(u16, Bytes), EngineError>")]
pub struct CreateContainer {
    pub name: Option<String>,
    pub body: Bytes,
}

/// Sent by the create flow when the engine answered a create with "No such image": pull it
/// here. The progress stream is read to its end; an error in it is the answer.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct PullImage {
    pub image: String,
    /// `X-Registry-Auth` as the client sent it; never logged.
    pub registry_auth: Option<String>,
}

/// Sent by the create flow when a container joins a network that exists on no node yet.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct CreateNetwork {
    pub name: String,
}

/// Sent by the create flow when a container mounts a named volume that exists on no node
/// yet.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct CreateVolume {
    pub name: String,
}

/// Sent by the create flow's resolver for a create whose engine did not answer: which
/// container (any state) carries this `com.docker.swarm.id`? Answers its ID, or `None`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<String>, EngineError>")]
pub struct FindCreated {
    pub swarm_id: String,
}

/// Sent by the create flow's resolver: remove a container that landed after its client
/// was told the create failed (force, with its anonymous volumes). Answers once the engine
/// removed it (a 404 counts: it is gone) and the node no longer lists it.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct RemoveOrphan {
    pub id: String,
}

/// Splits `repo[:tag]` / `repo@digest` into the `fromImage` and `tag` of a pull.
pub fn pull_query(image: &str) -> String {
    if image.contains('@') {
        return format!("fromImage={}", query_escape(image));
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let (repo, tag) = match last.rsplit_once(':') {
        Some((_, tag)) => (&image[..image.len() - tag.len() - 1], tag),
        None => (image, "latest"),
    };
    format!("fromImage={}&tag={}", query_escape(repo), query_escape(tag))
}

/// The first `{"error": ...}` of a JSON-lines progress stream.
fn progress_error(body: &[u8]) -> Option<String> {
    body.split(|&b| b == b'\n').find_map(|line| {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        v.get("error").and_then(|e| e.as_str()).map(str::to_string)
    })
}

/// The engine calls behind the messages above, over any [`Engine`]: the NodeActor's
/// handlers and the create flow's tests make exactly these requests.
pub mod calls {
    use super::*;
    use futures_util::future::LocalBoxFuture;

    fn checked(addr: String, path: String, status: u16, body: &[u8]) -> Result<(), EngineError> {
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(EngineError::Status {
                addr,
                path,
                status,
                message: error_message(body),
            })
        }
    }

    /// `POST /containers/create[?name=]`: the engine's status and body as they are.
    pub fn create(
        engine: &dyn Engine,
        name: Option<&str>,
        body: Bytes,
    ) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        let path = match name {
            Some(n) => format!("/containers/create?name={}", query_escape(n)),
            None => "/containers/create".to_string(),
        };
        engine.post(PostRequest::new(path).json(body).work())
    }

    /// `POST /images/create?fromImage=..`, read to its end; an error in the stream fails.
    pub fn pull(
        engine: &dyn Engine,
        image: &str,
        registry_auth: Option<String>,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        let path = format!("/images/create?{}", pull_query(image));
        let addr = engine.addr().to_string();
        let call = engine.post(PostRequest {
            path: path.clone(),
            body: None,
            registry_auth,
            long: true,
        });
        Box::pin(async move {
            let (status, body) = call.await?;
            checked(addr.clone(), path.clone(), status, &body)?;
            match progress_error(&body) {
                Some(message) => Err(EngineError::Status {
                    addr,
                    path,
                    status: 404,
                    message,
                }),
                None => Ok(()),
            }
        })
    }

    /// `POST /networks/create` or `/volumes/create` with `{"Name": name}`.
    pub fn create_named(
        engine: &dyn Engine,
        path: &str,
        name: &str,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        let body = serde_json::json!({ "Name": name }).to_string();
        let call = engine.post(PostRequest::new(path).json(Bytes::from(body)).work());
        let (addr, path) = (engine.addr().to_string(), path.to_string());
        Box::pin(async move {
            let (status, body) = call.await?;
            checked(addr, path, status, &body)
        })
    }

    /// The path of a list of every container carrying `com.docker.swarm.id=swarm_id`.
    pub fn find_path(swarm_id: &str) -> String {
        let label = format!("{}={swarm_id}", crate::scheduler::LABEL_SWARM_ID);
        let filter = serde_json::json!({ "label": [label] }).to_string();
        format!("/containers/json?all=1&filters={}", query_escape(&filter))
    }

    /// The ID of the container carrying `com.docker.swarm.id=swarm_id`, if any.
    pub fn find(
        engine: &dyn Engine,
        swarm_id: &str,
    ) -> LocalBoxFuture<'static, Result<Option<String>, EngineError>> {
        let path = find_path(swarm_id);
        let call = engine.get(&path);
        let addr = engine.addr().to_string();
        Box::pin(async move {
            let body = call.await?;
            let list: Vec<serde_json::Value> =
                serde_json::from_slice(&body).map_err(|e| EngineError::Garbage {
                    addr,
                    path,
                    reason: e.to_string(),
                })?;
            Ok(list
                .iter()
                .find_map(|c| c.get("Id").and_then(|i| i.as_str()).map(str::to_string)))
        })
    }

    /// One [`ContainerOp`] on container `id`.
    pub fn container_op(
        engine: &dyn Engine,
        id: &str,
        op: &ContainerOp,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        let req = match op {
            ContainerOp::Start => {
                PostRequest::new(format!("/containers/{}/start", query_escape(id)))
            }
            ContainerOp::Rename { name } => PostRequest::new(format!(
                "/containers/{}/rename?name={}",
                query_escape(id),
                query_escape(name)
            )),
            ContainerOp::Connect { network, endpoint } => {
                let endpoint: serde_json::Value =
                    serde_json::from_slice(endpoint).unwrap_or(serde_json::Value::Null);
                let body = serde_json::json!({ "Container": id, "EndpointConfig": endpoint });
                PostRequest::new(format!("/networks/{}/connect", query_escape(network)))
                    .json(Bytes::from(body.to_string()))
            }
        };
        let path = req.path.clone();
        let call = engine.post(req);
        let addr = engine.addr().to_string();
        Box::pin(async move {
            let (status, body) = call.await?;
            if status == 304 {
                return Ok(());
            }
            checked(addr, path, status, &body)
        })
    }

    /// `DELETE /containers/{id}?force=1&v=1`; a 404 counts as removed.
    pub fn remove(
        engine: &dyn Engine,
        id: &str,
    ) -> LocalBoxFuture<'static, Result<(), EngineError>> {
        let path = format!("/containers/{}?force=1&v=1", query_escape(id));
        let call = engine.delete(&path);
        let addr = engine.addr().to_string();
        Box::pin(async move {
            let (status, body) = call.await?;
            if status == 404 {
                return Ok(());
            }
            checked(addr, path, status, &body)
        })
    }
}

/// What the rescheduler does to a container it re-created (or to the stale copy it left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerOp {
    /// `POST /containers/{id}/start` (a 304, already started, counts as done).
    Start,
    /// `POST /containers/{id}/rename?name=`.
    Rename { name: String },
    /// `POST /networks/{network}/connect` with `{"Container": id, "EndpointConfig": ..}`:
    /// an engine before API 1.44 takes only one network at create.
    Connect { network: String, endpoint: Bytes },
}

/// Sent by the rescheduler: one change to a container of this node. Answers once the
/// engine did it and the node listed the container again.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct ContainerCall {
    pub id: String,
    pub op: ContainerOp,
}

impl Handler<CreateContainer> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(u16, Bytes), EngineError>>;

    /// Creates, then lists the new container and records it before answering, so the
    /// client's next call finds it at once. What it reserves comes from the create body
    /// itself (one engine call fewer than an inspect). The engine's `create` event, which
    /// may arrive before that list answers, asks for no list of its own.
    fn handle(&mut self, msg: CreateContainer, _: &mut Context<Self>) -> Self::Result {
        let post = calls::create(&*self.engine(), msg.name.as_deref(), msg.body.clone());
        Box::pin(post.into_actor(self).then(move |answer, act, _| {
            let id = match &answer {
                Ok((201, body)) => serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("Id").and_then(|i| i.as_str()).map(str::to_string)),
                _ => None,
            };
            let listed: ResponseActFuture<NodeActor, ()> = match id {
                Some(id) => {
                    act.creating(&id, ContainerResources::from_create(&msg.body));
                    let list = act.list_ids(vec![id.clone()]);
                    Box::pin(list.map(move |(), act, _| act.created(&id)))
                }
                None => Box::pin(actix::fut::ready(())),
            };
            listed.map(move |(), _, _| answer)
        }))
    }
}

impl Handler<PullImage> for NodeActor {
    type Result = ResponseFuture<Result<(), EngineError>>;

    fn handle(&mut self, msg: PullImage, _: &mut Context<Self>) -> Self::Result {
        calls::pull(&*self.engine(), &msg.image, msg.registry_auth)
    }
}

impl Handler<CreateNetwork> for NodeActor {
    type Result = ResponseFuture<Result<(), EngineError>>;

    fn handle(&mut self, msg: CreateNetwork, _: &mut Context<Self>) -> Self::Result {
        calls::create_named(&*self.engine(), "/networks/create", &msg.name)
    }
}

impl Handler<CreateVolume> for NodeActor {
    type Result = ResponseFuture<Result<(), EngineError>>;

    fn handle(&mut self, msg: CreateVolume, _: &mut Context<Self>) -> Self::Result {
        calls::create_named(&*self.engine(), "/volumes/create", &msg.name)
    }
}

impl Handler<FindCreated> for NodeActor {
    type Result = ResponseFuture<Result<Option<String>, EngineError>>;

    fn handle(&mut self, msg: FindCreated, _: &mut Context<Self>) -> Self::Result {
        calls::find(&*self.engine(), &msg.swarm_id)
    }
}

impl Handler<RemoveOrphan> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), EngineError>>;

    /// Removes, then lists the container again so the published snapshot (and the
    /// scheduler's offer) drop it, as a create lists the new one.
    fn handle(&mut self, msg: RemoveOrphan, _: &mut Context<Self>) -> Self::Result {
        let call = calls::remove(&*self.engine(), &msg.id);
        Box::pin(call.into_actor(self).then(move |answer, act, _| {
            let listed: ResponseActFuture<NodeActor, ()> = match answer {
                Ok(()) => act.list_ids(vec![msg.id]),
                Err(_) => Box::pin(actix::fut::ready(())),
            };
            listed.map(move |(), _, _| answer)
        }))
    }
}

impl Handler<ContainerCall> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), EngineError>>;

    fn handle(&mut self, msg: ContainerCall, _: &mut Context<Self>) -> Self::Result {
        let call = calls::container_op(&*self.engine(), &msg.id, &msg.op);
        Box::pin(call.into_actor(self).then(move |answer, act, _| {
            let listed: ResponseActFuture<NodeActor, ()> = match answer {
                Ok(()) => act.list_ids(vec![msg.id]),
                Err(_) => Box::pin(actix::fut::ready(())),
            };
            listed.map(move |(), _, _| answer)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_queries() {
        assert_eq!(pull_query("busybox"), "fromImage=busybox&tag=latest");
        assert_eq!(pull_query("redis:7"), "fromImage=redis&tag=7");
        assert_eq!(
            pull_query("localhost:5000/bb"),
            "fromImage=localhost%3A5000%2Fbb&tag=latest"
        );
        assert_eq!(
            pull_query("localhost:5000/bb:v1"),
            "fromImage=localhost%3A5000%2Fbb&tag=v1"
        );
        assert!(pull_query("bb@sha256:abc").starts_with("fromImage=bb%40sha256"));
    }

    #[test]
    fn find_asks_for_the_swarm_id_label() {
        let path = calls::find_path("abc");
        let (_, q) = path.split_once("filters=").unwrap();
        assert!(path.starts_with("/containers/json?all=1&"));
        assert_eq!(q, query_escape(r#"{"label":["com.docker.swarm.id=abc"]}"#));
    }

    #[test]
    fn errors_inside_a_progress_stream() {
        let body =
            b"{\"status\":\"Pulling\"}\n{\"errorDetail\":{},\"error\":\"manifest unknown\"}\n";
        assert_eq!(progress_error(body).as_deref(), Some("manifest unknown"));
        assert_eq!(progress_error(b"{\"status\":\"ok\"}\n"), None);
    }
}
