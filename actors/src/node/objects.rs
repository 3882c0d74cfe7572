//! Engine calls on images, networks and volumes that the API routes to this node:
//! inspect, tag, remove, history, prune, create, connect, `system df`, `auth`, commit.
//!
//! Message it takes: `ObjectCall` (one typed `ObjectOp` per engine route). The answer is
//! the engine's status and body as they are, so the engine's own errors (and their texts)
//! reach the client unchanged. A call that changed something refreshes the node at once,
//! so lists show the change without waiting for the engine's event.
//!
//! Streamed calls (pull, push, save, load, build) do not pass here: their bytes go between
//! the client and the engine on the HTTP worker (`engine::stream`).

use super::actor::NodeActor;
use super::messages::RefreshNode;
use crate::engine::{escape_param, EngineError, PostRequest};
use crate::metrics;
use actix::prelude::*;
use bytes::Bytes;

/// Which objects a prune removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneKind {
    Images,
    Networks,
    Volumes,
}

/// One engine route on images, networks or volumes. Names and IDs are the engine's own
/// (the API resolved cluster references before); `query` fields are the client's query
/// string, which the engine validates.
#[derive(Debug, Clone)]
pub enum ObjectOp {
    ImageHistory { name: String },
    TagImage { name: String, query: String },
    RemoveImage { name: String, query: String },
    SearchImages { query: String },
    Commit { query: String, body: Bytes },
    Prune { kind: PruneKind, query: String },
    InspectNetwork { id: String },
    CreateNetwork { body: Bytes },
    RemoveNetwork { id: String },
    ConnectNetwork { id: String, body: Bytes },
    DisconnectNetwork { id: String, body: Bytes },
    InspectVolume { name: String },
    CreateVolume { body: Bytes },
    RemoveVolume { name: String, query: String },
    SystemDf,
    Auth { body: Bytes },
}

enum Call {
    Get(String),
    Post(PostRequest),
    Delete(String),
}

fn with_query(path: String, query: &str) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

impl ObjectOp {
    fn name(&self) -> &'static str {
        match self {
            ObjectOp::ImageHistory { .. } => "ImageHistory",
            ObjectOp::TagImage { .. } => "TagImage",
            ObjectOp::RemoveImage { .. } => "RemoveImage",
            ObjectOp::SearchImages { .. } => "SearchImages",
            ObjectOp::Commit { .. } => "Commit",
            ObjectOp::Prune { .. } => "Prune",
            ObjectOp::InspectNetwork { .. } => "InspectNetwork",
            ObjectOp::CreateNetwork { .. } => "CreateNetwork",
            ObjectOp::RemoveNetwork { .. } => "RemoveNetwork",
            ObjectOp::ConnectNetwork { .. } => "ConnectNetwork",
            ObjectOp::DisconnectNetwork { .. } => "DisconnectNetwork",
            ObjectOp::InspectVolume { .. } => "InspectVolume",
            ObjectOp::CreateVolume { .. } => "CreateVolume",
            ObjectOp::RemoveVolume { .. } => "RemoveVolume",
            ObjectOp::SystemDf => "SystemDf",
            ObjectOp::Auth { .. } => "Auth",
        }
    }

    /// Whether a success changes what the node publishes.
    fn changes(&self) -> bool {
        !matches!(
            self,
            ObjectOp::ImageHistory { .. }
                | ObjectOp::SearchImages { .. }
                | ObjectOp::InspectNetwork { .. }
                | ObjectOp::InspectVolume { .. }
                | ObjectOp::SystemDf
                | ObjectOp::Auth { .. }
        )
    }

    fn call(self) -> Call {
        let e = escape_param;
        let post = |path: String, body: Option<Bytes>| {
            Call::Post(PostRequest {
                path,
                body,
                registry_auth: None,
                // Prunes and commits of big images take their time on a busy engine.
                long: true,
            })
        };
        match self {
            ObjectOp::ImageHistory { name } => Call::Get(format!("/images/{}/history", e(&name))),
            ObjectOp::TagImage { name, query } => post(
                with_query(format!("/images/{}/tag", e(&name)), &query),
                None,
            ),
            ObjectOp::RemoveImage { name, query } => {
                Call::Delete(with_query(format!("/images/{}", e(&name)), &query))
            }
            ObjectOp::SearchImages { query } => {
                Call::Get(with_query("/images/search".into(), &query))
            }
            ObjectOp::Commit { query, body } => {
                post(with_query("/commit".into(), &query), Some(body))
            }
            ObjectOp::Prune { kind, query } => {
                let what = match kind {
                    PruneKind::Images => "images",
                    PruneKind::Networks => "networks",
                    PruneKind::Volumes => "volumes",
                };
                post(with_query(format!("/{what}/prune"), &query), None)
            }
            ObjectOp::InspectNetwork { id } => Call::Get(format!("/networks/{}", e(&id))),
            ObjectOp::CreateNetwork { body } => post("/networks/create".into(), Some(body)),
            ObjectOp::RemoveNetwork { id } => Call::Delete(format!("/networks/{}", e(&id))),
            ObjectOp::ConnectNetwork { id, body } => {
                post(format!("/networks/{}/connect", e(&id)), Some(body))
            }
            ObjectOp::DisconnectNetwork { id, body } => {
                post(format!("/networks/{}/disconnect", e(&id)), Some(body))
            }
            ObjectOp::InspectVolume { name } => Call::Get(format!("/volumes/{}", e(&name))),
            ObjectOp::CreateVolume { body } => post("/volumes/create".into(), Some(body)),
            ObjectOp::RemoveVolume { name, query } => {
                Call::Delete(with_query(format!("/volumes/{}", e(&name)), &query))
            }
            ObjectOp::SystemDf => Call::Get("/system/df".into()),
            ObjectOp::Auth { body } => post("/auth".into(), Some(body)),
        }
    }
}

/// Sent by the API for an image, network or volume route it resolved to this node.
/// Answers the engine's status and body; a failure to reach the engine is the error (at
/// once while the node is unhealthy).
#[derive(Debug, Message)]
#[rtype(result = "Result<(u16, Bytes), EngineError>")]
pub struct ObjectCall(pub ObjectOp);

impl Handler<ObjectCall> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(u16, Bytes), EngineError>>;

    fn handle(&mut self, msg: ObjectCall, _: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", self.addr(), msg.0.name());
        if let Err(e) = self.refuse_work() {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        let changes = msg.0.changes();
        let engine = self.engine();
        let work = async move {
            match msg.0.call() {
                // `get` folds a non-2xx answer into an error; unfold it, so every call
                // answers the same way.
                Call::Get(path) => match engine.get(&path).await {
                    Ok(body) => Ok((200, body)),
                    Err(EngineError::Status {
                        status, message, ..
                    }) => Ok((
                        status,
                        Bytes::from(serde_json::json!({ "message": message }).to_string()),
                    )),
                    Err(e) => Err(e),
                },
                Call::Post(req) => engine.post(req).await,
                Call::Delete(path) => engine.delete(&path).await,
            }
        };
        Box::pin(work.into_actor(self).map(move |result, _act, ctx| {
            if changes && matches!(&result, Ok((s, _)) if (200..300).contains(s)) {
                // `notify` skips the mailbox bound: a refresh of this node's own state.
                ctx.notify(RefreshNode);
            }
            result
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_names_and_keep_queries() {
        let Call::Post(p) = (ObjectOp::TagImage {
            name: "localhost:5000/bb".into(),
            query: "repo=x&tag=1".into(),
        })
        .call() else {
            panic!("tag is a POST")
        };
        assert_eq!(p.path, "/images/localhost:5000/bb/tag?repo=x&tag=1");
        let Call::Delete(d) = (ObjectOp::RemoveVolume {
            name: "v".into(),
            query: String::new(),
        })
        .call() else {
            panic!("rm is a DELETE")
        };
        assert_eq!(d, "/volumes/v");
        assert!(!ObjectOp::SystemDf.changes());
        assert!(ObjectOp::CreateVolume { body: Bytes::new() }.changes());
    }
}
