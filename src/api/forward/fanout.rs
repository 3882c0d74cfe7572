//! Asking several nodes: choosing them, calling a node's actor, asking every one at once
//! and merging the answers (`ask_all`: the successes, or the worst error), and waiting
//! until a node publishes a change it made. Used by the image, network, volume, system and
//! prune routes; merged progress streams are `progress`.

use crate::api::error::ApiError;
use actix_web::HttpResponse;
use bytes::Bytes;
use serde_json::Value;
use shoal_actors::cluster::{ClusterRead, NodeHandle, NodeRead};
use shoal_actors::node::{Health, NodeSnapshot, ObjectCall, ObjectOp, RefreshNode, SyncOffer};
use std::time::Duration;

/// How long a change waits for its node to publish it (read-your-writes).
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// The healthy nodes, in the order users see them.
pub fn healthy(read: &ClusterRead) -> impl Iterator<Item = (usize, &NodeRead)> {
    read.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.snapshot.health == Health::Healthy)
}

pub fn no_node() -> ApiError {
    ApiError::NoNode("no healthy node to send this to".into())
}

/// Asks one node's actor for an engine call; answers the engine's status and body.
pub async fn call(node: &NodeRead, op: ObjectOp) -> Result<(u16, Bytes), ApiError> {
    shoal_actors::metrics::queued("node", &node.handle.addr);
    Ok(node.handle.actor.send(ObjectCall(op)).await??)
}

/// An engine answer as Shoal's: success passes through, an error becomes `ApiError`.
pub fn pass(status: u16, body: Bytes) -> Result<HttpResponse, ApiError> {
    if (200..300).contains(&status) {
        let code = actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::OK);
        Ok(HttpResponse::build(code)
            .content_type("application/json")
            .body(body))
    } else {
        Err(engine_error(status, &body))
    }
}

pub fn engine_error(status: u16, body: &[u8]) -> ApiError {
    ApiError::EngineAnswer {
        status,
        message: shoal_actors::engine::error_message(body),
    }
}

/// What several nodes answered to one question: the successes (status and body) with
/// their node, and the failures (an engine's refusal, or no answer) with theirs.
pub struct Gathered<'a> {
    pub answers: Vec<(&'a NodeRead, u16, Bytes)>,
    pub failures: Vec<(&'a NodeRead, ApiError)>,
}

/// Asks every node of `nodes` at once; `ask` makes one node's call and answers the engine's
/// status and body. A 2xx answer is kept with its node; any other, or a failure to get
/// one, is a failure of that node, logged with `what`.
pub async fn ask_all<'a, F, Fut>(nodes: &[&'a NodeRead], what: &str, ask: F) -> Gathered<'a>
where
    F: Fn(&'a NodeRead) -> Fut,
    Fut: std::future::Future<Output = Result<(u16, Bytes), ApiError>>,
{
    let answers =
        futures_util::future::join_all(nodes.iter().map(|n| async { (*n, ask(n).await) })).await;
    let mut out = Gathered {
        answers: Vec::new(),
        failures: Vec::new(),
    };
    for (node, answer) in answers {
        match answer {
            Ok((status, body)) if (200..300).contains(&status) => {
                out.answers.push((node, status, body))
            }
            Ok((status, body)) => out.failures.push((node, engine_error(status, &body))),
            Err(e) => {
                tracing::warn!(node = %node.name, error = %e, "{what} failed on a node");
                out.failures.push((node, e));
            }
        }
    }
    out
}

impl<'a> Gathered<'a> {
    /// The successes; when there is none, the worst failure ([`worst`]), or `none` when no
    /// node was asked.
    pub fn or_worst(
        self,
        none: impl FnOnce() -> ApiError,
    ) -> Result<Vec<(&'a NodeRead, u16, Bytes)>, ApiError> {
        if self.answers.is_empty() {
            return Err(worst(self.failures.into_iter().map(|(_, e)| e), none));
        }
        Ok(self.answers)
    }
}

/// The first error that is not a 404, else the first error: what a fan-out answers when
/// no node succeeded.
pub fn worst(
    errors: impl IntoIterator<Item = ApiError>,
    not_found: impl FnOnce() -> ApiError,
) -> ApiError {
    let mut first = None;
    for e in errors {
        let is_404 = matches!(&e, ApiError::EngineAnswer { status: 404, .. });
        if !is_404 {
            return e;
        }
        first.get_or_insert(e);
    }
    first.unwrap_or_else(not_found)
}

/// Classic Swarm's `"Node"` object for list entries.
pub fn node_value(node: &NodeRead) -> Value {
    let facts = node.snapshot.facts.as_deref();
    serde_json::json!({
        "ID": facts.map(|f| f.id.clone()).unwrap_or_default(),
        "IP": node.handle.addr.host(),
        "Addr": node.handle.addr.to_string(),
        "Name": node.name,
    })
}

/// `value` (an object) with a `"Node"` field.
pub fn with_node(mut value: Value, node: &NodeRead) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert("Node".into(), node_value(node));
    }
    value
}

/// Sums prune and `df`-like reports: numbers add up, arrays are joined, `null`s are
/// skipped, anything else keeps the first value seen.
pub fn merge_reports(reports: impl IntoIterator<Item = Value>) -> Value {
    let mut out = serde_json::Map::new();
    for report in reports {
        let Value::Object(map) = report else { continue };
        for (k, v) in map {
            match (out.get_mut(&k), v) {
                (_, Value::Null) => {
                    out.entry(k).or_insert(Value::Null);
                }
                (Some(Value::Number(have)), Value::Number(n)) => {
                    let sum = have.as_i64().unwrap_or(0) + n.as_i64().unwrap_or(0);
                    *have = sum.into();
                }
                (Some(Value::Array(have)), Value::Array(more)) => have.extend(more),
                (Some(slot @ Value::Null), v) => *slot = v,
                (Some(_), _) => {}
                (None, v) => {
                    out.insert(k, v);
                }
            }
        }
    }
    Value::Object(out)
}

/// Waits until `node` publishes a snapshot where `done` holds, asking it to refresh while
/// it does not: a client's next call after a change must see the change. Gives up quietly
/// after `PUBLISH_WAIT` (the change is made; only the lists lag).
pub async fn await_published(node: &NodeHandle, done: impl Fn(&NodeSnapshot) -> bool) {
    let mut rx = node.state.clone();
    let deadline = actix_rt::time::Instant::now() + PUBLISH_WAIT;
    loop {
        if done(&rx.borrow_and_update()) {
            tracing::debug!(node = %node.addr, "change published");
            // And placed with: the next create must see it (a committed image pulls its run
            // to this node).
            let synced = node.actor.send(SyncOffer);
            if tokio::time::timeout_at(deadline, synced).await.is_err() {
                tracing::debug!(node = %node.addr, "offer not delivered in time");
            } else {
                tracing::debug!(node = %node.addr, "offer delivered");
            }
            return;
        }
        // A refresh already under way may have listed before the change: ask again.
        let _ = node.actor.try_send(RefreshNode);
        let step = actix_rt::time::sleep(Duration::from_millis(500));
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = step => {}
        }
        if actix_rt::time::Instant::now() > deadline {
            tracing::debug!(node = %node.addr, "change not published in time");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_sum_and_join() {
        let a = serde_json::json!({"ImagesDeleted":[{"Deleted":"a"}],"SpaceReclaimed":5});
        let b = serde_json::json!({"ImagesDeleted":null,"SpaceReclaimed":7});
        let c = serde_json::json!({"ImagesDeleted":[{"Deleted":"c"}],"SpaceReclaimed":1});
        let m = merge_reports([a, b, c]);
        assert_eq!(m["SpaceReclaimed"], 13);
        assert_eq!(m["ImagesDeleted"].as_array().unwrap().len(), 2);
    }
}
