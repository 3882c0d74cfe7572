//! The `ExecRegistry`: the tiny actor that remembers which node holds which exec, since
//! the engines do not say which container an exec belongs to without being asked. The exec
//! routes record and ask it; the hijack front asks it for an upgraded `exec start`.

use actix::prelude::*;
use shoal_actors::engine::EngineAddr;
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
