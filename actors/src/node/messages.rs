//! Messages a NodeActor takes, and the one it sends when it stops.

use crate::engine::{EngineAddr, EngineError};
use actix::Message;
use bytes::Bytes;

/// Sent by the API (after a change it made) or by tests: refresh everything now.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RefreshNode;

/// Sent by the API after a call it passed to the engine changed a container (start, stop,
/// remove, wait, ...): list that container again now, and answer once it is published (or,
/// when the engine no longer lists it, once it is gone).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SyncContainer {
    pub id: String,
}

/// Sent by the API after it saw a change it made published (a committed or tagged image,
/// a new network): answers once the scheduler holds an offer at least as new as what this
/// node had published when asked, so the client's next create is placed knowing it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SyncOffer;

/// Sent by the API for `GET /containers/{id}/json` once the cluster resolved `id` to this
/// node. Answers the engine's inspect JSON, from the cache when the container did not change
/// since it was last fetched.
#[derive(Debug, Message)]
#[rtype(result = "Result<Bytes, EngineError>")]
pub struct InspectContainer {
    pub id: String,
}

/// Sent by the API for `GET /images/{name}/json`. Answers the engine's JSON, cached until
/// the engine reports an image event.
#[derive(Debug, Message)]
#[rtype(result = "Result<Bytes, EngineError>")]
pub struct InspectImage {
    pub name: String,
}

/// Sent by the API for `GET /containers/json?size=1`: sizes are computed by the engine on
/// request, so this asks it. Answers container ID → (`SizeRw`, `SizeRootFs`).
#[derive(Debug, Message)]
#[rtype(result = "Result<std::collections::HashMap<String, (i64, i64)>, EngineError>")]
pub struct ListContainerSizes;

/// Sent by the ClusterActor when discovery no longer lists the engine: stop for good.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopNode;

/// Sent by an operator or a test: end this actor without removing the node. Its
/// supervisor starts a fresh one (new connection, empty caches), as it does for any node
/// actor that stops on its own.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RestartNode;

/// Sent by a NodeActor to its supervisor when it stops. `removed` tells a stop that was
/// asked for (`StopNode`) from one that was not, which the supervisor answers by restarting.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct NodeStopped {
    pub addr: EngineAddr,
    pub removed: bool,
}

/// Sent by a NodeActor to the ClusterActor when the node's name, health or API version
/// changed, so the cluster view is laid out anew (names shown, their order, the API
/// version every healthy engine speaks).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct LayoutChanged;
