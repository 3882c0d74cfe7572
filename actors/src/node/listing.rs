//! Keeping a node's container table in step with its engine without listing the whole node
//! for every event: which events change what the engine lists, and which of several
//! overlapping lists has the last word on a container.
//!
//! A node of thousands of containers that got a full list per event spent most of Shoal's
//! time on one create (the engine's `create` event re-listed every container of the node).
//! Now an event asks for a list of its one container, and only when the table does not
//! already show what the event says: the table recorded a create, and the proxy's
//! read-your-writes list recorded a start, before their events arrive.

use super::ContainerEntry;
use std::collections::HashMap;

/// Whether a container event can change what the engine lists for the container, given
/// what the table shows for it now (`None`: not listed).
pub fn event_needs_list(action: &str, listed: Option<&ContainerEntry>, name: Option<&str>) -> bool {
    let state = listed.map(|e| e.state());
    match action {
        "create" => listed.is_none(),
        "destroy" => listed.is_some(),
        "start" | "unpause" => state != Some("running"),
        "pause" => state != Some("paused"),
        "die" | "stop" => state != Some("exited"),
        "rename" => match (listed, name) {
            (Some(e), Some(name)) => e.name() != name.trim_start_matches('/'),
            _ => true,
        },
        a if action_changes_no_list(a) => false,
        // kill, restart, update, oom, health_status, and whatever a newer engine adds.
        _ => true,
    }
}

/// Whether a container event's action never changes what the engine lists for the
/// container, whatever the table shows (a `top` or an `exec_start` reads or runs something
/// in it).
pub fn action_changes_no_list(action: &str) -> bool {
    matches!(
        action,
        "attach"
            | "detach"
            | "resize"
            | "top"
            | "export"
            | "copy"
            | "archive-path"
            | "extract-to-dir"
            | "commit"
    ) || action.starts_with("exec_")
}

/// Numbers the lists a node asks its engine for, so that of two lists that overlap the one
/// asked later wins, whichever answer arrives first: a node keeps several connections to its
/// engine, and answers can come back out of order.
#[derive(Debug, Default)]
pub struct ListOrder {
    last: u64,
    /// Number of the last full list taken.
    full: u64,
    /// Number of the last list taken for one container, where later than `full`.
    by_id: HashMap<String, u64>,
}

impl ListOrder {
    /// The number of a list about to be asked for.
    pub fn ask(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// Whether list `seq` may set what the table shows for container `id`; if so, it is
    /// recorded as the newest word on it.
    pub fn take_one(&mut self, id: &str, seq: u64) -> bool {
        if seq < self.full || self.by_id.get(id).is_some_and(|&s| s > seq) {
            return false;
        }
        self.by_id.insert(id.to_string(), seq);
        true
    }

    /// Whether full list `seq` may replace the table at all (an older full list may not),
    /// and the containers it must leave as they are (a later one-container list set them).
    pub fn take_full(&mut self, seq: u64) -> Option<Vec<String>> {
        if seq < self.full {
            return None;
        }
        self.full = seq;
        self.by_id.retain(|_, s| *s > seq);
        Some(self.by_id.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{ContainerSummary, ContainerSummaryStateEnum as State};

    fn entry(name: &str, state: State) -> ContainerEntry {
        ContainerEntry::new(ContainerSummary {
            id: Some("c1".into()),
            names: Some(vec![format!("/{name}")]),
            state: Some(state),
            ..Default::default()
        })
    }

    #[test]
    fn events_the_table_already_shows_need_no_list() {
        let running = entry("web", State::RUNNING);
        let created = entry("web", State::CREATED);
        assert!(!event_needs_list("create", Some(&created), None));
        assert!(event_needs_list("create", None, None));
        assert!(!event_needs_list("start", Some(&running), None));
        assert!(event_needs_list("start", Some(&created), None));
        assert!(event_needs_list("die", Some(&running), None));
        assert!(event_needs_list("destroy", Some(&running), None));
        assert!(!event_needs_list("destroy", None, None));
        assert!(!event_needs_list("exec_start: sh", Some(&running), None));
        assert!(!event_needs_list("rename", Some(&running), Some("/web")));
        assert!(event_needs_list("rename", Some(&running), Some("api")));
        assert!(event_needs_list("kill", Some(&running), None));
        assert!(event_needs_list(
            "health_status: healthy",
            Some(&running),
            None
        ));
    }

    #[test]
    fn the_list_asked_last_wins() {
        let mut o = ListOrder::default();
        let (a, b) = (o.ask(), o.ask());
        assert!(o.take_one("x", b));
        assert!(!o.take_one("x", a), "older answer arriving late");
        assert!(o.take_one("y", a));
        let full = o.ask();
        let c = o.ask();
        assert!(o.take_one("x", c));
        assert_eq!(o.take_full(full), Some(vec!["x".to_string()]));
        assert!(!o.take_one("y", b), "older than the full list");
        assert_eq!(o.take_full(a), None);
    }
}
