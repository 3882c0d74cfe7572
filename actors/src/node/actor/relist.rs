//! The NodeActor's container table kept in step with its engine: full lists (from a
//! refresh or when the event stream opens), lists of the few containers an event or a call
//! changed (batched over `EVENT_DEBOUNCE`), and inspects of new containers to learn what
//! they hold. The engine answers; the `ContainerBook` decides what the table becomes.

use super::{NodeActor, EVENT_DEBOUNCE, INSPECT_CONCURRENCY, SYNC_BATCH};
use crate::engine::query_escape;
use crate::node::containers::Taken;
use crate::node::refresh::parse;
use crate::node::resources::ContainerResources;
use crate::node::snapshot::ContainerTable;
use actix::prelude::*;
use bollard_stubs::models::ContainerSummary;
use futures_util::stream::{self, StreamExt};
use std::sync::Arc;

impl NodeActor {
    /// Takes a full container list (see `ContainerBook::take_full`), dropping the cached
    /// inspects of containers that are gone or whose state changed: an engine that was
    /// killed and restarted sends no `die` event for the containers it lost, so the list is
    /// the only news of it.
    pub(super) fn take_full(&mut self, list: Vec<ContainerSummary>, seq: u64) -> Option<Taken> {
        let current = self.publisher.current();
        let taken = self.containers.take_full(list, seq, &current.containers)?;
        self.caches.retain_containers(|id| {
            match (taken.table.by_id(id), current.containers.by_id(id)) {
                (Some(now), Some(before)) => now.state() == before.state(),
                _ => false,
            }
        });
        Some(taken)
    }

    fn publish_containers(&mut self, table: Arc<ContainerTable>, ctx: &mut Context<Self>) {
        let update = self.containers.update(table);
        self.publish(ctx, |s| update.apply(s));
    }

    /// Inspects the containers `ids` to learn what they hold, then publishes the table
    /// with their reservations counted.
    pub(super) fn inspect_new(&mut self, ids: Vec<String>, ctx: &mut Context<Self>) {
        if ids.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        // Each body is read down to what the container holds as soon as it arrives: the
        // whole inspect body is cached only when a client asks for it, and holding every
        // body until the last arrived was ~100 KB a node at start-up.
        let work = stream::iter(ids)
            .map(move |id| {
                let call = engine.get(&format!("/containers/{id}/json"));
                async move {
                    let resources = call
                        .await
                        .ok()
                        .and_then(|b| ContainerResources::from_inspect(&b));
                    (id, resources)
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .filter_map(|(id, resources)| async move { Some((id, resources?)) })
            .collect::<Vec<_>>();
        ctx.spawn(work.into_actor(self).map(|results, act, ctx| {
            act.containers.learned(results);
            let table = act.publisher.current().containers.clone();
            act.publish_containers(table, ctx);
        }));
    }

    /// Lists container `id` again soon; the events of a burst cost one filtered list.
    pub(super) fn list_later(&mut self, id: String, ctx: &mut Context<Self>) {
        if self.containers.list_later(id) {
            ctx.run_later(EVENT_DEBOUNCE, |act, ctx| act.list_pending(ctx));
        }
    }

    fn list_pending(&mut self, ctx: &mut Context<Self>) {
        let ids = self.containers.take_pending();
        for batch in ids.chunks(SYNC_BATCH) {
            let list = self.list_ids(batch.to_vec());
            ctx.spawn(list);
        }
    }

    /// A create of container `id` succeeded and its list is on its way (`ContainerBook`).
    pub(in crate::node) fn creating(&mut self, id: &str, resources: Option<ContainerResources>) {
        self.containers.creating(id, resources);
    }

    /// The list that follows a create was taken.
    pub(in crate::node) fn created(&mut self, id: &str) {
        self.containers.created(id);
    }

    /// Lists the containers `ids` (one filtered list) and records what the engine now shows
    /// for each: changed, or gone. Done when recorded.
    pub(in crate::node) fn list_ids(&mut self, ids: Vec<String>) -> ResponseActFuture<Self, ()> {
        let seq = self.containers.ask();
        let filter = serde_json::json!({ "id": ids }).to_string();
        let path = format!("/containers/json?all=1&filters={}", query_escape(&filter));
        let call = self.engine.get(&path);
        let addr = self.addr.clone();
        Box::pin(call.into_actor(self).map(move |result, act, ctx| {
            match result.and_then(|b| parse::<Vec<ContainerSummary>>(&addr, &path, &b)) {
                Ok(list) => act.take_listed(ids, list, seq, ctx),
                Err(e) => tracing::debug!(node = %act.addr, error = %e, "container list failed"),
            }
        }))
    }

    fn take_listed(
        &mut self,
        ids: Vec<String>,
        list: Vec<ContainerSummary>,
        seq: u64,
        ctx: &mut Context<Self>,
    ) {
        let current = self.publisher.current();
        let Some((taken, changed)) =
            self.containers
                .take_listed(ids, list, seq, &current.containers)
        else {
            return;
        };
        for id in &changed {
            self.caches.forget_container(id);
        }
        self.publish_containers(taken.table, ctx);
        self.inspect_new(taken.unknown, ctx);
    }

    /// Lists the containers and publishes them; done when they are published.
    pub(super) fn relist(&mut self) -> ResponseActFuture<Self, ()> {
        let call = self.engine.get("/containers/json?all=1");
        let addr = self.addr.clone();
        let seq = self.containers.ask();
        Box::pin(call.into_actor(self).map(move |result, act, ctx| {
            match result.and_then(|b| parse::<Vec<ContainerSummary>>(&addr, "/containers/json", &b))
            {
                Ok(list) => {
                    if let Some(t) = act.take_full(list, seq) {
                        act.publish_containers(t.table, ctx);
                        act.inspect_new(t.unknown, ctx);
                    }
                }
                Err(e) => tracing::debug!(node = %act.addr, error = %e, "container list failed"),
            }
        }))
    }
}
