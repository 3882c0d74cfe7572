//! Engine events: what one looks like on the wire, and which subscribers want it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::util::{labels_match, Filters};

/// One event as `/events` sends it. Field order follows dockerd, legacy fields first.
#[derive(Debug, Clone, Serialize)]
pub struct SimEvent {
    /// Legacy `status`/`id`/`from`: dockerd fills them for container and image events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: &'static str,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl SimEvent {
    /// A container event; `attributes` holds the labels, `image` and `name` like dockerd.
    pub fn container(
        action: &str,
        id: &str,
        image: &str,
        attributes: BTreeMap<String, String>,
        time_nano: i64,
    ) -> Self {
        SimEvent {
            status: Some(action.to_string()),
            id: Some(id.to_string()),
            from: Some(image.to_string()),
            typ: "container".to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local",
            time: time_nano / 1_000_000_000,
            time_nano,
        }
    }

    /// Any other event (image pulls, benchmark load).
    pub fn other(
        typ: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
        time_nano: i64,
    ) -> Self {
        let legacy = typ == "image";
        SimEvent {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: None,
            typ: typ.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local",
            time: time_nano / 1_000_000_000,
            time_nano,
        }
    }

    /// Whether an `/events` subscriber with these filters wants this event.
    pub fn matches(&self, f: &Filters) -> bool {
        let attr = |k: &str| self.actor.attributes.get(k).map(String::as_str);
        let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
            f.get(key).is_none_or(|vs| vs.iter().any(|v| pred(v)))
        };
        any("type", &|v| v == self.typ)
            && any("event", &|v| {
                v == self.action || self.action.starts_with(&format!("{v}:"))
            })
            && any("container", &|v| {
                self.typ == "container" && (self.actor.id.starts_with(v) || attr("name") == Some(v))
            })
            && any("image", &|v| {
                let n = crate::util::normalize_image(v);
                attr("image").is_some_and(|i| i == v || crate::util::normalize_image(i) == n)
                    || (self.typ == "image" && (attr("name") == Some(v) || self.actor.id == v))
            })
            && f.get("label").is_none_or(|w| {
                labels_match(
                    self.actor
                        .attributes
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                    w,
                )
            })
    }
}
