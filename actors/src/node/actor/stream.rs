//! The NodeActor's end of its engine's `/events` stream: opening it (from just past the
//! last event seen), handing each read's events to the EventsHub, what each event changes
//! in the node (a list of one container, the image caches), and reconnecting when it
//! breaks.
//!
//! The events of one read of the stream go to the hub as one message, straight from the
//! stream, before the node sees them: most events change nothing the node keeps (`top`,
//! `exec_*`, `attach`: one per `docker top` or `docker exec` through Shoal), and those
//! never reach the actor. Only the events that may change a table, and the time of the
//! newest (where a broken stream resumes), do.
//!
//! The hub's mailbox is bounded. When it is full the stream waits for room before it reads
//! on, instead of dropping: the engine's stream is held back (TCP does the rest), nothing
//! is lost, and the wait is counted (`shoal_events_hub_waits_total`).

use super::{NodeActor, NodeEvent, EVENTS_RETRY, EVENT_DEBOUNCE};
use crate::engine::{EngineAddr, EngineError};
use crate::metrics;
use crate::node::events::{inert, EngineEvent, EventDecoder};
use crate::node::listing::event_needs_list;
use actix::dev::SendError;
use actix::prelude::*;
use futures_util::StreamExt;

/// What the node itself takes from one read of its engine's event stream.
pub(super) struct EventNews {
    /// `timeNano` of the newest event of the read (0: none).
    newest: i64,
    /// The events that may change the node's tables or caches.
    changes: Vec<EngineEvent>,
}

impl EventNews {
    /// Splits off what the node needs from a read's events (copies of the few that may
    /// change a table); the events themselves go on to the hub.
    fn of(events: &[EngineEvent]) -> EventNews {
        EventNews {
            newest: events.iter().map(|e| e.time_nano).max().unwrap_or(0),
            changes: events.iter().filter(|e| !inert(e)).cloned().collect(),
        }
    }
}

/// Hands one read's events to the hub: at once when its mailbox has room, else once it
/// has (the stream waits meanwhile). Lost only when the hub is gone.
async fn hand_over(out: Option<Recipient<NodeEvent>>, addr: EngineAddr, events: Vec<EngineEvent>) {
    let Some(out) = out else {
        return;
    };
    if events.is_empty() {
        return;
    }
    let msg = NodeEvent { addr, events };
    match out.try_send(msg) {
        Ok(()) => {}
        Err(SendError::Full(msg)) => {
            metrics::event_hub_wait();
            // `send` waits for room, then for the hub to take it: rare, so the round
            // trip costs nothing in the common case.
            if out.send(msg).await.is_err() {
                metrics::event_dropped("hub_stopped");
            }
        }
        Err(SendError::Closed(_)) => metrics::event_dropped("hub_stopped"),
    }
}

impl NodeActor {
    pub(super) fn connect_events(&mut self, ctx: &mut Context<Self>) {
        self.events.set_connected(true);
        // After a break, ask from just past the last event seen, so none is lost between
        // the old stream and the new one.
        let open = self.engine.events(&self.events.since_query());
        ctx.spawn(open.into_actor(self).map(|result, act, ctx| match result {
            Ok(stream) => {
                let mut decoder = EventDecoder::default();
                let (out, addr) = (act.outlets.events.clone(), act.addr.clone());
                let news = stream
                    .map(move |chunk| chunk.map(|bytes| decoder.push(&bytes)))
                    .then(move |read| {
                        let (out, addr) = (out.clone(), addr.clone());
                        async move {
                            let events = read?;
                            let news = EventNews::of(&events);
                            hand_over(out, addr, events).await;
                            Ok(news)
                        }
                    })
                    // A read that held no whole line is nothing to the node.
                    .filter(|news: &Result<EventNews, EngineError>| {
                        std::future::ready(
                            news.as_ref()
                                .map_or(true, |n| n.newest != 0 || !n.changes.is_empty()),
                        )
                    });
                ctx.add_stream(news);
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

    fn on_news(&mut self, news: EventNews, ctx: &mut Context<Self>) {
        self.events.saw(news.newest);
        for ev in &news.changes {
            self.on_event(ev, ctx);
        }
    }

    fn on_event(&mut self, ev: &EngineEvent, ctx: &mut Context<Self>) {
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
    }
}

impl StreamHandler<Result<EventNews, EngineError>> for NodeActor {
    fn handle(&mut self, item: Result<EventNews, EngineError>, ctx: &mut Context<Self>) {
        match item {
            Ok(news) => self.on_news(news, ctx),
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
