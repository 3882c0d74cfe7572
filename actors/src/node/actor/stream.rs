//! The NodeActor's end of its engine's `/events` stream: opening it (from just past the
//! last event seen), what each event changes in the node (a list of one container, the
//! image caches), passing it on to the EventsHub, and reconnecting when it breaks.

use super::{NodeActor, NodeEvent, EVENTS_RETRY, EVENT_DEBOUNCE};
use crate::engine::EngineError;
use crate::metrics;
use crate::node::events::{EngineEvent, EventDecoder};
use crate::node::listing::event_needs_list;
use actix::prelude::*;
use futures_util::stream::{self, StreamExt};

impl NodeActor {
    pub(super) fn connect_events(&mut self, ctx: &mut Context<Self>) {
        self.events.set_connected(true);
        // After a break, ask from just past the last event seen, so none is lost between
        // the old stream and the new one.
        let open = self.engine.events(&self.events.since_query());
        ctx.spawn(open.into_actor(self).map(|result, act, ctx| match result {
            Ok(stream) => {
                let mut decoder = EventDecoder::default();
                let events = stream.flat_map(move |chunk| {
                    let evs = match chunk {
                        Ok(bytes) => decoder.push(&bytes).into_iter().map(Ok).collect(),
                        Err(e) => vec![Err(e)],
                    };
                    stream::iter(evs)
                });
                ctx.add_stream(events);
                // Anything that changed before the stream opened is picked up by one list.
                let relist = act.relist();
                ctx.spawn(relist);
            }
            Err(e) => {
                tracing::debug!(node = %act.addr, error = %e, "event stream refused");
                act.events.set_connected(false);
            }
        }));
    }

    fn on_event(&mut self, ev: EngineEvent, ctx: &mut Context<Self>) {
        self.events.saw(&ev);
        match ev.kind.as_str() {
            "container" => {
                let id = &ev.actor.id;
                let name = ev.actor.attributes.as_ref().and_then(|a| a.get("name"));
                let table = self.publisher.current().containers.clone();
                let ours = ev.action == "create" && self.containers.is_creating(id);
                if !ours && event_needs_list(&ev.action, table.by_id(id), name.map(String::as_str))
                {
                    self.caches.forget_container(id);
                    if ev.action == "update" {
                        // What it reserves changed: inspect it again once listed.
                        self.containers.forget_resources(id);
                    }
                    self.list_later(id.clone(), ctx);
                }
            }
            "image" | "network" | "volume" => {
                self.caches.forget_images();
                self.schedule_refresh(ctx, EVENT_DEBOUNCE);
            }
            _ => {}
        }
        if let Some(out) = &self.outlets.events {
            let msg = NodeEvent {
                addr: self.addr.clone(),
                event: ev,
            };
            if out.try_send(msg).is_err() {
                tracing::debug!(node = %self.addr, "events hub full, event dropped");
            }
        }
    }
}

impl StreamHandler<Result<EngineEvent, EngineError>> for NodeActor {
    fn handle(&mut self, item: Result<EngineEvent, EngineError>, ctx: &mut Context<Self>) {
        match item {
            Ok(ev) => self.on_event(ev, ctx),
            Err(e) => tracing::debug!(node = %self.addr, error = %e, "event stream error"),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The stream ended: the engine restarted, or went away. A refresh tells which, and
        // reconnects the stream when the engine answers again.
        self.events.set_connected(false);
        if !self.removed {
            metrics::node_events_reconnect(&self.addr);
            self.schedule_refresh(ctx, EVENTS_RETRY.min(self.config.refresh_min));
        }
    }
}
