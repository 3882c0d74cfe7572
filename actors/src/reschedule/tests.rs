//! The rescheduler's jobs against fake engines (`create::fake`) with a real
//! SchedulerActor: a move makes one copy with the original's name, config and swarm id,
//! never on the failed node, started when the original ran; two managers' worth of
//! concurrent moves through one ledger make one copy; a failed move is released and tried
//! again; the stale original is removed, or renamed when it cannot be.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use bytes::Bytes;

use super::jobs::{clear_stale, move_container, MoveOutcome, StaleOutcome};
use super::ledger::{Entry, Ledger, MemoryLedger};
use super::plan::Watched;
use super::LABEL_RESCHEDULED_FROM;
use crate::create::fake::{FakeEngine, FakeNodes, Step};
use crate::create::{CreateFlow, FlowConfig, ResolveConfig};
use crate::node::Health;
use crate::scheduler::{
    ContainerInfo, NodeId, Offer, SchedulerActor, SchedulerConfig, UpdateOffer, LABEL_SWARM_ID,
};

const SWARM_ID: &str = "5a5a5a5a";
const OLD_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The inspect Shoal kept of `web` on the failed node `a`.
fn inspect() -> Bytes {
    Bytes::from(format!(
        r#"{{"Id": "{OLD_ID}", "Name": "/web",
        "Config": {{"Hostname": "0123456789ab", "Image": "busybox", "Env": ["A=1"],
                   "Labels": {{"tier": "web", "{LABEL_SWARM_ID}": "{SWARM_ID}",
                              "com.docker.swarm.reschedule-policies": "[\"on-node-failure\"]"}}}},
        "HostConfig": {{"NetworkMode": "default", "PortBindings": {{"80/tcp": [{{"HostPort": "8080"}}]}},
                       "RestartPolicy": {{"Name": "always"}}}},
        "NetworkSettings": {{"Networks": {{"bridge": {{}}}}}}}}"#
    ))
}

fn original(running: bool) -> Watched {
    Watched {
        id: OLD_ID.into(),
        name: "web".into(),
        image: "busybox".into(),
        swarm_id: SWARM_ID.into(),
        running,
        created: 100,
        on_node_failure: true,
        rescheduled_from: None,
    }
}

struct Cluster {
    #[allow(dead_code, reason = "keeps the scheduler alive for the flow")]
    scheduler: Addr<SchedulerActor>,
    flow: CreateFlow,
    nodes: Rc<FakeNodes>,
    engines: HashMap<&'static str, Rc<FakeEngine>>,
    ledger: MemoryLedger,
}

/// Node `a` is down and holds `web`; `b` and `c` are healthy.
async fn cluster(retries: u32) -> Cluster {
    let scheduler = SchedulerActor::new(SchedulerConfig::default().with_seed(3)).start();
    let web = ContainerInfo::new(OLD_ID, "web").label(LABEL_SWARM_ID, SWARM_ID);
    let offers = [
        Offer::new("a")
            .capacity(4, 8 << 30)
            .health(Health::Unhealthy)
            .container(web),
        Offer::new("b").capacity(4, 8 << 30),
        Offer::new("c").capacity(4, 8 << 30),
    ];
    for offer in offers {
        scheduler.send(UpdateOffer(Arc::new(offer))).await.unwrap();
    }
    let engines: HashMap<&'static str, Rc<FakeEngine>> = ["a", "b", "c"]
        .into_iter()
        .map(|n| (n, FakeEngine::new(n)))
        .collect();
    let nodes = Rc::new(FakeNodes(
        engines
            .iter()
            .map(|(n, e)| (NodeId::new(*n), e.clone()))
            .collect(),
    ));
    let config = FlowConfig {
        retries,
        resolve: ResolveConfig {
            first_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            attempts: 5,
            absent_checks: 2,
        },
    };
    let flow = CreateFlow::new(scheduler.clone(), nodes.clone(), config);
    Cluster {
        scheduler,
        flow,
        nodes,
        engines,
        ledger: MemoryLedger::default(),
    }
}

impl Cluster {
    fn copies(&self) -> Vec<(&'static str, serde_json::Value, String)> {
        let mut out = Vec::new();
        for (n, e) in &self.engines {
            for c in e.containers.borrow().iter() {
                out.push((*n, c.body.clone(), c.id.clone()));
            }
        }
        out
    }

    fn calls(&self, node: &str) -> Vec<String> {
        self.engines[node].calls.borrow().clone()
    }
}

#[actix::test]
async fn a_move_makes_one_started_copy_with_the_name_config_and_swarm_id_elsewhere() {
    let c = cluster(2).await;
    let a = NodeId::new("a");
    let out = move_container(
        &c.flow,
        &*c.nodes,
        &c.ledger,
        &a,
        &original(true),
        Some(inspect()),
    )
    .await
    .unwrap();
    let MoveOutcome::Moved(moved) = out else {
        panic!("not moved: {out:?}");
    };
    assert_ne!(moved.to, a, "never on the failed node");
    assert!(moved.started && moved.incomplete.is_none(), "{moved:?}");
    let copies = c.copies();
    assert_eq!(copies.len(), 1, "one copy");
    let (node, body, id) = &copies[0];
    assert_eq!(NodeId::new(*node), moved.to);
    assert_eq!(*id, moved.container_id);
    let labels = &body["Labels"];
    assert_eq!(labels[LABEL_SWARM_ID], SWARM_ID, "the same swarm id");
    assert_eq!(labels[LABEL_RESCHEDULED_FROM], "a");
    assert_eq!(labels["tier"], "web");
    assert_eq!(
        body["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        "8080"
    );
    assert_eq!(body["HostConfig"]["RestartPolicy"]["Name"], "always");
    let calls = c.calls(node);
    assert_eq!(calls[0], "POST /containers/create?name=web");
    assert_eq!(calls[1], format!("POST /containers/{id}/start"));
    assert!(c.calls("a").is_empty(), "the failed node is not asked");
    assert_eq!(
        c.ledger.entry(SWARM_ID, &a),
        Some(Entry::Done {
            to: moved.to.clone(),
            container_id: moved.container_id.clone()
        })
    );

    let again = move_container(
        &c.flow,
        &*c.nodes,
        &c.ledger,
        &a,
        &original(true),
        Some(inspect()),
    )
    .await
    .unwrap();
    assert_eq!(again, MoveOutcome::NotClaimed, "done once");
    assert_eq!(c.copies().len(), 1);
}

#[actix::test]
async fn concurrent_moves_of_one_container_through_one_ledger_make_one_copy() {
    let c = cluster(2).await;
    let a = NodeId::new("a");
    let w = original(false);
    let runs =
        (0..4).map(|_| move_container(&c.flow, &*c.nodes, &c.ledger, &a, &w, Some(inspect())));
    let outcomes = futures_util::future::join_all(runs).await;
    let moved = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(MoveOutcome::Moved(_))))
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(MoveOutcome::NotClaimed)))
        .count();
    assert_eq!((moved, skipped), (1, 3), "{outcomes:?}");
    assert_eq!(c.copies().len(), 1);
    let (node, _, _) = &c.copies()[0];
    assert!(
        !c.calls(node).iter().any(|call| call.ends_with("/start")),
        "a stopped original stays stopped"
    );
}

#[actix::test]
async fn a_failed_move_is_released_and_the_next_try_makes_it() {
    let c = cluster(0).await;
    for n in ["b", "c"] {
        c.engines[n].then(Step::Status(500));
    }
    let a = NodeId::new("a");
    let first = move_container(
        &c.flow,
        &*c.nodes,
        &c.ledger,
        &a,
        &original(true),
        Some(inspect()),
    )
    .await;
    assert!(first.is_err(), "{first:?}");
    assert_eq!(c.ledger.entry(SWARM_ID, &a), None, "released");
    assert!(c.copies().is_empty());
    // The next try lands on whichever node had not failed yet, or one that failed once.
    let second = move_container(
        &c.flow,
        &*c.nodes,
        &c.ledger,
        &a,
        &original(true),
        Some(inspect()),
    )
    .await
    .unwrap();
    assert!(matches!(second, MoveOutcome::Moved(_)), "{second:?}");
    assert_eq!(c.copies().len(), 1);
}

#[actix::test]
async fn without_a_kept_config_nothing_is_made_and_the_claim_is_released() {
    let c = cluster(2).await;
    let a = NodeId::new("a");
    let e = move_container(&c.flow, &*c.nodes, &c.ledger, &a, &original(true), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no configuration"), "{e}");
    assert_eq!(c.ledger.entry(SWARM_ID, &a), None);
    assert!(c.copies().is_empty());
}

#[actix::test]
async fn the_stale_original_is_removed_or_else_renamed() {
    let c = cluster(2).await;
    let a = NodeId::new("a");
    c.ledger.claim(SWARM_ID, &a).await.unwrap();
    c.ledger
        .done(SWARM_ID, &a, &NodeId::new("b"), "copy")
        .await
        .unwrap();
    let out = clear_stale(&*c.nodes, &c.ledger, &a, &original(false))
        .await
        .unwrap();
    assert_eq!(out, StaleOutcome::Removed);
    assert_eq!(
        c.calls("a"),
        vec![format!("DELETE /containers/{OLD_ID}?force=1&v=1")]
    );
    assert_eq!(c.ledger.entry(SWARM_ID, &a), None, "the move is over");

    c.engines["a"].refuse_removals.set(true);
    let out = clear_stale(&*c.nodes, &c.ledger, &a, &original(false))
        .await
        .unwrap();
    assert_eq!(out, StaleOutcome::Renamed("web-stale-0123456789ab".into()));
    assert_eq!(
        c.calls("a").last().unwrap(),
        &format!("POST /containers/{OLD_ID}/rename?name=web-stale-0123456789ab")
    );
}
