//! Volume routes: list, inspect, create, remove.
//!
//! Volumes are local to their engine and known by name. The list shows every node's
//! volumes with the engine's `Name` and a `"Node"` object; a node that is not healthy is
//! named in `Warnings`, since its volumes are missing from the list. `node/name` picks one
//! node's volume; a bare name used on several nodes resolves to the first in the order
//! users see for inspect, and to all of them for remove.
//!
//! Create goes to one node chosen by the SchedulerActor; a name already used anywhere
//! answers that volume, as one engine answers a create of an existing volume.

use crate::api::docker::filters::{Filters, ListQuery};
use crate::api::docker::local_objects::{self, ListSpec};
use crate::api::docker::networks::{json_object, labels_of, place};
use crate::api::error::ApiError;
use crate::api::forward::fanout::{self, call, healthy, pass, with_node};
use crate::api::state::ApiState;
use crate::authz::Grant;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use shoal_actors::cluster::{ClusterRead, NodeRead};
use shoal_actors::node::{ObjectEntry, ObjectOp};

const LIST_FILTERS: &[&str] = &["driver", "label", "name"];

#[derive(Debug, Deserialize)]
pub struct VolumePath {
    name: String,
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("get {name}: no such volume"))
}

/// `GET /volumes`.
pub async fn list(
    state: web::Data<ApiState>,
    q: web::Query<ListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = Grant::tenant_of(&req);
    let filters = Filters::parse(q.filters.as_deref(), LIST_FILTERS)?;
    let read = state.read();
    let keep = |e: &ObjectEntry, json: &Value| {
        let driver = json.get("Driver").and_then(Value::as_str).unwrap_or("");
        filters.matches("name", &e.name)
            && filters
                .get("driver")
                .is_none_or(|d| d.iter().any(|x| x == driver))
            && filters.matches_labels("label", &labels_of(json))
    };
    let listing = local_objects::list(
        &read,
        tenant.as_deref(),
        &ListSpec {
            kind: "volumes",
            table: |s| &s.volumes,
            public: &|_| false,
            keep: &keep,
        },
    );
    let volumes: Vec<Value> = listing
        .objects
        .into_iter()
        .map(|l| with_node(l.json, l.node))
        .collect();
    let warnings = listing.warnings;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "Volumes": volumes,
        "Warnings": if warnings.is_empty() { Value::Null } else { warnings.into() },
    })))
}

/// Every healthy node that has the volume `reference` names, in the order users see.
fn holders(read: &ClusterRead, reference: &str) -> Vec<usize> {
    let (node, name) = match reference.split_once('/') {
        Some((node, name)) => (Some(node), name),
        None => (None, reference),
    };
    healthy(read)
        .filter(|(_, n)| node.is_none_or(|want| *n.name == *want))
        .filter(|(_, n)| n.snapshot.volumes.iter().any(|v| v.name == name))
        .map(|(i, _)| i)
        .collect()
}

fn bare(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// `GET /volumes/{name}`.
pub async fn inspect(
    state: web::Data<ApiState>,
    path: web::Path<VolumePath>,
) -> Result<HttpResponse, ApiError> {
    let reference = path.into_inner().name;
    let read = state.read();
    let i = *holders(&read, &reference)
        .first()
        .ok_or_else(|| not_found(&reference))?;
    inspect_on(&read, i, bare(&reference)).await
}

async fn inspect_on(read: &ClusterRead, i: usize, name: &str) -> Result<HttpResponse, ApiError> {
    let node = &read.nodes[i];
    let (s, body) = call(
        node,
        ObjectOp::InspectVolume {
            name: name.to_string(),
        },
    )
    .await?;
    if !(200..300).contains(&s) {
        return Err(fanout::engine_error(s, &body));
    }
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap_or_default())
            .content_type("application/json")
            .body(crate::api::docker::containers::list::with_node_field(
                &body, node,
            )),
    )
}

/// `POST /volumes/create`.
pub async fn create(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body = if body.trim_ascii().is_empty() {
        web::Bytes::from_static(b"{}")
    } else {
        body
    };
    let obj = crate::authz::guard::label_body(&req, json_object(&body)?);
    let body = web::Bytes::from(Value::Object(obj.clone()).to_string());
    let name = obj
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let read = state.read();
    if !name.is_empty() {
        if let Some(&i) = holders(&read, &name).first() {
            let node = &read.nodes[i];
            if let Some(entry) = listed(&node.snapshot.volumes, node, &name) {
                return Ok(HttpResponse::Created().json(entry));
            }
        }
    }
    let i = place(&state, &read).await?;
    let node = &read.nodes[i];
    let (s, answer) = call(node, ObjectOp::CreateVolume { body }).await?;
    if !(200..300).contains(&s) {
        return pass(s, answer);
    }
    let made = serde_json::from_slice::<Value>(&answer)
        .ok()
        .and_then(|v| v["Name"].as_str().map(str::to_string))
        .unwrap_or(name);
    tracing::info!(node = %node.name, volume = %made, "volume created");
    fanout::await_published(&node.handle, |snap| {
        snap.volumes.iter().any(|v| v.name == made)
    })
    .await;
    // The answer is the volume's entry in `GET /volumes`, field for field; the engine's
    // own answer only when the node has not listed it in time.
    let published = node.handle.state.borrow().clone();
    let entry = listed(&published.volumes, node, &made)
        .unwrap_or_else(|| with_node(serde_json::from_slice(&answer).unwrap_or(Value::Null), node));
    Ok(HttpResponse::Created().json(entry))
}

/// The volume `name` as `GET /volumes` lists it, from `table`, the node's volumes.
fn listed(table: &[ObjectEntry], node: &NodeRead, name: &str) -> Option<Value> {
    let entry = table.iter().find(|v| v.name == name)?;
    Some(with_node(entry.json(), node))
}

/// `DELETE /volumes/{name}`: on every node that has it.
pub async fn remove(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<VolumePath>,
) -> Result<HttpResponse, ApiError> {
    let reference = path.into_inner().name;
    let name = bare(&reference).to_string();
    let read = state.read();
    let targets = holders(&read, &reference);
    if targets.is_empty() {
        return Err(not_found(&reference));
    }
    for i in targets {
        let node = &read.nodes[i];
        let op = ObjectOp::RemoveVolume {
            name: name.clone(),
            query: req.query_string().to_string(),
        };
        let (s, body) = call(node, op).await?;
        if !(200..300).contains(&s) {
            return Err(fanout::engine_error(s, &body));
        }
        fanout::await_published(&node.handle, |snap| {
            snap.volumes.iter().all(|v| v.name != name)
        })
        .await;
    }
    Ok(HttpResponse::NoContent().finish())
}
