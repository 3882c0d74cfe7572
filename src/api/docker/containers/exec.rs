//! Exec routes and the `ExecRegistry`, the tiny actor that remembers which node holds which
//! exec.
//!
//! An exec ID means nothing outside the engine that made it, and the engines do not say
//! which container an exec belongs to without being asked, so `POST /containers/{id}/exec`
//! records `exec ID → node` here (`RecordExec`) and `/exec/{id}/...` asks (`LocateExec`).
//! The registry is a cache, not a truth Shoal could lose: an exec it does not know (Shoal
//! restarted, or the entry aged out) is looked for on every healthy node with
//! `GET /exec/{id}/json`, and the answer recorded.
//!
//! Routes: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (detached or not upgraded;
//! the upgraded one is a hijack, see `hijack`), `POST /exec/{id}/resize`,
//! `GET /exec/{id}/json`.

use crate::api::forward::proxy::{self, Forward};
use crate::api::{ApiError, ApiState};
use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use shoal_actors::engine::{escape_param, EngineAddr};
use std::collections::{HashMap, VecDeque};

/// Execs remembered at most; the oldest is forgotten first (and found again on demand).
const EXEC_CAPACITY: usize = 65_536;

/// Owns the `exec ID → node` map.
#[derive(Default)]
pub struct ExecRegistry {
    nodes: HashMap<String, EngineAddr>,
    order: VecDeque<String>,
}

impl Actor for ExecRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
    }
}

/// Sent by the exec create handler (and after a search found an unknown exec): this exec
/// lives on that node.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordExec {
    pub id: String,
    pub node: EngineAddr,
}

/// Sent by the exec routes and the hijack front: which node holds this exec, if known.
#[derive(Debug, Message)]
#[rtype(result = "Option<EngineAddr>")]
pub struct LocateExec {
    pub id: String,
}

impl Handler<RecordExec> for ExecRegistry {
    type Result = ();

    fn handle(&mut self, msg: RecordExec, _: &mut Context<Self>) {
        if self.nodes.insert(msg.id.clone(), msg.node).is_none() {
            self.order.push_back(msg.id);
            while self.order.len() > EXEC_CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.nodes.remove(&old);
                }
            }
        }
    }
}

impl Handler<LocateExec> for ExecRegistry {
    type Result = Option<EngineAddr>;

    fn handle(&mut self, msg: LocateExec, _: &mut Context<Self>) -> Self::Result {
        self.nodes.get(&msg.id).cloned()
    }
}

/// The node holding exec `id`: from the registry, else by asking every healthy node.
pub async fn locate(state: &ApiState, id: &str) -> Result<EngineAddr, ApiError> {
    if let Some(node) = state.execs.send(LocateExec { id: id.to_string() }).await? {
        return Ok(node);
    }
    let read = state.read();
    let candidates: Vec<EngineAddr> = read
        .nodes
        .iter()
        .filter(|n| n.snapshot.health == shoal_actors::node::Health::Healthy)
        .map(|n| n.handle.addr.clone())
        .collect();
    let path = format!("/exec/{}/json", escape_param(id));
    let timeouts = state.timeouts;
    let asks = candidates.iter().map(|addr| {
        let path = path.clone();
        async move {
            proxy::probe(addr, &path, timeouts)
                .await
                .map(|ok| (ok, addr))
        }
    });
    for answer in futures_util::future::join_all(asks).await {
        if let Ok((true, addr)) = answer {
            state
                .execs
                .send(RecordExec {
                    id: id.to_string(),
                    node: addr.clone(),
                })
                .await?;
            return Ok(addr.clone());
        }
    }
    Err(ApiError::NotFound(format!("No such exec instance: {id}")))
}

/// `POST /containers/{id}/exec`: creates on the container's node, then records the exec.
pub async fn create(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (node, full_id) = proxy::owner(&state, proxy::param(&req, "id"))?;
    let target = proxy::engine_path(
        &req,
        &format!("/containers/{}/exec", escape_param(&full_id)),
    );
    let (status, headers, bytes) = proxy::exchange(&node, &req, &target, body).await?;
    if status.is_success() {
        #[derive(serde::Deserialize)]
        struct Created {
            #[serde(rename = "Id")]
            id: String,
        }
        if let Ok(created) = serde_json::from_slice::<Created>(&bytes) {
            state
                .execs
                .send(RecordExec {
                    id: created.id,
                    node: node.clone(),
                })
                .await?;
        }
    }
    Ok(proxy::whole_answer(status, &headers, bytes))
}

/// `POST /exec/{id}/start` without an upgrade, `POST /exec/{id}/resize`,
/// `GET /exec/{id}/json`: forwarded to the exec's node as they are.
pub async fn forward(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = (proxy::param(&req, "id"), proxy::param(&req, "action"));
    let node = locate(&state, id).await?;
    let target = proxy::engine_path(&req, &format!("/exec/{}/{action}", escape_param(id)));
    proxy::forward(Forward {
        node: &node,
        req: &req,
        path: &target,
        body,
        refresh: None,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> EngineAddr {
        EngineAddr::Tcp {
            host: "h".into(),
            port,
        }
    }

    #[actix::test]
    async fn remembers_execs_and_forgets_the_oldest_first() {
        let reg = ExecRegistry::default().start();
        reg.send(RecordExec {
            id: "a".into(),
            node: addr(1),
        })
        .await
        .unwrap();
        assert_eq!(
            reg.send(LocateExec { id: "a".into() }).await.unwrap(),
            Some(addr(1))
        );
        assert_eq!(reg.send(LocateExec { id: "b".into() }).await.unwrap(), None);
        for i in 0..EXEC_CAPACITY {
            reg.send(RecordExec {
                id: format!("x{i}"),
                node: addr(2),
            })
            .await
            .unwrap();
        }
        assert_eq!(reg.send(LocateExec { id: "a".into() }).await.unwrap(), None);
        assert_eq!(
            reg.send(LocateExec { id: "x1".into() }).await.unwrap(),
            Some(addr(2))
        );
    }
}
