//! `GET /containers/json` and `GET /containers/{id}/json`, answered from the node snapshots
//! (the list) and the node's inspect cache (one container).

use crate::api::docker::filters::{truthy, Filters, ListQuery};
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::authz::Grant;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use shoal_actors::cluster::{ClusterRead, NodeRead};
use shoal_actors::node::{ContainerEntry, Health, InspectContainer, ListContainerSizes};
use std::collections::HashMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;

const LIST_FILTERS: &[&str] = &[
    "id", "name", "label", "status", "ancestor", "before", "since", "exited",
];
const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Exit code from the engine's status text (`Exited (137) 2 hours ago`).
fn exit_code(e: &ContainerEntry) -> Option<String> {
    let rest = e.status.strip_prefix("Exited (")?;
    Some(rest.split(')').next()?.to_string())
}

fn ancestor_matches(e: &ContainerEntry, wanted: &str) -> bool {
    let (image, image_id) = (e.info.image.as_str(), e.info.image_id.as_str());
    let bare_id = image_id.trim_start_matches("sha256:");
    let with_tag = |s: &str| {
        if s.rsplit('/').next().is_some_and(|last| last.contains(':')) || s.contains('@') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    with_tag(image) == with_tag(wanted)
        || image_id == wanted
        || (wanted.len() >= 4 && bare_id.starts_with(wanted.trim_start_matches("sha256:")))
}

/// One container to list: its node (an index into the read's nodes) and its entry.
struct Selection {
    node: usize,
    entry: Arc<ContainerEntry>,
}

fn created_of(read: &ClusterRead, reference: &str) -> Result<i64, ApiError> {
    let (_, e) = read.lookup_container(reference)?;
    Ok(e.created)
}

fn select(
    read: &ClusterRead,
    q: &ListQuery,
    tenant: Option<&str>,
) -> Result<Vec<Selection>, ApiError> {
    let filters = Filters::parse(q.filters.as_deref(), LIST_FILTERS)?;
    if let Some(states) = filters.get("status") {
        if let Some(bad) = states.iter().find(|s| !STATES.contains(&s.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "invalid filter 'status={bad}'"
            )));
        }
    }
    let before = filters
        .get("before")
        .map(|v| created_of(read, &v[0]))
        .transpose()?;
    let since = filters
        .get("since")
        .map(|v| created_of(read, &v[0]))
        .transpose()?;
    let limit: Option<usize> = match q.limit.as_deref().filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => {
                return Err(ApiError::BadRequest(format!(
                    "invalid limit {l:?}: not a number"
                )))
            }
        },
    };
    let all = truthy(q.all.as_deref())
        || limit.is_some()
        || before.is_some()
        || since.is_some()
        || filters.get("status").is_some()
        || filters.get("exited").is_some();
    let mut out = Vec::new();
    for (i, node) in read.nodes.iter().enumerate() {
        // As classic Swarm: what an unhealthy node last listed may no longer run, so only
        // `all` shows it (as `Host Down`).
        let down = node.snapshot.health == Health::Unhealthy;
        for entry in &node.snapshot.containers.entries {
            let up = matches!(entry.state(), "running" | "paused" | "restarting");
            if !all && (down || !up) {
                continue;
            }
            // Another tenant's containers are not there for this client.
            if !Grant::sees(tenant, |k| entry.info.labels.get(k).map(String::as_str)) {
                continue;
            }
            let name_ok = filters.get("name").is_none()
                || entry.info.names.iter().any(|n| {
                    let bare = format!("/{}", n.trim_start_matches('/'));
                    filters.matches("name", &bare)
                        || filters.matches("name", &format!("/{}{bare}", node.name))
                });
            if !name_ok
                || !filters.matches("id", entry.id())
                || !filters.matches_labels("label", &entry.info.labels)
            {
                continue;
            }
            if let Some(states) = filters.get("status") {
                if !states.iter().any(|s| s == entry.state()) {
                    continue;
                }
            }
            if let Some(codes) = filters.get("exited") {
                if !exit_code(entry).is_some_and(|c| codes.contains(&c)) {
                    continue;
                }
            }
            if let Some(images) = filters.get("ancestor") {
                if !images.iter().any(|i| ancestor_matches(entry, i)) {
                    continue;
                }
            }
            if before.is_some_and(|t| entry.created >= t)
                || since.is_some_and(|t| entry.created <= t)
            {
                continue;
            }
            out.push(Selection {
                node: i,
                entry: entry.clone(),
            });
        }
    }
    // Newest first, as an engine lists; the ID breaks ties so the order is stable.
    out.sort_unstable_by(|a, b| {
        b.entry
            .created
            .cmp(&a.entry.created)
            .then_with(|| a.entry.id().cmp(b.entry.id()))
    });
    if let Some(n) = limit {
        out.truncate(n);
    }
    Ok(out)
}

pub async fn list(
    state: web::Data<ApiState>,
    q: web::Query<ListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let selected = select(&read, &q, Grant::tenant_of(&req).as_deref())?;
    let sizes = if truthy(q.size.as_deref()) {
        fetch_sizes(&read, &selected).await
    } else {
        HashMap::new()
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(ListBody::new(read, selected, sizes).into_stream()))
}

/// Containers rendered into one chunk of the list answer (~500 bytes each).
const LIST_CHUNK: usize = 256;

/// The list answer, rendered a chunk at a time as the client reads it: at a thousand
/// nodes the whole answer is ~15 MB, and built whole it was held twice (once here, once
/// in actix-http's write buffer) for every client listing at once.
struct ListBody {
    read: ClusterRead,
    selected: Vec<Selection>,
    sizes: HashMap<String, (i64, i64)>,
}

impl ListBody {
    fn new(
        read: ClusterRead,
        selected: Vec<Selection>,
        sizes: HashMap<String, (i64, i64)>,
    ) -> Self {
        ListBody {
            read,
            selected,
            sizes,
        }
    }

    /// The JSON array `[...]`, a chunk of `LIST_CHUNK` containers at a time.
    fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
        let body = Rc::new(self);
        let chunks = body.selected.len().div_ceil(LIST_CHUNK).max(1);
        futures_util::stream::iter(0..chunks).map(move |c| Ok(body.render_chunk(c, chunks)))
    }

    /// Chunk `c` of `chunks`: the first opens the array, the last closes it.
    fn render_chunk(&self, c: usize, chunks: usize) -> Bytes {
        let start = c * LIST_CHUNK;
        let part = &self.selected[start..(start + LIST_CHUNK).min(self.selected.len())];
        let mut out = BytesMut::with_capacity(part.len() * 512 + 2);
        if c == 0 {
            out.put_u8(b'[');
        }
        for (i, s) in part.iter().enumerate() {
            if start + i > 0 {
                out.put_u8(b',');
            }
            let node = &self.read.nodes[s.node];
            let down = node.snapshot.health == Health::Unhealthy;
            let sizes = self.sizes.get(s.entry.id()).copied();
            s.entry.render_into(&node.name, sizes, down, &mut out);
        }
        if c + 1 == chunks {
            out.put_u8(b']');
        }
        out.freeze()
    }
}

/// Sizes are computed by the engines on request, so `size=1` asks the nodes involved.
async fn fetch_sizes(read: &ClusterRead, selected: &[Selection]) -> HashMap<String, (i64, i64)> {
    let mut picked = vec![false; read.nodes.len()];
    for s in selected {
        picked[s.node] = true;
    }
    let nodes = read
        .nodes
        .iter()
        .zip(picked)
        // An unhealthy node's engine would only make the list wait for its timeout.
        .filter(|(n, p)| *p && n.snapshot.health != Health::Unhealthy)
        .map(|(n, _)| n);
    let asks = nodes
        .inspect(|n| shoal_actors::metrics::queued("node", &n.handle.addr))
        .map(|n| n.handle.actor.send(ListContainerSizes));
    let mut sizes = HashMap::new();
    for answer in futures_util::future::join_all(asks).await {
        if let Ok(Ok(map)) = answer {
            sizes.extend(map);
        }
    }
    sizes
}

/// The `{id}` of a container route. Taken by name: versioned routes have an
/// `{api_version}` before it.
#[derive(Debug, Deserialize)]
pub struct ContainerPath {
    pub id: String,
}

pub async fn inspect(
    state: web::Data<ApiState>,
    path: web::Path<ContainerPath>,
) -> Result<HttpResponse, ApiError> {
    let reference = path.into_inner().id;
    let found = state.cluster().find_container(&reference)?;
    let (node, id) = (&found.node, found.id.clone());
    crate::telemetry::record_node(&node.name);
    shoal_actors::metrics::queued("node", &node.handle.addr);
    let body = node.handle.actor.send(InspectContainer { id }).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(with_node_field(&body, node)))
}

/// Adds classic Swarm's `"Node"` object to an engine's inspect JSON, so clients can tell
/// where the container runs.
pub fn with_node_field(body: &[u8], node: &NodeRead) -> bytes::Bytes {
    let facts = node.snapshot.facts.as_deref();
    let node_json = serde_json::json!({
        "ID": facts.map(|f| f.id.clone()).unwrap_or_default(),
        "IP": node.handle.addr.host(),
        "Addr": node.handle.addr.to_string(),
        "Name": node.name,
        "Cpus": facts.map_or(0, |f| f.ncpu),
        "Memory": facts.map_or(0, |f| f.mem_total),
        "Labels": facts.map(|f| f.labels.clone()).unwrap_or_default(),
    });
    let trimmed = body.trim_ascii_start();
    if trimmed.first() != Some(&b'{') {
        return bytes::Bytes::copy_from_slice(body);
    }
    let mut out = BytesMut::with_capacity(body.len() + 256);
    out.put_slice(b"{\"Node\":");
    out.put_slice(node_json.to_string().as_bytes());
    let rest = &trimmed[1..];
    if rest.trim_ascii_start().first() != Some(&b'}') {
        out.put_u8(b',');
    }
    out.put_slice(rest);
    out.freeze()
}
