//! Network routes: list, inspect, create, remove, connect, disconnect.
//!
//! A network is local to its engine, so the list shows every node's networks with the
//! engine's own `Name` (compose and the CLI look networks up by exact name) and a `"Node"`
//! object telling where each lives; `global`/`swarm` scoped ones are listed once. A
//! reference resolves as on one engine (full ID, exact name, unique ID prefix) over all
//! nodes; `node/name` picks one node's network. A name that several nodes use (`host`,
//! `none`) resolves to the first node in the order users see.
//!
//! Create goes to one node chosen by the SchedulerActor, as classic Swarm did; a name used
//! anywhere in the cluster is a 409, as one engine answers a duplicate. Connect and
//! disconnect go to the container's node.

use crate::api::docker::filters::{Filters, ListQuery};
use crate::api::docker::local_objects::{self, ListSpec};
use crate::api::error::ApiError;
use crate::api::forward::fanout::{self, call, healthy, no_node, pass, with_node};
use crate::api::state::ApiState;
use crate::authz::Grant;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use shoal_actors::cluster::ClusterRead;
use shoal_actors::node::{ObjectEntry, ObjectOp, SyncContainer};
use shoal_actors::scheduler::{CancelPlacement, Place, PlacementRequest};
use std::collections::{HashMap, HashSet};

const LIST_FILTERS: &[&str] = &["driver", "id", "label", "name", "scope", "type"];
const BUILTIN: &[&str] = &["bridge", "host", "none"];

#[derive(Debug, Deserialize)]
pub struct NetworkPath {
    id: String,
}

fn not_found(reference: &str) -> ApiError {
    ApiError::NotFound(format!("network {reference} not found"))
}

fn is_global(e: &ObjectEntry) -> bool {
    e.scope == "global" || e.scope == "swarm"
}

pub fn labels_of(json: &Value) -> HashMap<String, String> {
    json.get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /networks`.
pub async fn list(
    state: web::Data<ApiState>,
    q: web::Query<ListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = Grant::tenant_of(&req);
    let filters = Filters::parse(q.filters.as_deref(), LIST_FILTERS)?;
    if let Some(bad) = filters
        .get("type")
        .and_then(|t| t.iter().find(|t| *t != "custom" && *t != "builtin"))
    {
        return Err(ApiError::BadRequest(format!(
            "invalid filter: 'type'='{bad}'"
        )));
    }
    let read = state.read();
    let keep = |e: &ObjectEntry, json: &Value| {
        let driver = json.get("Driver").and_then(Value::as_str).unwrap_or("");
        let builtin = BUILTIN.contains(&e.name.as_str());
        filters.matches("name", &e.name)
            && filters.matches("id", &e.id)
            && filters
                .get("driver")
                .is_none_or(|d| d.iter().any(|x| x == driver))
            && filters.get("scope").is_none_or(|s| s.contains(&e.scope))
            && filters
                .get("type")
                .is_none_or(|t| t.iter().any(|x| (x == "builtin") == builtin))
            && filters.matches_labels("label", &labels_of(json))
    };
    // Built-in networks are everyone's; the others, their tenant's.
    let builtin = |e: &ObjectEntry| BUILTIN.contains(&e.name.as_str());
    let listing = local_objects::list(
        &read,
        tenant.as_deref(),
        &ListSpec {
            kind: "networks",
            table: |s| &s.networks,
            public: &builtin,
            keep: &keep,
        },
    );
    // The answer is a bare array, with no room for warnings: they are logged.
    for w in &listing.warnings {
        tracing::debug!("{w}");
    }
    let mut seen_global = HashSet::new();
    let mut out = Vec::new();
    for l in listing.objects {
        if !is_global(l.entry) {
            out.push(with_node(l.json, l.node));
        } else if seen_global.insert(l.entry.id.clone()) {
            out.push(l.json);
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

/// Finds the network `reference` names: `(node index, entry)`.
pub fn resolve(read: &ClusterRead, reference: &str) -> Result<(usize, ObjectEntry), ApiError> {
    let nodes: Vec<(usize, &shoal_actors::cluster::NodeRead)> = healthy(read).collect();
    if reference.is_empty() {
        return Err(not_found(reference));
    }
    if let Some((node, name)) = reference.split_once('/') {
        if let Some((i, n)) = nodes.iter().find(|(_, n)| *n.name == *node) {
            if let Some(e) = n
                .snapshot
                .networks
                .iter()
                .find(|e| e.name == name || e.id == name)
            {
                return Ok((*i, e.clone()));
            }
        }
        return Err(not_found(reference));
    }
    for (i, n) in &nodes {
        if let Some(e) = n.snapshot.networks.iter().find(|e| e.id == reference) {
            return Ok((*i, e.clone()));
        }
    }
    for (i, n) in &nodes {
        if let Some(e) = n.snapshot.networks.iter().find(|e| e.name == reference) {
            return Ok((*i, e.clone()));
        }
    }
    let mut found: Option<(usize, &ObjectEntry)> = None;
    let mut ids = HashSet::new();
    for (i, n) in &nodes {
        for e in n.snapshot.networks.iter() {
            if e.id.starts_with(reference) && ids.insert(e.id.clone()) {
                if found.is_some() {
                    return Err(ApiError::BadRequest(format!(
                        "network {reference} is ambiguous ({} matches found based on ID prefix)",
                        ids.len().max(2)
                    )));
                }
                found = Some((*i, e));
            }
        }
    }
    found
        .map(|(i, e)| (i, e.clone()))
        .ok_or_else(|| not_found(reference))
}

/// `GET /networks/{id}`.
pub async fn inspect(
    state: web::Data<ApiState>,
    path: web::Path<NetworkPath>,
) -> Result<HttpResponse, ApiError> {
    let reference = path.into_inner().id;
    let read = state.read();
    let (i, entry) = resolve(&read, &reference)?;
    let node = &read.nodes[i];
    let id = if entry.id.is_empty() {
        entry.name
    } else {
        entry.id
    };
    let (s, body) = call(node, ObjectOp::InspectNetwork { id }).await?;
    if !(200..300).contains(&s) {
        return Err(fanout::engine_error(s, &body));
    }
    Ok(HttpResponse::Ok().content_type("application/json").body(
        crate::api::docker::containers::list::with_node_field(&body, node),
    ))
}

/// Reads a JSON object body, or answers 400 as the engine does.
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest(
            "invalid JSON: the body must be an object".into(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!("invalid JSON: {e}"))),
    }
}

/// Asks the scheduler for a node to hold a new network or volume; nothing is reserved.
pub async fn place(state: &ApiState, read: &ClusterRead) -> Result<usize, ApiError> {
    place_for(state, read, PlacementRequest::default()).await
}

/// Asks the scheduler for a node that fits `request` (a build's wishes); nothing is
/// reserved.
pub async fn place_for(
    state: &ApiState,
    read: &ClusterRead,
    request: PlacementRequest,
) -> Result<usize, ApiError> {
    let placement = state.scheduler.send(Place(request)).await??;
    // Networks, volumes and builds hold no CPU, memory or port: release at once.
    state
        .scheduler
        .send(CancelPlacement {
            reservation: placement.reservation,
        })
        .await?;
    read.nodes
        .iter()
        .position(|n| n.handle.addr.to_string() == placement.node.as_str())
        .ok_or_else(no_node)
}

/// `POST /networks/create`.
pub async fn create(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let obj = crate::authz::guard::label_body(&req, json_object(&body)?);
    let body = bytes::Bytes::from(Value::Object(obj.clone()).to_string());
    let name = obj
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err(ApiError::BadRequest("network name is required".into()));
    }
    let read = state.read();
    let taken = read
        .nodes
        .iter()
        .any(|n| n.snapshot.networks.iter().any(|e| e.name == name));
    if taken {
        return Err(ApiError::EngineAnswer {
            status: 409,
            message: format!("network with name {name} already exists"),
        });
    }
    let i = place(&state, &read).await?;
    let node = &read.nodes[i];
    let (s, answer) = call(node, ObjectOp::CreateNetwork { body }).await?;
    if (200..300).contains(&s) {
        tracing::info!(node = %node.name, network = %name, "network created");
        fanout::await_published(&node.handle, |snap| {
            snap.networks.iter().any(|e| e.name == name)
        })
        .await;
    }
    pass(s, answer)
}

/// `DELETE /networks/{id}`: a name removes that network on every node that has it.
pub async fn remove(
    state: web::Data<ApiState>,
    path: web::Path<NetworkPath>,
) -> Result<HttpResponse, ApiError> {
    let reference = path.into_inner().id;
    let read = state.read();
    let (first, entry) = resolve(&read, &reference)?;
    let mut targets: Vec<(usize, String)> = vec![(first, entry.id.clone())];
    if entry.name == reference && !is_global(&entry) {
        for (i, n) in healthy(&read).filter(|(i, _)| *i != first) {
            if let Some(e) = n.snapshot.networks.iter().find(|e| e.name == reference) {
                targets.push((i, e.id.clone()));
            }
        }
    }
    for (i, id) in targets {
        let node = &read.nodes[i];
        let (s, body) = call(node, ObjectOp::RemoveNetwork { id: id.clone() }).await?;
        if !(200..300).contains(&s) {
            return Err(fanout::engine_error(s, &body));
        }
        fanout::await_published(&node.handle, |snap| {
            snap.networks.iter().all(|e| e.id != id)
        })
        .await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /networks/{id}/connect`.
pub async fn connect(
    state: web::Data<ApiState>,
    path: web::Path<NetworkPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    attach(state, path.into_inner().id, body, true).await
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(
    state: web::Data<ApiState>,
    path: web::Path<NetworkPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    attach(state, path.into_inner().id, body, false).await
}

async fn attach(
    state: web::Data<ApiState>,
    reference: String,
    body: web::Bytes,
    connect: bool,
) -> Result<HttpResponse, ApiError> {
    let mut obj = json_object(&body)?;
    let container = obj
        .get("Container")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let read = state.read();
    let (ci, entry) = read.resolve_container(&container)?;
    let container_id = entry.id().to_string();
    let (ni, net) = resolve(&read, &reference)?;
    // The network must be on the container's node: a name resolves there first.
    let id = if ni == ci || is_global(&net) {
        net.id.clone()
    } else {
        let node = &read.nodes[ci];
        match node
            .snapshot
            .networks
            .iter()
            .find(|e| e.name == reference || e.name == net.name && reference == net.id)
        {
            Some(e) => e.id.clone(),
            None => {
                return Err(ApiError::BadRequest(format!(
                    "network {reference} is on node {} and container {container} on node {}: a local network joins containers of its own node only",
                    read.nodes[ni].name, node.name
                )))
            }
        }
    };
    obj.insert("Container".into(), Value::String(container_id.clone()));
    let body = bytes::Bytes::from(Value::Object(obj).to_string());
    let node = &read.nodes[ci];
    let op = if connect {
        ObjectOp::ConnectNetwork { id, body }
    } else {
        ObjectOp::DisconnectNetwork { id, body }
    };
    let (s, answer) = call(node, op).await?;
    if (200..300).contains(&s) {
        // The container's networks changed: its node lists it again (and forgets its cached
        // inspect) before the client hears the answer, so its next inspect shows the change.
        let sync = node.handle.actor.send(SyncContainer { id: container_id });
        if actix_rt::time::timeout(state.timeouts.call, sync)
            .await
            .is_err()
        {
            tracing::debug!("container not synced in time, the engine's events will do");
        }
    }
    pass(s, answer)
}
