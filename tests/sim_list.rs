//! The whole-cluster container list kept in the published view (`ps -a` answered from bytes
//! rendered once): over simulated engines, the kept answer is byte for byte the list
//! streamed and the list merged afresh (a `limit` list is never kept), and a create, a
//! removal or a node's health change is in the next answer.

mod sim_fixture;

use shoal_actors::cluster::ClusterView;
use shoal_actors::node::{ContainerTable, Health};
use shoal_sim::Fault;
use sim_fixture::{SimCluster, Started};
use std::sync::Arc;

/// The published view (whose memo keeps the answer) and every node's container table and
/// health in it now: what the kept answer is made from.
fn tables(c: &Started) -> (Arc<ClusterView>, Vec<(Arc<ContainerTable>, Health)>) {
    let view = c.view.borrow().clone();
    let tables = view
        .read()
        .nodes
        .iter()
        .map(|n| (n.snapshot.containers.clone(), n.snapshot.health))
        .collect();
    (view, tables)
}

/// `?all=1` (kept), checked against the same list merged afresh (a limit above the count
/// is the same list, never kept). Retried while a node publishes between the requests (a
/// refresh brings new `Up N seconds` texts), or the cluster publishes a new view (a node's
/// name, health or API version changed: the new view's memo starts empty).
async fn listed_all(c: &Started) -> serde_json::Value {
    for _ in 0..20 {
        let before = tables(c);
        // Streamed (the cluster changed since the last list), rendered whole and kept (the
        // same cluster again), then sent from the memo.
        let streamed = c.get("/containers/json?all=1").await;
        let kept = c.get("/containers/json?all=1").await;
        let again = c.get("/containers/json?all=1").await;
        let fresh = c.get("/containers/json?all=1&limit=100000").await;
        let after = tables(c);
        let same = Arc::ptr_eq(&before.0, &after.0)
            && before.1.len() == after.1.len()
            && before
                .1
                .iter()
                .zip(&after.1)
                .all(|(a, b)| Arc::ptr_eq(&a.0, &b.0) && a.1 == b.1);
        if !same {
            continue;
        }
        assert_eq!(
            (streamed.status, kept.status, again.status, fresh.status),
            (200, 200, 200, 200)
        );
        assert_eq!(
            streamed.body, kept.body,
            "the whole answer is the streamed one"
        );
        assert_eq!(kept.body, again.body, "the kept answer is the one rendered");
        assert_eq!(
            String::from_utf8_lossy(&again.body),
            String::from_utf8_lossy(&fresh.body),
            "the kept answer is the merged one"
        );
        let held = after.0.list_answer.held();
        assert!(held >= kept.body.len(), "{held} bytes held");
        return kept.json();
    }
    panic!("the nodes never stood still for four lists");
}

fn names(list: &serde_json::Value) -> Vec<(String, String)> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|x| {
            (
                x["Names"][0].as_str().unwrap_or("").to_string(),
                x["Status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn the_kept_list_is_the_merged_one_and_follows_every_change() {
    let c = SimCluster::three().start().await;
    c.wait_healthy(3).await;
    let first = listed_all(&c).await;
    assert_eq!(first.as_array().map(Vec::len), Some(9));

    let eng = c.fleet.engine(1);
    eng.create_container("web", "busybox:latest", &[]);
    c.wait_for("web listed", 5, |r| r.resolve_container("web").is_ok())
        .await;
    let created = names(&listed_all(&c).await);
    assert_eq!(created.len(), 10);
    assert!(created.iter().any(|(n, _)| n == "/n2/web"), "{created:?}");

    assert!(eng.remove_container("web"));
    c.wait_for("web gone", 5, |r| r.resolve_container("web").is_err())
        .await;
    let removed = names(&listed_all(&c).await);
    assert_eq!(removed.len(), 9);
    assert!(!removed.iter().any(|(n, _)| n == "/n2/web"), "{removed:?}");

    let running = c.get("/containers/json").await.json();
    let on_n3 =
        |list: &[(String, String)]| list.iter().filter(|(n, _)| n.starts_with("/n3/")).count();
    assert!(on_n3(&names(&running)) > 0, "n3 runs some");
    c.fleet.engine(2).set_fault(Fault::Down);
    c.wait_for("n3 unhealthy", 15, |r| {
        r.nodes
            .iter()
            .any(|n| n.snapshot.health == Health::Unhealthy)
    })
    .await;
    let down = names(&listed_all(&c).await);
    let n3: Vec<_> = down.iter().filter(|(n, _)| n.starts_with("/n3/")).collect();
    assert_eq!(n3.len(), 3, "{down:?}");
    assert!(n3.iter().all(|(_, s)| s == "Host Down"), "{down:?}");
    let running = names(&c.get("/containers/json").await.json());
    assert_eq!(on_n3(&running), 0, "{running:?}");

    c.fleet.engine(2).set_fault(Fault::None);
    c.wait_healthy(3).await;
    let healed = names(&listed_all(&c).await);
    assert!(
        healed
            .iter()
            .filter(|(n, _)| n.starts_with("/n3/"))
            .all(|(_, s)| s != "Host Down"),
        "{healed:?}"
    );
    let shown = |l: &[(String, String)]| l.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        shown(&names(&first)),
        shown(&healed),
        "the list is as it was"
    );
}
