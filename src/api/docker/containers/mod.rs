//! Container routes (create is `api::create`, attach is the connection gate's, `api::hijack`):
//! `list` reads the snapshots; `lifecycle` forwards the calls on one container to its node;
//! `exec` creates and locates execs; `attach_ws` relays the WebSocket attach.

pub mod attach_ws;
pub mod exec;
pub mod lifecycle;
pub mod list;
