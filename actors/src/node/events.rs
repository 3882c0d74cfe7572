//! The engine's own `/events` stream: JSON objects one per line, split and parsed here, and
//! where a broken stream resumes so no event is lost between the old stream and the new.

use bytes::{Buf, Bytes, BytesMut};
use serde::Deserialize;
use std::collections::HashMap;

/// The fields of an engine event the NodeActor acts on. The raw line is kept so it can be
/// passed on unchanged.
#[derive(Debug, Clone, Deserialize)]
pub struct EngineEvent {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(rename = "Action", default)]
    pub action: String,
    #[serde(rename = "Actor", default)]
    pub actor: EventActor,
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
    #[serde(skip)]
    pub raw: Bytes,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventActor {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: Option<HashMap<String, String>>,
}

/// Whether an event can change nothing a node keeps, so the node need not see it (it
/// still goes to the hub): a container event that only says something was read or run in
/// the container (`top`, `exec_*`, `attach`, ...), or an event of a kind the node keeps
/// nothing of (plugin, daemon, ...).
pub(crate) fn inert(ev: &EngineEvent) -> bool {
    match ev.kind.as_str() {
        "container" => crate::node::listing::action_changes_no_list(&ev.action),
        "image" | "network" | "volume" => false,
        _ => true,
    }
}

/// Splits a byte stream into lines and parses each. A line that is not an event is skipped:
/// one odd line must not end the stream.
#[derive(Default)]
pub(crate) struct EventDecoder {
    buf: BytesMut,
}

/// Longest line kept while waiting for its end; an engine that sends more without a newline
/// is sending garbage, and the buffer is dropped.
const MAX_LINE: usize = 1024 * 1024;

impl EventDecoder {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<EngineEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let line = self.buf.split_to(pos + 1).freeze();
            let trimmed = line.slice(..pos);
            if trimmed.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            if let Ok(mut ev) = serde_json::from_slice::<EngineEvent>(&trimmed) {
                ev.raw = trimmed;
                out.push(ev);
            }
        }
        if self.buf.len() > MAX_LINE {
            self.buf.advance(self.buf.len());
        }
        out
    }
}

/// Where a node's event stream stands: whether one is open, and the time of the newest
/// event seen, so a reconnected stream asks from just past it.
#[derive(Debug, Default)]
pub(crate) struct EventCursor {
    connected: bool,
    /// `timeNano` of the newest event seen.
    last_nano: i64,
}

impl EventCursor {
    pub fn connected(&self) -> bool {
        self.connected
    }

    pub fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
    }

    /// `time_nano`: the newest `timeNano` of a read of the stream.
    pub fn saw(&mut self, time_nano: i64) {
        self.last_nano = self.last_nano.max(time_nano);
    }

    /// The query of the next `/events` call: from just past the last event seen, or empty
    /// (from now) when none was seen yet.
    pub fn since_query(&self) -> String {
        match self.last_nano {
            0 => String::new(),
            n => {
                let next = n + 1;
                format!(
                    "?since={}.{:09}",
                    next / 1_000_000_000,
                    next % 1_000_000_000
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_chunks_and_skips_garbage() {
        let mut d = EventDecoder::default();
        assert!(d.push(br#"{"Type":"container","Action":"st"#).is_empty());
        let evs = d.push(b"art\",\"Actor\":{\"ID\":\"abc\"}}\nnot json\n\n{\"Type\":\"image\"}\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].action, "start");
        assert_eq!(evs[0].actor.id, "abc");
        assert_eq!(evs[1].kind, "image");
    }

    #[test]
    fn a_reconnected_stream_resumes_past_the_last_event() {
        let mut c = EventCursor::default();
        assert_eq!(c.since_query(), "");
        let mut d = EventDecoder::default();
        let ev = d.push(b"{\"Type\":\"container\",\"timeNano\":1700000000999999999}\n");
        c.saw(ev[0].time_nano);
        assert_eq!(c.since_query(), "?since=1700000001.000000000");
    }
}
