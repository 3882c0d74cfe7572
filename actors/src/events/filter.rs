//! Which events a subscriber wants: Docker's `/events` filters, matched as dockerd matches
//! them (`daemon/events/filter.go`), plus `node` for Shoal's node name.
//!
//! Pure: the hub calls `EventFilter::matches` for every event and every subscriber, so it
//! allocates nothing and compiles nothing per event.

use super::event::HubEvent;
use std::collections::{BTreeMap, HashSet};

/// Filter keys `/events` accepts: dockerd's, of which `node` means the Shoal node.
pub const EVENT_FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Keys matched like dockerd's `fuzzyMatchName`: a prefix of the actor's ID, or of its
/// `name` attribute.
const NAME_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "network",
    "plugin",
    "secret",
    "service",
    "volume",
];

/// Event names dockerd matches by prefix (`health_status: healthy`, `exec_start: sh`).
const PREFIX_EVENTS: &[&str] = &["health_status", "exec_create", "exec_start"];

/// A parsed `filters` parameter: key → accepted values (any value may match; every key
/// must). Empty keys are absent, so an empty filter takes everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    keys: BTreeMap<String, HashSet<String>>,
    /// `event` values are matched by prefix (dockerd's #25798).
    event_prefix: bool,
}

impl EventFilter {
    /// From key → values, as the API parsed them (keys already checked against
    /// `EVENT_FILTERS`).
    pub fn new(keys: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        let keys: BTreeMap<String, HashSet<String>> = keys
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        let event_prefix = keys
            .get("event")
            .is_some_and(|vs| PREFIX_EVENTS.iter().any(|p| vs.contains(*p)));
        EventFilter { keys, event_prefix }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn matches(&self, ev: &HubEvent) -> bool {
        self.keys.iter().all(|(key, values)| match key.as_str() {
            "type" => values.contains(&ev.event.kind),
            "event" => {
                values.contains(&ev.event.action)
                    || (self.event_prefix && values.iter().any(|v| ev.event.action.starts_with(v)))
            }
            // Engines behind Shoal are standalone: every event is local.
            "scope" => values.contains("local"),
            "image" => image_matches(values, ev),
            "label" => labels_match(values, ev),
            "node" => {
                let n = &ev.node;
                values.contains(&n.name)
                    || values.contains(&n.addr)
                    || (!n.id.is_empty() && values.contains(&n.id))
            }
            k if NAME_KEYS.contains(&k) => name_matches(values, ev),
            // Unknown keys were refused by the API; a filter built by hand with one takes
            // nothing rather than everything.
            _ => false,
        })
    }
}

fn attr<'a>(ev: &'a HubEvent, key: &str) -> Option<&'a str> {
    ev.event
        .actor
        .attributes
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// dockerd's `fuzzyMatchName`: the actor's ID or `name` attribute, exactly or by prefix.
/// Shoal adds `node/name` (and `/node/name`), the container names it shows in lists.
fn name_matches(values: &HashSet<String>, ev: &HubEvent) -> bool {
    let id = ev.event.actor.id.as_str();
    let name = attr(ev, "name").unwrap_or("");
    values.iter().any(|v| {
        if let Some((node, bare)) = v.trim_start_matches('/').split_once('/') {
            return node == ev.node.name && name == bare;
        }
        id.starts_with(v.as_str()) || (!name.is_empty() && name.starts_with(v.as_str()))
    })
}

/// dockerd's `matchImage`: the actor ID or image name (the `image` attribute; `name` for
/// image events), as is or without its tag.
fn image_matches(values: &HashSet<String>, ev: &HubEvent) -> bool {
    let id = ev.event.actor.id.as_str();
    let name_attr = if ev.event.kind == "image" {
        "name"
    } else {
        "image"
    };
    let name = attr(ev, name_attr).unwrap_or("");
    [id, name]
        .iter()
        .filter(|s| !s.is_empty())
        .any(|s| values.contains(*s) || values.contains(strip_tag(s)))
}

/// `busybox:1.36` → `busybox`, `docker.io/library/busybox@sha256:..` → `busybox`; an ID
/// (`sha256:...`) is left alone.
pub(crate) fn strip_tag(reference: &str) -> &str {
    if reference.starts_with("sha256:") {
        return reference;
    }
    let name = match reference.split_once('@') {
        Some((name, _)) => name,
        None => {
            let last = reference.rfind('/').map_or(0, |i| i + 1);
            match reference[last..].find(':') {
                Some(i) => &reference[..last + i],
                None => reference,
            }
        }
    };
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
}

/// dockerd's `MatchKVList`: every value (`key` or `key=value`) must hold.
fn labels_match(values: &HashSet<String>, ev: &HubEvent) -> bool {
    values.iter().all(|want| match want.split_once('=') {
        Some((k, v)) => attr(ev, k) == Some(v),
        None => attr(ev, want).is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineAddr;
    use crate::events::event::NodeFields;
    use crate::node::EngineEvent;
    use bytes::Bytes;
    use std::sync::Arc;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> HubEvent {
        let raw = serde_json::json!({
            "Type": kind, "Action": action,
            "Actor": {"ID": id, "Attributes": attrs.iter().cloned().collect::<BTreeMap<_, _>>()},
            "timeNano": 1,
        })
        .to_string();
        let mut e: EngineEvent = serde_json::from_str(&raw).unwrap();
        e.raw = Bytes::from(raw);
        let addr = EngineAddr::Tcp {
            host: "10.0.0.1".into(),
            port: 2375,
        };
        let node = Arc::new(NodeFields::new("n1".into(), "NODEID".into(), &addr));
        HubEvent::from_engine(e, node).unwrap()
    }

    fn f(pairs: &[(&str, &[&str])]) -> EventFilter {
        EventFilter::new(pairs.iter().map(|(k, vs)| {
            (
                k.to_string(),
                vs.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            )
        }))
    }

    fn web() -> HubEvent {
        ev(
            "container",
            "start",
            "abcdef123",
            &[
                ("name", "web"),
                ("image", "busybox:1.36"),
                ("tier", "front"),
            ],
        )
    }

    #[test]
    fn empty_filter_takes_everything() {
        assert!(f(&[]).matches(&web()));
        assert!(f(&[("type", &[])]).is_empty());
    }

    #[test]
    fn type_and_event_are_exact_except_the_prefixed_events() {
        assert!(f(&[("type", &["container", "image"])]).matches(&web()));
        assert!(!f(&[("type", &["image"])]).matches(&web()));
        assert!(f(&[("event", &["start"])]).matches(&web()));
        assert!(!f(&[("event", &["sta"])]).matches(&web()));
        let hs = ev("container", "health_status: healthy", "abc", &[]);
        assert!(f(&[("event", &["health_status"])]).matches(&hs));
        assert!(!f(&[("event", &["die"])]).matches(&hs));
    }

    #[test]
    fn container_by_id_prefix_name_or_node_and_name() {
        for v in ["abcdef123", "abc", "web", "n1/web", "/n1/web"] {
            assert!(f(&[("container", &[v])]).matches(&web()), "{v}");
        }
        for v in ["bcd", "db", "n2/web", "/n1/db"] {
            assert!(!f(&[("container", &[v])]).matches(&web()), "{v}");
        }
    }

    #[test]
    fn image_by_name_with_or_without_tag() {
        assert!(f(&[("image", &["busybox"])]).matches(&web()));
        assert!(f(&[("image", &["busybox:1.36"])]).matches(&web()));
        assert!(!f(&[("image", &["busybox:latest"])]).matches(&web()));
        let pull = ev(
            "image",
            "pull",
            "docker.io/library/alpine:3",
            &[("name", "docker.io/library/alpine:3")],
        );
        assert!(f(&[("image", &["alpine"])]).matches(&pull));
        assert!(!f(&[("image", &["busybox"])]).matches(&pull));
    }

    #[test]
    fn labels_must_all_hold() {
        assert!(f(&[("label", &["tier"])]).matches(&web()));
        assert!(f(&[("label", &["tier=front", "name=web"])]).matches(&web()));
        assert!(!f(&[("label", &["tier=front", "zone"])]).matches(&web()));
        assert!(!f(&[("label", &["tier=back"])]).matches(&web()));
    }

    #[test]
    fn node_by_name_address_or_engine_id() {
        for v in ["n1", "10.0.0.1:2375", "NODEID"] {
            assert!(f(&[("node", &[v])]).matches(&web()), "{v}");
        }
        assert!(!f(&[("node", &["n2"])]).matches(&web()));
        assert!(!f(&[("node", &["abc"])]).matches(&web()));
    }

    #[test]
    fn every_key_must_match() {
        assert!(f(&[("type", &["container"]), ("node", &["n1"])]).matches(&web()));
        assert!(!f(&[("type", &["container"]), ("node", &["n2"])]).matches(&web()));
        assert!(f(&[("scope", &["local"])]).matches(&web()));
        assert!(!f(&[("scope", &["swarm"])]).matches(&web()));
        assert!(!f(&[("colour", &["red"])]).matches(&web()));
    }

    #[test]
    fn tags_and_registries_are_stripped() {
        assert_eq!(strip_tag("busybox:1"), "busybox");
        assert_eq!(
            strip_tag("localhost:5000/busybox:1"),
            "localhost:5000/busybox"
        );
        assert_eq!(
            strip_tag("localhost:5000/busybox"),
            "localhost:5000/busybox"
        );
        assert_eq!(strip_tag("docker.io/library/busybox@sha256:ab"), "busybox");
        assert_eq!(strip_tag("sha256:abcd"), "sha256:abcd");
    }
}
