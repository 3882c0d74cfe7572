//! What one NodeActor publishes about its engine: facts, health, containers, images.
//!
//! The actor owns the state and publishes an immutable `Arc<NodeSnapshot>` through a
//! `tokio::sync::watch` channel after each change, so the HTTP front reads a consistent
//! picture of every node without a message round trip per node and without locks held
//! across awaits (STYLE: "read a snapshot it publishes").

use super::facts::{null_as_default, EngineFacts};
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

/// One container as the engine listed it: the fields Shoal reads, and its pre-rendered JSON.
///
/// The parsed list entry itself is not kept: at 30,000 containers it was the largest thing
/// Shoal held, and only these fields of it are ever read.
#[derive(Debug)]
pub struct ContainerEntry {
    /// ID, names, image, labels and state: what the scheduler reads too. The node's offers
    /// share it instead of copying it.
    pub info: Arc<ContainerInfo>,
    pub created: i64,
    /// The engine's status text (`Exited (137) 2 hours ago`).
    pub status: String,
    /// The list JSON of this container without its `Names` and `Status` fields and without
    /// the opening `{`: a list answer is `{"Names":[...],"Status":...,` followed by this, so
    /// the node-qualified names and the status (`Host Down` on an unhealthy node) are written
    /// per answer while the rest is serialized once per change, not per request.
    rendered_tail: Box<[u8]>,
}

/// The status a container list shows for the containers of an unhealthy node, as classic
/// Swarm did: what the engine last said of them may no longer be true.
pub const HOST_DOWN: &str = "Host Down";

impl ContainerEntry {
    pub fn new(mut summary: ContainerSummary) -> Self {
        let names = summary.names.take().unwrap_or_default();
        let status = summary.status.take().unwrap_or_default();
        let mut full = serde_json::to_vec(&summary).unwrap_or_else(|_| b"{}".to_vec());
        full.remove(0);
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
            status,
            rendered_tail: full.into_boxed_slice(),
        }
    }

    pub fn id(&self) -> &str {
        &self.info.id
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

    /// Writes this container's list JSON, with every name shown as `/node/name`.
    /// `sizes` (`SizeRw`, `SizeRootFs`) are added when the client asked for them; a
    /// container of a node that is `down` shows the status [`HOST_DOWN`].
    pub fn render_into(
        &self,
        node_name: &str,
        sizes: Option<(i64, i64)>,
        down: bool,
        out: &mut BytesMut,
    ) {
        out.put_slice(b"{\"Names\":[");
        for (i, n) in self.info.names.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            let qualified = format!("/{node_name}/{}", n.trim_start_matches('/'));
            // A name is a plain string; serde_json escapes what needs escaping.
            out.put_slice(
                serde_json::to_string(&qualified)
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        out.put_slice(b"]");
        if let Some((rw, root)) = sizes {
            out.put_slice(format!(",\"SizeRw\":{rw},\"SizeRootFs\":{root}").as_bytes());
        }
        let status = if down { HOST_DOWN } else { &self.status };
        out.put_slice(b",\"Status\":");
        out.put_slice(serde_json::to_string(status).unwrap_or_default().as_bytes());
        if self.rendered_tail.len() > 1 {
            out.put_u8(b',');
        }
        out.put_slice(&self.rendered_tail);
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
    by_id: HashMap<Arc<str>, usize>,
    by_name: HashMap<Arc<str>, usize>,
    /// (running, paused, stopped): `/info` shows them per node.
    states: [usize; 3],
}

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
        match self.by_id.get(e.id()).copied() {
            Some(i) => {
                let old = std::mem::replace(&mut self.entries[i], e);
                self.states[state_slot(&old)] -= 1;
                let new = &self.entries[i];
                if old.name() != new.name() {
                    if self.by_name.get(old.name()) == Some(&i) {
                        self.by_name.remove(old.name());
                    }
                    self.by_name.insert(Arc::from(new.name()), i);
                }
            }
            None => {
                let i = self.entries.len();
                self.by_id.insert(Arc::from(e.id()), i);
                self.by_name.insert(Arc::from(e.name()), i);
                self.entries.push(e);
            }
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
        e.render_into("node-1", Some((1, 2)), false, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Status"], "Up 3 seconds");
        assert_eq!(v["Names"][0], "/node-1/web");
        assert_eq!(v["Id"], "abc");
        assert_eq!(v["Image"], "busybox");
        assert_eq!(v["Created"], 7);
        assert_eq!(v["SizeRootFs"], 2);
        assert_eq!(e.name(), "web");
        let mut down = BytesMut::new();
        e.render_into("node-1", None, true, &mut down);
        let v: serde_json::Value = serde_json::from_slice(&down).unwrap();
        assert_eq!(v["Status"], HOST_DOWN);
        assert_eq!(
            v["State"], "running",
            "the engine's last word on the state stays"
        );
        let text = String::from_utf8(down.to_vec()).unwrap();
        assert_eq!(text.matches("\"Status\"").count(), 1, "{text}");
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
    fn table_indexes_by_id_and_name() {
        let t = ContainerTable::new(vec![summary("a1", "x"), summary("b2", "y")]);
        assert_eq!(t.by_id("b2").unwrap().name(), "y");
        assert_eq!(t.by_name("x").unwrap().id(), "a1");
        assert!(t.by_name("z").is_none());
    }
}
