//! One event as the hub fans it out: the engine's JSON line with the node fields added, and
//! the parsed fields the filters read.
//!
//! The engine's JSON is kept byte for byte; the hub only splices `,"node":{...}` in before
//! its closing brace, as classic Swarm added the node to each event. So fields Shoal does not
//! know about (newer engines add some) reach the client unchanged.

use crate::engine::EngineAddr;
use crate::node::{EngineEvent, Health};
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What changed about a node, as Shoal sees it (not the engine).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeChange {
    /// Discovery listed the engine; its NodeActor started.
    Joined,
    /// Discovery no longer lists the engine; its NodeActor stopped.
    Left,
    /// A refresh succeeded after the node was pending or unhealthy.
    Healthy { previous: Health },
    /// Refreshes failed `failure_retry` times in a row.
    Unhealthy { error: String },
}

/// The node an event came from, as classic Swarm showed it:
/// `"node": {"Name": ..., "Id": ..., "Addr": ..., "Ip": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeFields {
    /// The name Shoal shows for the node (`docker info`, `/node/container` names).
    #[serde(rename = "Name")]
    pub name: String,
    /// The engine's ID from `/info`; empty until the engine answered once.
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Addr")]
    pub addr: String,
    #[serde(rename = "Ip")]
    pub ip: String,
    /// `,"node":{...}}`: what replaces the engine JSON's closing brace. Rendered once per
    /// node, so adding the node to an event is a copy.
    #[serde(skip)]
    suffix: Bytes,
}

impl NodeFields {
    pub fn new(name: String, id: String, addr: &EngineAddr) -> Self {
        let ip = match addr {
            EngineAddr::Tcp { host, .. } => host.clone(),
            EngineAddr::Unix(_) => String::new(),
        };
        let mut f = NodeFields {
            name,
            id,
            addr: addr.to_string(),
            ip,
            suffix: Bytes::new(),
        };
        let mut suffix = b",\"node\":".to_vec();
        // A struct of strings always serializes.
        suffix.extend_from_slice(&serde_json::to_vec(&f).unwrap_or_default());
        suffix.push(b'}');
        f.suffix = Bytes::from(suffix);
        f
    }

    /// What the hub knows of a node before it has its name: the address stands in.
    pub fn from_addr(addr: &EngineAddr) -> Self {
        NodeFields::new(addr.to_string(), String::new(), addr)
    }
}

/// An event ready to send: `line` is the JSON object with the node fields and a newline.
#[derive(Debug)]
pub struct HubEvent {
    /// The engine's event as parsed (its `raw` is emptied: `line` holds the bytes).
    pub event: EngineEvent,
    pub node: Arc<NodeFields>,
    pub line: Bytes,
}

impl HubEvent {
    /// Adds the node fields to an engine event. `None` when the event's line is not a JSON
    /// object (an engine sending that is broken; the event is dropped, not guessed at).
    pub fn from_engine(mut event: EngineEvent, node: Arc<NodeFields>) -> Option<Self> {
        let raw = std::mem::take(&mut event.raw);
        let line = splice_node(&raw, &node)?;
        Some(HubEvent { event, node, line })
    }

    /// Shoal's own event for a change of one node.
    pub fn from_change(change: &NodeChange, node: Arc<NodeFields>, time_nano: i64) -> Self {
        let (action, attributes) = change_fields(change, &node);
        let actor_id = if node.id.is_empty() {
            node.addr.clone()
        } else {
            node.id.clone()
        };
        HubEvent::own("node", action, actor_id, attributes, node, time_nano)
    }

    /// An event Shoal makes itself (a node change, a rescheduled container), in Docker's
    /// shape, with the node fields added as to an engine's.
    pub fn own(
        kind: &str,
        action: &str,
        actor_id: String,
        attributes: BTreeMap<String, String>,
        node: Arc<NodeFields>,
        time_nano: i64,
    ) -> Self {
        let wire = ShoalEvent {
            kind,
            action,
            actor: ShoalActor {
                id: &actor_id,
                attributes: &attributes,
            },
            scope: "local",
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        };
        let raw = serde_json::to_vec(&wire).unwrap_or_default();
        let line = splice_node(&raw, &node).unwrap_or_default();
        let event = EngineEvent {
            kind: kind.to_string(),
            action: action.to_string(),
            actor: crate::node::EventActor {
                id: actor_id.clone(),
                attributes: Some(attributes.into_iter().collect()),
            },
            time_nano,
            raw: Bytes::new(),
        };
        HubEvent { event, node, line }
    }
}

/// The Docker event shape (`events.Message`) for the events Shoal makes itself.
#[derive(Serialize)]
struct ShoalEvent<'a> {
    #[serde(rename = "Type")]
    kind: &'a str,
    #[serde(rename = "Action")]
    action: &'a str,
    #[serde(rename = "Actor")]
    actor: ShoalActor<'a>,
    scope: &'a str,
    time: i64,
    #[serde(rename = "timeNano")]
    time_nano: i64,
}

#[derive(Serialize)]
struct ShoalActor<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Attributes")]
    attributes: &'a BTreeMap<String, String>,
}

/// Action and attributes of a node change. The actions are classic Swarm's
/// (`engine_connect`, `engine_reconnect`, `engine_disconnect`), plus `engine_join` and
/// `engine_leave` for discovery.
fn change_fields(
    change: &NodeChange,
    node: &NodeFields,
) -> (&'static str, BTreeMap<String, String>) {
    let mut attrs = BTreeMap::new();
    attrs.insert("name".to_string(), node.name.clone());
    attrs.insert("addr".to_string(), node.addr.clone());
    let health = |h: Health| h.to_string().to_ascii_lowercase();
    let action = match change {
        NodeChange::Joined => "engine_join",
        NodeChange::Left => "engine_leave",
        NodeChange::Healthy { previous } => {
            attrs.insert("health".to_string(), health(Health::Healthy));
            attrs.insert("previous".to_string(), health(*previous));
            if *previous == Health::Unhealthy {
                "engine_reconnect"
            } else {
                "engine_connect"
            }
        }
        NodeChange::Unhealthy { error } => {
            attrs.insert("health".to_string(), health(Health::Unhealthy));
            attrs.insert("error".to_string(), error.clone());
            "engine_disconnect"
        }
    };
    (action, attrs)
}

/// `{...}` → `{...,"node":{...}}`, the rest of the bytes untouched.
fn splice_node(raw: &[u8], node: &NodeFields) -> Option<Bytes> {
    let start = raw.iter().position(|b| !b.is_ascii_whitespace())?;
    let end = raw.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if raw[start] != b'{' || raw[end] != b'}' || end == start {
        return None;
    }
    let body = &raw[start..end];
    let empty = body[1..].iter().all(u8::is_ascii_whitespace);
    let mut out = BytesMut::with_capacity(body.len() + node.suffix.len() + 1);
    out.put_slice(if empty { b"{" } else { body });
    // An empty object takes the node without the leading comma.
    out.put_slice(if empty {
        &node.suffix[1..]
    } else {
        &node.suffix[..]
    });
    out.put_u8(b'\n');
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Arc<NodeFields> {
        let addr = EngineAddr::Tcp {
            host: "10.0.0.7".into(),
            port: 2375,
        };
        Arc::new(NodeFields::new("n1".into(), "AB:CD".into(), &addr))
    }

    fn engine_event(raw: &str) -> EngineEvent {
        let mut ev: EngineEvent = serde_json::from_str(raw).unwrap();
        ev.raw = Bytes::copy_from_slice(raw.as_bytes());
        ev
    }

    #[test]
    fn node_fields_are_added_and_the_engine_json_kept() {
        let raw = r#"{"status":"start","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web"}},"x-new":[1,2],"timeNano":5}"#;
        let ev = HubEvent::from_engine(engine_event(raw), node()).unwrap();
        let line = std::str::from_utf8(&ev.line).unwrap();
        assert!(line.ends_with("}\n"));
        assert!(line.starts_with(&raw[..raw.len() - 1]));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["node"]["Name"], "n1");
        assert_eq!(v["node"]["Id"], "AB:CD");
        assert_eq!(v["node"]["Addr"], "10.0.0.7:2375");
        assert_eq!(v["node"]["Ip"], "10.0.0.7");
        assert_eq!(v["x-new"][1], 2);
        assert!(ev.event.raw.is_empty());
    }

    #[test]
    fn empty_objects_and_trailing_space_splice_cleanly_and_non_objects_are_refused() {
        let n = node();
        let v: serde_json::Value =
            serde_json::from_slice(&splice_node(b" { } \r", &n).unwrap()).unwrap();
        assert_eq!(v["node"]["Name"], "n1");
        assert!(splice_node(b"[\"container\"]", &n).is_none());
        assert!(splice_node(b"}", &n).is_none());
        assert!(splice_node(b"  ", &n).is_none());
    }

    #[test]
    fn node_changes_render_as_docker_events() {
        let ev = HubEvent::from_change(
            &NodeChange::Unhealthy {
                error: "refused".into(),
            },
            node(),
            3_500_000_000,
        );
        let v: serde_json::Value = serde_json::from_slice(&ev.line).unwrap();
        assert_eq!(v["Type"], "node");
        assert_eq!(v["Action"], "engine_disconnect");
        assert_eq!(v["Actor"]["ID"], "AB:CD");
        assert_eq!(v["Actor"]["Attributes"]["name"], "n1");
        assert_eq!(v["Actor"]["Attributes"]["error"], "refused");
        assert_eq!(v["time"], 3);
        assert_eq!(v["timeNano"], 3_500_000_000i64);
        assert_eq!(v["node"]["Name"], "n1");
        assert_eq!(ev.event.action, "engine_disconnect");
        let back = HubEvent::from_change(
            &NodeChange::Healthy {
                previous: Health::Unhealthy,
            },
            node(),
            1,
        );
        assert_eq!(back.event.action, "engine_reconnect");
    }
}
