//! The `ExecRegistry`: the tiny actor that remembers which node holds which exec, since
//! the engines do not say which container an exec belongs to without being asked. The exec
//! routes record and ask it; the hijack front asks it for an upgraded `exec start`.
//!
//! With an authorization policy it also remembers the container of each exec created
//! through Shoal (`RecordExecContainer`, sent by the guard): an exec belongs to its
//! container's tenant, and the guard asks (`ExecContainer`) before a tenant may inspect,
//! start or resize one.

use actix::prelude::*;
use shoal_actors::engine::EngineAddr;
use std::collections::{HashMap, VecDeque};

/// Execs remembered at most; the oldest is forgotten first (and found again on demand).
const EXEC_CAPACITY: usize = 65_536;

/// Owns the `exec ID → node` and `exec ID → container` maps.
#[derive(Default)]
pub struct ExecRegistry {
    nodes: HashMap<String, EngineAddr>,
    containers: HashMap<String, String>,
    /// Every exec either map knows, oldest first.
    order: VecDeque<String>,
}

impl ExecRegistry {
    /// Notes a new exec, forgetting the oldest past the capacity.
    fn remember(&mut self, id: String) {
        self.order.push_back(id);
        while self.order.len() > EXEC_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.nodes.remove(&old);
                self.containers.remove(&old);
            }
        }
    }

    fn known(&self, id: &str) -> bool {
        self.nodes.contains_key(id) || self.containers.contains_key(id)
    }
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

/// Sent by the authorization guard after an exec create through Shoal succeeded: this exec
/// runs in that container (its full ID).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordExecContainer {
    pub id: String,
    pub container: String,
}

/// Sent by the authorization guard: the container (full ID) of an exec created through
/// Shoal, if recorded.
#[derive(Debug, Message)]
#[rtype(result = "Option<String>")]
pub struct ExecContainer {
    pub id: String,
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
        let new = !self.known(&msg.id);
        self.nodes.insert(msg.id.clone(), msg.node);
        if new {
            self.remember(msg.id);
        }
    }
}

impl Handler<RecordExecContainer> for ExecRegistry {
    type Result = ();

    fn handle(&mut self, msg: RecordExecContainer, _: &mut Context<Self>) {
        let new = !self.known(&msg.id);
        self.containers.insert(msg.id.clone(), msg.container);
        if new {
            self.remember(msg.id);
        }
    }
}

impl Handler<ExecContainer> for ExecRegistry {
    type Result = Option<String>;

    fn handle(&mut self, msg: ExecContainer, _: &mut Context<Self>) -> Self::Result {
        self.containers.get(&msg.id).cloned()
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

    #[actix::test]
    async fn remembers_the_container_of_an_exec_until_it_ages_out() {
        let reg = ExecRegistry::default().start();
        let owner = |id: &str| reg.send(ExecContainer { id: id.into() });
        reg.send(RecordExec {
            id: "e".into(),
            node: addr(1),
        })
        .await
        .unwrap();
        assert_eq!(
            owner("e").await.unwrap(),
            None,
            "found by a search: no owner"
        );
        reg.send(RecordExecContainer {
            id: "e".into(),
            container: "c1".into(),
        })
        .await
        .unwrap();
        assert_eq!(owner("e").await.unwrap().as_deref(), Some("c1"));
        assert_eq!(
            reg.send(LocateExec { id: "e".into() }).await.unwrap(),
            Some(addr(1))
        );
        for i in 0..EXEC_CAPACITY {
            reg.send(RecordExecContainer {
                id: format!("x{i}"),
                container: "c2".into(),
            })
            .await
            .unwrap();
        }
        assert_eq!(owner("e").await.unwrap(), None);
        assert_eq!(reg.send(LocateExec { id: "e".into() }).await.unwrap(), None);
        assert_eq!(owner("x9").await.unwrap().as_deref(), Some("c2"));
    }
}
