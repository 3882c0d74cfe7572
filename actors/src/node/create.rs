//! Changes Shoal makes on its node's engine for a placement: create the container, pull its
//! image when the engine lacks it, create the network or volume it needs.
//!
//! These go through the NodeActor (not straight from the front) so the node can refresh
//! what it publishes right after, and so every call to an engine keeps its timeout and its
//! failure in one place.

use super::actor::NodeActor;
use super::ContainerResources;
use crate::engine::{error_message, query_escape, EngineError, PostRequest};
use actix::prelude::*;
use bytes::Bytes;

/// Sent by the API after the scheduler chose this node: `POST /containers/create`.
/// Answers the engine's status and body as they are (201 and `{"Id":...}` on success).
#[derive(Debug, Message)]
#[rtype(result = "Result<(u16, Bytes), EngineError>")]
pub struct CreateContainer {
    pub name: Option<String>,
    pub body: Bytes,
}

/// Sent by the API when the engine answered a create with "No such image": pull it here.
/// The progress stream is read to its end; an error in it is the answer.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct PullImage {
    pub image: String,
    /// `X-Registry-Auth` as the client sent it; never logged.
    pub registry_auth: Option<String>,
}

/// Sent by the API when a container joins a network that exists on no node yet.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct CreateNetwork {
    pub name: String,
}

/// Sent by the API when a container mounts a named volume that exists on no node yet.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct CreateVolume {
    pub name: String,
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

impl Handler<CreateContainer> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(u16, Bytes), EngineError>>;

    /// Creates, then lists the new container and records it before answering, so the
    /// client's next call finds it at once. What it reserves comes from the create body
    /// itself (one engine call fewer than an inspect). The engine's `create` event, which
    /// may arrive before that list answers, asks for no list of its own.
    fn handle(&mut self, msg: CreateContainer, _: &mut Context<Self>) -> Self::Result {
        let path = match &msg.name {
            Some(n) => format!("/containers/create?name={}", query_escape(n)),
            None => "/containers/create".to_string(),
        };
        let post = self
            .engine()
            .post(PostRequest::new(path).json(msg.body.clone()));
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
        let path = format!("/images/create?{}", pull_query(&msg.image));
        let addr = self.addr().to_string();
        let call = self.engine().post(PostRequest {
            path: path.clone(),
            body: None,
            registry_auth: msg.registry_auth,
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
}

fn create_named(
    node: &NodeActor,
    path: &str,
    name: &str,
) -> ResponseFuture<Result<(), EngineError>> {
    let body = serde_json::json!({ "Name": name }).to_string();
    let call = node
        .engine()
        .post(PostRequest::new(path).json(Bytes::from(body)));
    let (addr, path) = (node.addr().to_string(), path.to_string());
    Box::pin(async move {
        let (status, body) = call.await?;
        checked(addr, path, status, &body)
    })
}

impl Handler<CreateNetwork> for NodeActor {
    type Result = ResponseFuture<Result<(), EngineError>>;

    fn handle(&mut self, msg: CreateNetwork, _: &mut Context<Self>) -> Self::Result {
        create_named(self, "/networks/create", &msg.name)
    }
}

impl Handler<CreateVolume> for NodeActor {
    type Result = ResponseFuture<Result<(), EngineError>>;

    fn handle(&mut self, msg: CreateVolume, _: &mut Context<Self>) -> Self::Result {
        create_named(self, "/volumes/create", &msg.name)
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
    fn errors_inside_a_progress_stream() {
        let body =
            b"{\"status\":\"Pulling\"}\n{\"errorDetail\":{},\"error\":\"manifest unknown\"}\n";
        assert_eq!(progress_error(body).as_deref(), Some("manifest unknown"));
        assert_eq!(progress_error(b"{\"status\":\"ok\"}\n"), None);
    }
}
