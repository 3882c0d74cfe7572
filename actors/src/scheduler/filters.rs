//! The filters, pure functions over the cluster state: each narrows the candidate set
//! of one decision, by index lookups and bitset operations, never by visiting every
//! container. They run in classic Swarm's order (see [`FilterKind`]), with the implicit
//! node-local-objects rule right after the dependency filter.
//!
//! [`FilterKind`]: super::config::FilterKind

use super::expr::{Expr, Matcher, Op};
use super::nodeset::NodeSet;
use super::request::PlacementRequest;
use super::state::{ClusterState, Index};

/// Sets in `out` the nodes holding a key of `idx` that `m` matches. An exact matcher is
/// a lookup; only a glob or regex walks the index's keys (distinct values, not nodes).
fn matching(idx: Option<&Index>, m: &Matcher, out: &mut NodeSet) {
    out.clear();
    let Some(idx) = idx else { return };
    match m.exact_values() {
        Some(values) => {
            for v in values {
                if let Some(p) = idx.get(v) {
                    p.slots().for_each(|s| out.insert(s));
                }
            }
        }
        None => {
            for (k, p) in idx {
                if m.matches(k) {
                    p.slots().for_each(|s| out.insert(s));
                }
            }
        }
    }
}

/// Narrows `cand` by one expression against an index. `missing_is_empty`: a node with
/// no value for the key is treated as having the value "" (engine labels, as classic).
fn apply_expr(
    state: &ClusterState,
    idx: Option<&Index>,
    e: &Expr,
    missing_is_empty: bool,
    cand: &mut NodeSet,
    tmp: &mut NodeSet,
) {
    matching(idx, &e.matcher, tmp);
    if missing_is_empty && e.matcher.matches("") {
        // Rare: a pattern that matches the empty string. Add the nodes lacking the key.
        let mut has = NodeSet::default();
        for p in idx.into_iter().flat_map(|i| i.values()) {
            p.slots().for_each(|s| has.insert(s));
        }
        let mut lacking = state.live.clone();
        lacking.subtract(&has);
        tmp.union(&lacking);
    }
    match e.op {
        Op::Eq => cand.intersect(tmp),
        Op::Ne => cand.subtract(tmp),
    }
}

fn enforced(e: &Expr, soft: bool) -> bool {
    soft || !e.soft
}

/// Only healthy nodes.
pub(crate) fn health(state: &ClusterState, cand: &mut NodeSet) {
    cand.intersect(&state.healthy);
}

/// No node where a requested host port is bound or reserved.
pub(crate) fn port(state: &ClusterState, req: &PlacementRequest, cand: &mut NodeSet) {
    for p in &req.ports {
        if let Some(list) = state.ports.get(&p.port) {
            list.slots().for_each(|s| cand.remove(s));
        }
    }
}

/// No node whose `containerslots` are all taken.
pub(crate) fn container_slots(state: &ClusterState, cand: &mut NodeSet) {
    cand.subtract(&state.full);
}

/// Only the node(s) holding every container depended on (by name, ID or short ID).
pub(crate) fn dependency(
    state: &ClusterState,
    req: &PlacementRequest,
    cand: &mut NodeSet,
    tmp: &mut NodeSet,
) {
    for d in &req.dependencies {
        matching(
            Some(&state.containers),
            &Matcher::Exact(d.target.to_lowercase()),
            tmp,
        );
        cand.intersect(tmp);
    }
}

/// Node-local objects pull placement: a user-defined network or named volume that
/// exists on some nodes restricts the container to them; one that exists nowhere is
/// fine anywhere (the front creates it on the chosen node).
///
/// In the soft pass the image pulls too: nodes that have it are preferred, so an image that
/// exists on some nodes only (one made by `docker commit`, `build` or `load` there) is run
/// where it is instead of pulled where it may not be found. When none of those nodes fits,
/// the second pass places it anywhere, and the chosen node pulls it.
pub(crate) fn locality(
    state: &ClusterState,
    req: &PlacementRequest,
    soft: bool,
    cand: &mut NodeSet,
    tmp: &mut NodeSet,
) {
    let objects = req
        .networks
        .iter()
        .map(|n| (&state.networks, n))
        .chain(req.volumes.iter().map(|v| (&state.volumes, v)));
    for (idx, name) in objects {
        matching(Some(idx), &Matcher::Exact(name.to_lowercase()), tmp);
        if !tmp.is_empty() {
            cand.intersect(tmp);
        }
    }
    if let (true, Some(image)) = (soft, req.image.as_deref()) {
        let tagged = image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
            || image.contains('@');
        let key = if tagged {
            image.to_lowercase()
        } else {
            format!("{}:latest", image.to_lowercase())
        };
        matching(Some(&state.images), &Matcher::Exact(key), tmp);
        tmp.intersect(cand);
        if !tmp.is_empty() {
            cand.copy_from(tmp);
        }
    }
}

/// `affinity:container==x`, `affinity:image==x`, `affinity:<label>==x`.
pub(crate) fn affinity(
    state: &ClusterState,
    req: &PlacementRequest,
    soft: bool,
    cand: &mut NodeSet,
    tmp: &mut NodeSet,
) {
    for e in req.affinities.iter().filter(|e| enforced(e, soft)) {
        let idx = match e.key.as_str() {
            "container" => Some(&state.containers),
            "image" => Some(&state.images),
            label => state.clabels.get(label),
        };
        apply_expr(state, idx, e, false, cand, tmp);
    }
}

/// `constraint:<engine label or fact>==x`, `constraint:node==x`.
pub(crate) fn constraint(
    state: &ClusterState,
    req: &PlacementRequest,
    soft: bool,
    cand: &mut NodeSet,
    tmp: &mut NodeSet,
) {
    for e in req.constraints.iter().filter(|e| enforced(e, soft)) {
        let (idx, missing_is_empty) = match e.key.as_str() {
            "node" => (Some(&state.node_keys), false),
            label => (state.labels.get(label), true),
        };
        apply_expr(state, idx, e, missing_is_empty, cand, tmp);
    }
}

/// `whitelist:node==n1|n2`: only (or, with `!=`, never) these nodes.
pub(crate) fn whitelist(
    state: &ClusterState,
    req: &PlacementRequest,
    cand: &mut NodeSet,
    tmp: &mut NodeSet,
) {
    for e in &req.whitelist {
        apply_expr(state, Some(&state.node_keys), e, false, cand, tmp);
    }
}
