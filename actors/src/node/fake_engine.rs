//! A fake engine for actor tests: answers the calls a NodeActor makes from a table the test
//! edits (containers, being down or answering garbage), records every path asked, and
//! streams the events the test pushes. Shared between threads, so a ClusterActor can build
//! nodes on its arbiters with it.

use crate::engine::{Engine, EngineAddr, EngineError, EngineStream, PostRequest};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// How the fake engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// Every call fails to connect, at once.
    Down,
    /// `/info` answers something that is not JSON.
    Garbage,
}

#[derive(Debug)]
pub struct FakeState {
    pub name: String,
    pub mode: Mode,
    /// Container IDs and their state (`running`, `exited`).
    pub containers: Vec<(String, String)>,
    /// Every path asked, in order.
    pub calls: Vec<String>,
    events: Option<mpsc::UnboundedSender<Result<Bytes, EngineError>>>,
}

/// The test's handle on a fake engine; clones share it.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    addr: EngineAddr,
    state: Arc<Mutex<FakeState>>,
}

impl FakeEngine {
    pub fn new(addr: &str, name: &str) -> Self {
        FakeEngine {
            addr: addr.parse().expect("test address"),
            state: Arc::new(Mutex::new(FakeState {
                name: name.to_string(),
                mode: Mode::Up,
                containers: Vec::new(),
                calls: Vec::new(),
                events: None,
            })),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state().mode = mode;
    }

    pub fn add_container(&self, id: &str, state: &str) {
        self.state()
            .containers
            .push((id.to_string(), state.to_string()));
    }

    /// Paths asked so far that start with `prefix`.
    pub fn calls_to(&self, prefix: &str) -> Vec<String> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Sends one event line down the open event stream; false when none is open.
    pub fn push_event(&self, line: serde_json::Value) -> bool {
        let state = self.state();
        let Some(tx) = &state.events else {
            return false;
        };
        tx.send(Ok(Bytes::from(format!("{line}\n")))).is_ok()
    }

    pub fn events_open(&self) -> bool {
        self.state()
            .events
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    fn answer(&self, path: &str) -> Result<Bytes, EngineError> {
        let mut st = self.state();
        st.calls.push(path.to_string());
        let addr = self.addr.to_string();
        if st.mode == Mode::Down {
            return Err(EngineError::Connect {
                addr,
                reason: "connection refused".into(),
            });
        }
        let summary = |(id, state): &(String, String)| {
            json!({"Id": id, "Names": [format!("/{id}")], "Image": "busybox",
                   "State": state, "Status": "Up 3 seconds", "Created": 1})
        };
        let body = match path.split('?').next().unwrap_or(path) {
            "/_ping" | "/events" => return Ok(Bytes::from_static(b"OK")),
            "/info" if st.mode == Mode::Garbage => return Ok(Bytes::from_static(b"<html>")),
            "/info" => json!({"ID": format!("ID-{}", st.name), "Name": st.name, "NCPU": 2,
                               "MemTotal": 1u64 << 30, "OSType": "linux"}),
            "/version" => json!({"Version": "27.0.0", "ApiVersion": "1.45"}),
            "/containers/json" => {
                // A filtered list names its IDs in the (escaped) query; IDs need no escaping.
                let filtered = path.contains("filters=");
                let list: Vec<_> = st
                    .containers
                    .iter()
                    .filter(|c| !filtered || path.contains(&c.0))
                    .map(summary)
                    .collect();
                json!(list)
            }
            "/images/json" | "/networks" => json!([]),
            "/volumes" => json!({"Volumes": null}),
            p if p.starts_with("/containers/") && p.ends_with("/json") => {
                json!({"HostConfig": {"Memory": 64}, "Config": {}})
            }
            _ => {
                return Err(EngineError::Status {
                    addr,
                    path: path.to_string(),
                    status: 404,
                    message: "page not found".into(),
                })
            }
        };
        Ok(Bytes::from(body.to_string()))
    }
}

impl Engine for FakeEngine {
    fn get(&self, path: &str) -> LocalBoxFuture<'static, Result<Bytes, EngineError>> {
        let answer = self.answer(path);
        Box::pin(async move { answer })
    }

    fn post(&self, req: PostRequest) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        let answer = self.answer(&req.path).map(|b| (200, b));
        Box::pin(async move { answer })
    }

    fn delete(&self, path: &str) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        let answer = self.answer(path).map(|b| (204, b));
        Box::pin(async move { answer })
    }

    fn events(&self, query: &str) -> LocalBoxFuture<'static, Result<EngineStream, EngineError>> {
        let opened = self.answer(&format!("/events{query}")).map(|_| {
            let (tx, mut rx) = mpsc::unbounded_channel();
            self.state().events = Some(tx);
            let stream: EngineStream =
                Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
            stream
        });
        Box::pin(async move { opened })
    }

    fn addr(&self) -> &EngineAddr {
        &self.addr
    }
}
