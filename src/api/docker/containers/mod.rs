//! Container routes (a hijacked attach is the connection gate's, `api::forward::hijack`):
//! `create` parses a create and awaits the create flow; `list` reads the snapshots;
//! `lifecycle` forwards the calls on one container to its node; `exec` creates and locates
//! execs; `attach_ws` relays the WebSocket attach.

pub mod attach_ws;
pub mod create;
pub mod exec;
pub mod lifecycle;
pub mod list;
