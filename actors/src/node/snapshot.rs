//! What one NodeActor publishes about its engine: facts, health, containers, images.
//!
//! The actor owns the state and publishes an immutable `Arc<NodeSnapshot>` through a
//! `tokio::sync::watch` channel after each change, so the HTTP front reads a consistent
//! picture of every node without a message round trip per node and without locks held
//! across awaits (STYLE: "read a snapshot it publishes").

use super::facts::{null_as_default, EngineFacts};
use super::list_order::{ListRanks, Ranked};
use super::resources::{ContainerResources, Reservation};
use super::Health;
use crate::engine::EngineAddr;
use crate::scheduler::ContainerInfo;
use bollard_stubs::models::{ContainerSummary, ImageSummary};
use bytes::{BufMut, Bytes, BytesMut};
use foldhash::{HashMap, HashMapExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::SystemTime;

/// One container as the engine listed it: the fields Shoal reads, and its list JSON
/// rendered once.
///
/// The parsed list entry itself is not kept: at 30,000 containers it was the largest thing
/// Shoal held, and only these fields of it are ever read. Nor is the status text kept apart
/// from the JSON: it is read back from there by the one filter that needs it (`exited`).
#[derive(Debug)]
pub struct ContainerEntry {
    /// ID, names, image, labels and state: what the scheduler reads too. The node's offers
    /// share it instead of copying it.
    pub info: Arc<ContainerInfo>,
    pub created: i64,
    /// This container's list JSON as a list answer shows it, less the node part of its
    /// names: `{"Names":["/` `/web"],"Status":"Up 3 seconds","Id":...}`. A list answer copies
    /// it in a few slices (the node's name at each of `name_cuts`, the sizes at `sizes_at`,
    /// `Host Down` over `status` on an unhealthy node), so listing a container costs a copy
    /// of bytes, not a serialization.
    json: Box<[u8]>,
    /// Where the node's name goes in `json`: just after the `"/` that opens each name.
    name_cuts: Box<[u32]>,
    /// Where `,"Status":` starts: `SizeRw` and `SizeRootFs` go there when asked for.
    sizes_at: u32,
    /// The span of the status string (quotes included) in `json`.
    status: (u32, u32),
}

/// The status a container list shows for the containers of an unhealthy node, as classic
/// Swarm did: what the engine last said of them may no longer be true.
pub const HOST_DOWN: &str = "Host Down";

/// A string as JSON (quotes included); a `&str` always serializes.
fn json_string(s: &str) -> Vec<u8> {
    serde_json::to_vec(s).unwrap_or_else(|_| b"\"\"".to_vec())
}

/// An offset into an entry's JSON (a list entry is far below 4 GiB).
fn offset(v: &[u8]) -> u32 {
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}

impl ContainerEntry {
    pub fn new(mut summary: ContainerSummary) -> Self {
        let names = summary.names.take().unwrap_or_default();
        let status = summary.status.take().unwrap_or_default();
        let tail = serde_json::to_vec(&summary).unwrap_or_else(|_| b"{}".to_vec());
        let mut json = Vec::with_capacity(tail.len() + 64);
        json.extend_from_slice(b"{\"Names\":[");
        let mut name_cuts = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(b"\"/");
            name_cuts.push(offset(&json));
            // `"/name"` escaped as JSON, its opening quote dropped: the node goes before it.
            let bare = json_string(&format!("/{}", n.trim_start_matches('/')));
            json.extend_from_slice(&bare[1..]);
        }
        json.push(b']');
        let sizes_at = offset(&json);
        json.extend_from_slice(b",\"Status\":");
        let status_start = offset(&json);
        json.extend_from_slice(&json_string(&status));
        let status_span = (status_start, offset(&json));
        // The rest of the engine's fields, after the `{` that opens them.
        if tail.len() > 2 {
            json.push(b',');
        }
        json.extend_from_slice(tail.get(1..).unwrap_or(b"}"));
        ContainerEntry {
            info: Arc::new(ContainerInfo {
                id: summary.id.unwrap_or_default(),
                names,
                image: summary.image.unwrap_or_default(),
                image_id: summary.image_id.unwrap_or_default(),
                labels: summary.labels.unwrap_or_default().into_iter().collect(),
                state: summary.state.map(|st| st.to_string()).unwrap_or_default(),
            }),
            created: summary.created.unwrap_or(0),
            json: json.into_boxed_slice(),
            name_cuts: name_cuts.into_boxed_slice(),
            sizes_at,
            status: status_span,
        }
    }

    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// A node's name escaped as the inside of a JSON string (no quotes): how
    /// [`ContainerEntry::render_into`] takes it.
    pub fn node_name_json(name: &str) -> Vec<u8> {
        let mut v = json_string(name);
        v.pop();
        v.remove(0);
        v
    }

    /// The engine's first name without the leading `/`.
    pub fn name(&self) -> &str {
        self.info
            .names
            .first()
            .map_or("", |n| n.trim_start_matches('/'))
    }

    /// `running`, `exited`, ... as the engine lists it.
    pub fn state(&self) -> &str {
        &self.info.state
    }

    /// The engine's status text (`Exited (137) 2 hours ago`), read back from the JSON.
    pub fn status(&self) -> String {
        let (start, end) = (self.status.0 as usize, self.status.1 as usize);
        self.json
            .get(start..end)
            .and_then(|s| serde_json::from_slice(s).ok())
            .unwrap_or_default()
    }

    /// The length of what [`ContainerEntry::render_into`] writes without sizes, given the
    /// length of the node's name as it goes in JSON.
    pub fn rendered_len(&self, node_name_len: usize, down: bool) -> usize {
        let base = self.json.len() + self.name_cuts.len() * node_name_len;
        if down {
            let status = (self.status.1 - self.status.0) as usize;
            base - status + json_string(HOST_DOWN).len()
        } else {
            base
        }
    }

    /// Writes this container's list JSON, with every name shown as `/node/name`;
    /// `node_name` is the node's name as it goes inside a JSON string (see
    /// [`ContainerEntry::node_name_json`]). `sizes` (`SizeRw`, `SizeRootFs`) are added when the client asked
    /// for them; a container of a node that is `down` shows the status [`HOST_DOWN`].
    pub fn render_into(
        &self,
        node_name: &[u8],
        sizes: Option<(i64, i64)>,
        down: bool,
        out: &mut BytesMut,
    ) {
        let json = &self.json[..];
        let mut at = 0;
        for &cut in self.name_cuts.iter() {
            out.put_slice(&json[at..cut as usize]);
            out.put_slice(node_name);
            at = cut as usize;
        }
        let sizes_at = self.sizes_at as usize;
        out.put_slice(&json[at..sizes_at]);
        if let Some((rw, root)) = sizes {
            out.put_slice(format!(",\"SizeRw\":{rw},\"SizeRootFs\":{root}").as_bytes());
        }
        if down {
            let (start, end) = (self.status.0 as usize, self.status.1 as usize);
            out.put_slice(&json[sizes_at..start]);
            out.put_slice(&json_string(HOST_DOWN));
            out.put_slice(&json[end..]);
        } else {
            out.put_slice(&json[sizes_at..]);
        }
    }
}

/// The containers of one node, indexed by ID and by name.
///
/// A node's successive tables share their entries and index keys: a change clones the
/// table shallowly (pointers and counts, no allocation per container) and edits the copy in
/// place, so a node of thousands of containers (binpack) is not re-indexed for each create.
/// The order of `entries` means nothing (a removal moves the last entry into its place).
#[derive(Debug, Default, Clone)]
pub struct ContainerTable {
    pub entries: Vec<Arc<ContainerEntry>>,
    by_id: HashMap<ById, usize>,
    by_name: HashMap<ByName, usize>,
    /// (running, paused, stopped): `/info` shows them per node.
    states: [usize; 3],
    /// `entries` in the order a list shows them, once a list asked (see `list_order`).
    order: ListRanks,
}

/// Index keys of a table: the entry itself, hashed and compared by its ID (`ById`) or its
/// first name (`ByName`), so an index costs a pointer per container, not a copy of each
/// key (the copies were ~110 bytes a container).
macro_rules! entry_key {
    ($key:ident, $field:ident) => {
        #[derive(Debug, Clone)]
        struct $key(Arc<ContainerEntry>);

        impl std::borrow::Borrow<str> for $key {
            fn borrow(&self) -> &str {
                self.0.$field()
            }
        }

        impl std::hash::Hash for $key {
            fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
                // As `str` hashes, so lookups by `&str` find it.
                self.0.$field().hash(h)
            }
        }

        impl PartialEq for $key {
            fn eq(&self, other: &Self) -> bool {
                self.0.$field() == other.0.$field()
            }
        }

        impl Eq for $key {}
    };
}
entry_key!(ById, id);
entry_key!(ByName, name);

/// Which of the (running, paused, stopped) counts a container is in.
fn state_slot(e: &ContainerEntry) -> usize {
    match e.state() {
        "running" | "restarting" => 0,
        "paused" => 1,
        _ => 2,
    }
}

impl ContainerTable {
    pub fn new(summaries: Vec<ContainerSummary>) -> Self {
        Self::from_entries(
            summaries
                .into_iter()
                .map(|s| Arc::new(ContainerEntry::new(s)))
                .collect(),
        )
    }

    pub(crate) fn from_entries(entries: Vec<Arc<ContainerEntry>>) -> Self {
        let mut table = ContainerTable {
            entries: Vec::with_capacity(entries.len()),
            by_id: HashMap::with_capacity(entries.len()),
            by_name: HashMap::with_capacity(entries.len()),
            states: [0; 3],
            order: ListRanks::default(),
        };
        for e in entries {
            table.upsert(e);
        }
        table
    }

    /// This table with `upserts` added (each replacing the entry with its ID) and the
    /// containers `removals` gone.
    pub fn changed(&self, upserts: Vec<ContainerEntry>, removals: &[String]) -> Self {
        let mut table = self.clone();
        for id in removals {
            table.remove(id);
        }
        for e in upserts {
            table.upsert(Arc::new(e));
        }
        table
    }

    fn upsert(&mut self, e: Arc<ContainerEntry>) {
        self.states[state_slot(&e)] += 1;
        // A key is the entry itself: a key is removed before it is inserted again, since an
        // insert over an existing key keeps the old key (and so the old entry).
        let (i, name_here) = match self.by_id.remove(e.id()) {
            Some(i) => {
                let old = std::mem::replace(&mut self.entries[i], e.clone());
                self.states[state_slot(&old)] -= 1;
                let name_here = self.by_name.get(old.name()) == Some(&i);
                if name_here {
                    self.by_name.remove(old.name());
                }
                (i, name_here || old.name() != e.name())
            }
            None => {
                self.entries.push(e.clone());
                (self.entries.len() - 1, true)
            }
        };
        self.by_id.insert(ById(e.clone()), i);
        if name_here {
            self.by_name.remove(e.name());
            self.by_name.insert(ByName(e), i);
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(i) = self.by_id.remove(id) else {
            return;
        };
        let gone = self.entries.swap_remove(i);
        self.states[state_slot(&gone)] -= 1;
        if self.by_name.get(gone.name()) == Some(&i) {
            self.by_name.remove(gone.name());
        }
        if let Some(moved) = self.entries.get(i) {
            let last = self.entries.len();
            if let Some(at) = self.by_id.get_mut(moved.id()) {
                *at = i;
            }
            if let Some(at) = self.by_name.get_mut(moved.name()).filter(|at| **at == last) {
                *at = i;
            }
        }
    }

    pub fn by_id(&self, id: &str) -> Option<&ContainerEntry> {
        self.shared(id).map(|e| &**e)
    }

    /// The entry of container `id`, to put in another table.
    pub fn shared(&self, id: &str) -> Option<&Arc<ContainerEntry>> {
        self.by_id.get(id).map(|&i| &self.entries[i])
    }

    pub fn by_name(&self, name: &str) -> Option<&ContainerEntry> {
        self.by_name.get(name).map(|&i| &*self.entries[i])
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in the order a container list shows them (newest first, then by ID),
    /// ranked once per table: a table does not change once published.
    pub fn list_order(&self) -> &[Ranked] {
        self.order.get_or_rank(&self.entries)
    }

    /// Whether this table lists the containers of `other`, each exactly as there (the same
    /// list JSON, so the same names, state, status, labels and all).
    pub fn lists_as(&self, other: &ContainerTable) -> bool {
        self.len() == other.len()
            && self.entries.iter().all(|e| {
                other
                    .by_id(e.id())
                    .is_some_and(|o| o.created == e.created && o.json == e.json)
            })
    }

    /// Counts by state: (running, paused, stopped).
    pub fn state_counts(&self) -> (usize, usize, usize) {
        (self.states[0], self.states[1], self.states[2])
    }
}

/// A network or a volume of one engine: the engine's JSON as listed, with the fields Shoal
/// looks at read out once. The JSON is kept as the engine's text and parsed only when a
/// route shows it: parsed values of every node's networks and volumes were ~11 MB at a
/// thousand nodes, the text is a third of that.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEntry {
    pub name: String,
    /// Networks have IDs; volumes are known by name only (empty here).
    pub id: String,
    /// `local`, `global` or `swarm`.
    pub scope: String,
    raw: Box<str>,
}

impl ObjectEntry {
    /// Reads an entry out of the engine's JSON of one network or volume.
    pub fn from_raw(raw: &RawValue) -> Self {
        let json: serde_json::Value = serde_json::from_str(raw.get()).unwrap_or_default();
        let field = |k: &str| {
            json.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        ObjectEntry {
            name: field("Name"),
            id: field("Id"),
            scope: field("Scope"),
            raw: raw.get().into(),
        }
    }

    /// The engine's JSON of it.
    pub fn json(&self) -> serde_json::Value {
        // Text that parsed once (in `from_raw`) parses again.
        serde_json::from_str(&self.raw).unwrap_or_default()
    }
}

/// `GET /volumes` answers an object around the list.
#[derive(Debug, Deserialize)]
pub(crate) struct VolumeList {
    #[serde(rename = "Volumes", default, deserialize_with = "null_as_default")]
    pub volumes: Vec<Box<RawValue>>,
}

/// What each container holds, by container ID. Keys and values are shared, so the copy a
/// change makes costs no allocation per container.
pub type ResourceMap = HashMap<Arc<str>, Arc<ContainerResources>>;

/// One node as its actor last saw it.
#[derive(Debug, Clone)]
pub struct NodeSnapshot {
    pub addr: EngineAddr,
    pub health: Health,
    /// Failed refreshes in a row.
    pub failures: u32,
    pub last_error: Option<String>,
    pub last_update: Option<SystemTime>,
    pub facts: Option<Arc<EngineFacts>>,
    pub containers: Arc<ContainerTable>,
    pub images: Arc<Vec<ImageSummary>>,
    pub networks: Arc<Vec<ObjectEntry>>,
    pub volumes: Arc<Vec<ObjectEntry>>,
    /// What each container holds, by container ID, for those inspected so far.
    pub resources: Arc<ResourceMap>,
    /// Sum of the known reservations of the listed containers.
    pub reserved: Reservation,
    /// What the front rendered from this snapshot (`/info`'s lines of this node), kept
    /// until the next snapshot: `/info` at a thousand nodes re-rendered all of them.
    pub rendered: RenderCache,
}

/// A memo of one rendering of a snapshot. A changed snapshot is a clone of the one before,
/// and the clone starts empty.
#[derive(Debug, Default)]
pub struct RenderCache(std::sync::OnceLock<Bytes>);

impl Clone for RenderCache {
    fn clone(&self) -> Self {
        RenderCache::default()
    }
}

impl RenderCache {
    /// The rendering, made by `render` the first time it is asked for.
    pub fn get_or_render(&self, render: impl FnOnce() -> Bytes) -> Bytes {
        self.0.get_or_init(render).clone()
    }
}

impl NodeSnapshot {
    pub fn pending(addr: EngineAddr) -> Self {
        NodeSnapshot {
            addr,
            health: Health::Pending,
            failures: 0,
            last_error: None,
            last_update: None,
            facts: None,
            containers: Arc::new(ContainerTable::default()),
            images: Arc::new(Vec::new()),
            networks: Arc::new(Vec::new()),
            volumes: Arc::new(Vec::new()),
            resources: Arc::new(HashMap::new()),
            reserved: Reservation::default(),
            rendered: RenderCache::default(),
        }
    }

    /// Containers listed whose reservations are not known yet (their inspect is under way):
    /// the scheduler counts a container only once they are.
    pub fn unreserved(&self) -> usize {
        self.containers
            .entries
            .iter()
            .filter(|e| !self.resources.contains_key(e.id()))
            .count()
    }

    /// The engine's own name, or the address while it is not known.
    pub fn engine_name(&self) -> String {
        match &self.facts {
            Some(f) if !f.name.is_empty() => f.name.clone(),
            _ => self.addr.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, name: &str) -> ContainerSummary {
        ContainerSummary {
            id: Some(id.into()),
            names: Some(vec![format!("/{name}")]),
            image: Some("busybox".into()),
            created: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn rendered_entry_is_the_engine_json_with_qualified_names() {
        let e = ContainerEntry::new(ContainerSummary {
            state: Some(bollard_stubs::models::ContainerSummaryStateEnum::RUNNING),
            status: Some("Up 3 seconds".into()),
            ..summary("abc", "web")
        });
        let mut out = BytesMut::new();
        e.render_into(b"node-1", Some((1, 2)), false, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Status"], "Up 3 seconds");
        assert_eq!(v["Names"][0], "/node-1/web");
        assert_eq!(v["Id"], "abc");
        assert_eq!(v["Image"], "busybox");
        assert_eq!(v["Created"], 7);
        assert_eq!(v["SizeRootFs"], 2);
        assert_eq!(e.name(), "web");
        let mut down = BytesMut::new();
        e.render_into(b"node-1", None, true, &mut down);
        let v: serde_json::Value = serde_json::from_slice(&down).unwrap();
        assert_eq!(v["Status"], HOST_DOWN);
        assert_eq!(
            v["State"], "running",
            "the engine's last word on the state stays"
        );
        let text = String::from_utf8(down.to_vec()).unwrap();
        assert_eq!(text.matches("\"Status\"").count(), 1, "{text}");
        assert_eq!(e.status(), "Up 3 seconds");
    }

    #[test]
    fn every_name_is_qualified_and_escaped() {
        let e = ContainerEntry::new(ContainerSummary {
            names: Some(vec!["/web".into(), "/a\"b/alias".into()]),
            status: Some("Exited (137) 2 \"hours\" ago".into()),
            ..summary("abc", "unused")
        });
        let mut out = BytesMut::new();
        let node = ContainerEntry::node_name_json("n\"1");
        e.render_into(&node, None, false, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Names"][0], "/n\"1/web");
        assert_eq!(v["Names"][1], "/n\"1/a\"b/alias");
        assert_eq!(v["Status"], "Exited (137) 2 \"hours\" ago");
        assert_eq!(e.status(), "Exited (137) 2 \"hours\" ago");
        let bare = ContainerEntry::new(ContainerSummary::default());
        let mut out = BytesMut::new();
        bare.render_into(b"n", Some((0, 5)), true, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Names"], serde_json::json!([]));
        assert_eq!(
            (v["SizeRootFs"].as_i64(), v["Status"].as_str()),
            (Some(5), Some(HOST_DOWN))
        );
    }

    #[test]
    fn changes_keep_the_indexes_right() {
        let t = ContainerTable::new(vec![
            summary("a1", "x"),
            summary("b2", "y"),
            summary("c3", "z"),
        ]);
        let mut renamed = summary("c3", "w");
        renamed.state = Some(bollard_stubs::models::ContainerSummaryStateEnum::RUNNING);
        let t2 = t.changed(
            vec![
                ContainerEntry::new(renamed),
                ContainerEntry::new(summary("d4", "v")),
            ],
            &["a1".to_string()],
        );
        assert_eq!(t2.len(), 3);
        assert!(t2.by_id("a1").is_none() && t2.by_name("x").is_none());
        assert_eq!(t2.by_name("w").unwrap().id(), "c3");
        assert!(t2.by_name("z").is_none());
        assert_eq!(t2.by_id("b2").unwrap().name(), "y");
        assert_eq!(t2.by_name("v").unwrap().id(), "d4");
        assert_eq!(t2.state_counts(), (1, 0, 2));
        assert_eq!(t.len(), 3, "the old table is untouched");
        assert_eq!(t.by_name("x").unwrap().id(), "a1");
        let t3 = t2.changed(
            vec![],
            &["d4".to_string(), "b2".to_string(), "nope".to_string()],
        );
        assert_eq!(t3.len(), 1);
        assert_eq!(t3.by_name("w").unwrap().id(), "c3");
        assert_eq!(t3.entries[0].id(), "c3");
    }

    #[test]
    fn a_replaced_entry_is_not_kept_by_the_indexes() {
        let t = ContainerTable::new(vec![summary("a1", "x"), summary("b2", "y")]);
        let old = t.shared("a1").unwrap().clone();
        let t2 = t.changed(vec![ContainerEntry::new(summary("a1", "x"))], &[]);
        let renamed = t2.changed(vec![ContainerEntry::new(summary("b2", "z"))], &[]);
        drop((t, t2));
        assert_eq!(Arc::strong_count(&old), 1, "only this test holds it");
        assert_eq!(renamed.by_name("z").unwrap().id(), "b2");
        assert!(renamed.by_name("y").is_none());
        assert_eq!(renamed.by_name("x").unwrap().id(), "a1");
    }

    #[test]
    fn table_indexes_by_id_and_name() {
        let t = ContainerTable::new(vec![summary("a1", "x"), summary("b2", "y")]);
        assert_eq!(t.by_id("b2").unwrap().name(), "y");
        assert_eq!(t.by_name("x").unwrap().id(), "a1");
        assert!(t.by_name("z").is_none());
    }
}
