//! The NodeActor's answers to the messages of `node/messages.rs`: each asks the part of the
//! actor that keeps what it needs (caches, container book, offer flow, refresh loop).

use super::NodeActor;
use crate::engine::{escape_param, EngineError};
use crate::metrics;
use crate::node::caches::Inspect;
use crate::node::messages::{
    InspectContainer, InspectImage, ListContainerSizes, RefreshNode, RestartNode, StopNode,
    SyncContainer, SyncOffer,
};
use crate::node::refresh::parse;
use actix::prelude::*;
use bollard_stubs::models::ContainerSummary;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;

impl Handler<RefreshNode> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: RefreshNode, ctx: &mut Context<Self>) {
        let _m = metrics::handling("node", &self.addr, "RefreshNode");
        self.schedule_refresh(ctx, Duration::ZERO);
    }
}

/// Answers inspect `key` from the node's cache, or asks the engine for `path` and keeps
/// the answer until an event or a list says the object changed.
fn inspect(
    act: &mut NodeActor,
    kind: Inspect,
    key: String,
    path: String,
) -> ResponseActFuture<NodeActor, Result<Bytes, EngineError>> {
    if let Some(body) = act.caches.get(kind, &key) {
        return Box::pin(actix::fut::ready(Ok(body)));
    }
    let call = act.engine.get(&path);
    Box::pin(call.into_actor(act).map(move |result, act, _| {
        if let Ok(body) = &result {
            act.caches.keep(kind, key, body.clone());
        }
        result
    }))
}

impl Handler<InspectContainer> for NodeActor {
    type Result = ResponseActFuture<Self, Result<Bytes, EngineError>>;

    fn handle(&mut self, msg: InspectContainer, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "InspectContainer");
        let path = format!("/containers/{}/json", escape_param(&msg.id));
        inspect(self, Inspect::Container, msg.id, path)
    }
}

impl Handler<InspectImage> for NodeActor {
    type Result = ResponseActFuture<Self, Result<Bytes, EngineError>>;

    fn handle(&mut self, msg: InspectImage, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "InspectImage");
        let path = format!("/images/{}/json", escape_param(&msg.name));
        inspect(self, Inspect::Image, msg.name, path)
    }
}

impl Handler<ListContainerSizes> for NodeActor {
    type Result = ResponseFuture<Result<HashMap<String, (i64, i64)>, EngineError>>;

    fn handle(&mut self, _: ListContainerSizes, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "ListContainerSizes");
        let path = "/containers/json?all=1&size=1";
        let call = self.engine.get(path);
        let addr = self.addr.clone();
        Box::pin(async move {
            let list: Vec<ContainerSummary> = parse(&addr, path, &call.await?)?;
            Ok(list
                .into_iter()
                .filter_map(|c| {
                    Some((c.id?, (c.size_rw.unwrap_or(0), c.size_root_fs.unwrap_or(0))))
                })
                .collect())
        })
    }
}

impl Handler<SyncContainer> for NodeActor {
    type Result = ResponseActFuture<Self, ()>;

    /// Lists the one container (a node of thousands is not listed whole for each start).
    fn handle(&mut self, msg: SyncContainer, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "SyncContainer");
        self.list_ids(vec![msg.id])
    }
}

impl Handler<SyncOffer> for NodeActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: SyncOffer, _ctx: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("node", &self.addr, "SyncOffer");
        let wait = self.offers.wait();
        Box::pin(async move {
            if let Some(rx) = wait {
                let _ = rx.await;
            }
        })
    }
}

impl Handler<RestartNode> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: RestartNode, ctx: &mut Context<Self>) {
        let _m = metrics::handling("node", &self.addr, "RestartNode");
        ctx.stop();
    }
}

impl Handler<StopNode> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: StopNode, ctx: &mut Context<Self>) {
        let _m = metrics::handling("node", &self.addr, "StopNode");
        self.removed = true;
        ctx.stop();
    }
}
