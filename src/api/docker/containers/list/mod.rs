//! `GET /containers/json` and `GET /containers/{id}/json`, answered from the node snapshots
//! (the list) and the node's inspect cache (one container).
//!
//! A list sorts the compact ranks each node's table keeps (`order`); the list of every
//! container, the `ps -a` of tools polling the cluster, keeps its order in the published
//! view (a list after a change sorts only the changed nodes' containers into it) and its
//! bytes once the cluster holds still, sent again as long as no node it was made from
//! changed.

mod order;

use crate::api::docker::filters::{truthy, Filters, ListQuery};
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::authz::Grant;
use actix_web::body::SizedStream;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use order::{entry, in_list_order, reordered};
use serde::Deserialize;
use shoal_actors::cluster::{ClusterRead, ClusterView, Lookup, NodeRead};
use shoal_actors::node::{ContainerEntry, Health, InspectContainer, ListContainerSizes, Listed};
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
    let status = e.status();
    let rest = status.strip_prefix("Exited (")?;
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

fn created_of(read: &ClusterRead, reference: &str) -> Result<i64, ApiError> {
    let (_, e) = read.lookup_container(reference)?;
    Ok(e.created)
}

/// The values of one filter key compiled once per list, not once per container: Docker's
/// `Match` (an exact value, or an unanchored regular expression; a value that is not a
/// valid expression matches only exactly), as `Filters::matches`.
struct Matcher(Vec<(String, Option<regex::Regex>)>);

impl Matcher {
    fn of(filters: &Filters, key: &str) -> Option<Matcher> {
        filters.get(key).map(|values| {
            Matcher(
                values
                    .iter()
                    .map(|v| (v.clone(), regex::Regex::new(v).ok()))
                    .collect(),
            )
        })
    }

    fn matches(&self, source: &str) -> bool {
        self.0
            .iter()
            .any(|(v, re)| v == source || re.as_ref().is_some_and(|re| re.is_match(source)))
    }
}

/// A list query, parsed and checked against the cluster it lists.
struct ListSpec {
    filters: Filters,
    before: Option<i64>,
    since: Option<i64>,
    limit: Option<usize>,
    /// Stopped containers (and the containers of unhealthy nodes) too.
    all: bool,
}

impl ListSpec {
    fn parse(read: &ClusterRead, q: &ListQuery) -> Result<ListSpec, ApiError> {
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
        Ok(ListSpec {
            filters,
            before,
            since,
            limit,
            all,
        })
    }

    /// No filter of any kind (`before` and `since` are filters).
    fn unfiltered(&self) -> bool {
        self.filters.0.values().all(Vec::is_empty)
    }

    /// Every container (or every running one) of the cluster: the answer
    /// `ClusterView::list_answer` keeps, when no tenant and no sizes change it.
    fn whole(&self) -> bool {
        self.limit.is_none() && self.unfiltered()
    }
}

/// Whether the list shows the containers of node `i` at all: as classic Swarm, what an
/// unhealthy node last listed may no longer run, so only `all` shows it (as `Host Down`).
fn node_shown(read: &ClusterRead, all: bool, i: usize) -> bool {
    all || read.nodes[i].snapshot.health != Health::Unhealthy
}

/// Whether the list shows a container by its state alone.
fn state_shown(all: bool, entry: &ContainerEntry) -> bool {
    all || matches!(entry.state(), "running" | "paused" | "restarting")
}

fn select(read: &ClusterRead, spec: &ListSpec, tenant: Option<&str>) -> Vec<Listed> {
    let filters = &spec.filters;
    let (before, since, all) = (spec.before, spec.since, spec.all);
    let (names, ids) = (Matcher::of(filters, "name"), Matcher::of(filters, "id"));
    // Whether a container passes the filters, given its node's name.
    let wanted = |entry: &ContainerEntry, node_name: &str| {
        let name_ok = names.as_ref().is_none_or(|m| {
            entry.info.names.iter().any(|n| {
                let bare = format!("/{}", n.trim_start_matches('/'));
                m.matches(&bare) || m.matches(&format!("/{node_name}{bare}"))
            })
        });
        if !name_ok
            || !ids.as_ref().is_none_or(|m| m.matches(entry.id()))
            || !filters.matches_labels("label", &entry.info.labels)
        {
            return false;
        }
        if let Some(states) = filters.get("status") {
            if !states.iter().any(|s| s == entry.state()) {
                return false;
            }
        }
        if let Some(codes) = filters.get("exited") {
            if !exit_code(entry).is_some_and(|c| codes.contains(&c)) {
                return false;
            }
        }
        if let Some(images) = filters.get("ancestor") {
            if !images.iter().any(|i| ancestor_matches(entry, i)) {
                return false;
            }
        }
        !(before.is_some_and(|t| entry.created >= t) || since.is_some_and(|t| entry.created <= t))
    };
    let unfiltered = spec.unfiltered();
    let nodes = (0..read.nodes.len()).filter(|&i| node_shown(read, all, i));
    // Newest first over all nodes, as an engine lists.
    in_list_order(read, nodes, spec.limit, |node, entry| {
        state_shown(all, entry)
            // Another tenant's containers are not there for this client.
            && Grant::sees(tenant, |k| entry.info.labels.get(k).map(String::as_str))
            && (unfiltered || wanted(entry, &read.nodes[node].name))
    })
}

pub async fn list(
    state: web::Data<ApiState>,
    q: web::Query<ListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let view = state.cluster();
    let read = view.read();
    let spec = ListSpec::parse(&read, &q)?;
    let tenant = Grant::tenant_of(&req);
    let size = truthy(q.size.as_deref());
    if spec.whole() && tenant.is_none() && !size {
        return Ok(whole_answer(&view, read, &spec));
    }
    let selected = select(&read, &spec, tenant.as_deref());
    let sizes = if size {
        fetch_sizes(&read, &selected).await
    } else {
        HashMap::new()
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(ListBody::new(read, selected.into(), sizes).into_stream()))
}

/// Bytes of the kept whole answer sent at a time: actix-http copies each into its write
/// buffer, so slices keep that buffer small (a slice of `Bytes` is not a copy).
const ANSWER_SLICE: usize = 256 * 1024;

/// The list of every container (or every running one), from `view`'s memo when nothing it
/// was rendered from changed; else rendered whole and kept there when the last list saw
/// the cluster as this one does, or streamed as any other list when it changed since.
fn whole_answer(view: &ClusterView, read: ClusterRead, spec: &ListSpec) -> HttpResponse {
    let (all, variant) = (spec.all, u8::from(spec.all));
    let lookup = view.list_answer.get(&read, variant, |since| match since {
        Some(since) => reordered(
            &read,
            since,
            |i| node_shown(&read, all, i),
            |_, e| state_shown(all, e),
        ),
        None => select(&read, spec, None),
    });
    let body = match lookup {
        Lookup::Kept(body) => body,
        Lookup::Order { order, still: true } => {
            let lister = ListBody::new(read, order.clone(), HashMap::new());
            let body = lister.render_whole();
            view.list_answer
                .put(&lister.read, variant, order, body.clone());
            body
        }
        Lookup::Order {
            order,
            still: false,
        } => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .streaming(ListBody::new(read, order, HashMap::new()).into_stream());
        }
    };
    let len = body.len();
    let slices = (0..len.div_ceil(ANSWER_SLICE)).map(move |i| {
        Ok::<_, Infallible>(body.slice(i * ANSWER_SLICE..len.min((i + 1) * ANSWER_SLICE)))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(SizedStream::new(
            len as u64,
            futures_util::stream::iter(slices),
        ))
}

/// Containers written into one chunk of the list answer (~400 bytes each).
const LIST_CHUNK: usize = 256;

/// The list answer, written a chunk at a time as the client reads it: at a thousand
/// nodes the whole answer is ~12 MB, and built whole it was held twice (once here, once
/// in actix-http's write buffer) for every client listing at once. Each container's JSON
/// is already rendered (see `ContainerEntry::render_into`): a chunk is copies of it.
struct ListBody {
    read: ClusterRead,
    /// Shared with the memo when it is the whole list's order.
    selected: Arc<[Listed]>,
    sizes: HashMap<String, (i64, i64)>,
    /// Each node's name as it goes in a JSON string, by node index (escaped once per list).
    node_names: Vec<Vec<u8>>,
}

impl ListBody {
    fn new(read: ClusterRead, selected: Arc<[Listed]>, sizes: HashMap<String, (i64, i64)>) -> Self {
        let node_names = read
            .nodes
            .iter()
            .map(|n| ContainerEntry::node_name_json(&n.name))
            .collect();
        ListBody {
            read,
            selected,
            sizes,
            node_names,
        }
    }

    /// The JSON array `[...]`, a chunk of `LIST_CHUNK` containers at a time.
    fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
        let body = Rc::new(self);
        let chunks = body.selected.len().div_ceil(LIST_CHUNK).max(1);
        futures_util::stream::iter(0..chunks).map(move |c| Ok(body.render_chunk(c, chunks)))
    }

    /// The whole JSON array in one buffer of its exact size (an answer kept in a memo
    /// should not hold spare capacity).
    fn render_whole(&self) -> Bytes {
        let len: usize = self
            .selected
            .iter()
            .map(|s| {
                let down = self.read.nodes[s.node as usize].snapshot.health == Health::Unhealthy;
                entry(&self.read, s).rendered_len(self.node_names[s.node as usize].len(), down) + 1
            })
            .sum();
        let mut out = BytesMut::with_capacity(len.max(1) + 1);
        for s in self.selected.iter() {
            out.put_u8(if out.is_empty() { b'[' } else { b',' });
            self.render_one(s, &mut out);
        }
        if out.is_empty() {
            out.put_u8(b'[');
        }
        out.put_u8(b']');
        out.freeze()
    }

    fn render_one(&self, s: &Listed, out: &mut BytesMut) {
        let node = &self.read.nodes[s.node as usize];
        let down = node.snapshot.health == Health::Unhealthy;
        let entry = entry(&self.read, s);
        let sizes = if self.sizes.is_empty() {
            None
        } else {
            self.sizes.get(entry.id()).copied()
        };
        entry.render_into(&self.node_names[s.node as usize], sizes, down, out);
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
            self.render_one(s, &mut out);
        }
        if c + 1 == chunks {
            out.put_u8(b']');
        }
        out.freeze()
    }
}

/// Sizes are computed by the engines on request, so `size=1` asks the nodes involved.
async fn fetch_sizes(read: &ClusterRead, selected: &[Listed]) -> HashMap<String, (i64, i64)> {
    let mut picked = vec![false; read.nodes.len()];
    for s in selected {
        picked[s.node as usize] = true;
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
