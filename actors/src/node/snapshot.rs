//! What one NodeActor publishes about its engine: facts, health, containers, images.
//!
//! The actor owns the state and publishes an immutable `Arc<NodeSnapshot>` through a
//! `tokio::sync::watch` channel after each change, so the HTTP front reads a consistent
//! picture of every node without a message round trip per node and without locks held
//! across awaits (STYLE: "read a snapshot it publishes").

use super::Health;
use crate::engine::EngineAddr;
use crate::scheduler::{container_reservation, ContainerInfo, HostPort};
use bollard_stubs::models::{ContainerSummary, HostConfig, ImageSummary};
use bytes::{BufMut, Bytes, BytesMut};
use foldhash::{HashMap, HashMapExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

/// The engine's facts, from `GET /info` and `GET /version`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineFacts {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub ncpu: i64,
    pub mem_total: i64,
    pub operating_system: String,
    pub os_type: String,
    pub kernel_version: String,
    pub storage_driver: String,
    pub architecture: String,
    pub server_version: String,
    pub api_version: String,
    pub min_api_version: String,
}

/// The fields of `GET /info` Shoal keeps. Unknown fields are ignored, so newer engines parse.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InfoBody {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    #[serde(rename = "NCPU", default)]
    pub ncpu: i64,
    #[serde(default)]
    pub mem_total: i64,
    #[serde(default)]
    pub operating_system: String,
    #[serde(rename = "OSType", default)]
    pub os_type: String,
    #[serde(default)]
    pub kernel_version: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub architecture: String,
}

/// The fields of `GET /version` Shoal keeps.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionBody {
    #[serde(rename = "Version", default)]
    pub version: String,
    #[serde(rename = "ApiVersion")]
    pub api_version: String,
    #[serde(rename = "MinAPIVersion", default)]
    pub min_api_version: String,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl EngineFacts {
    pub(crate) fn from_bodies(info: InfoBody, version: VersionBody) -> Self {
        let labels = info
            .labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect();
        EngineFacts {
            id: info.id,
            name: info.name,
            labels,
            ncpu: info.ncpu,
            mem_total: info.mem_total,
            operating_system: info.operating_system,
            os_type: info.os_type,
            kernel_version: info.kernel_version,
            storage_driver: info.driver,
            architecture: info.architecture,
            server_version: version.version,
            api_version: version.api_version,
            min_api_version: version.min_api_version,
        }
    }
}

/// Resources a container holds on its node, from its inspect (`HostConfig`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reservation {
    pub nano_cpus: i64,
    pub memory: i64,
}

/// What a container holds on its node, read once from its inspect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerResources {
    pub reservation: Reservation,
    /// Host ports bound in bridge mode, or exposed by a `--net=host` container.
    pub host_ports: Vec<HostPort>,
    pub network_mode: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InspectConfig {
    #[serde(deserialize_with = "null_as_default")]
    exposed_ports: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectBody {
    #[serde(default)]
    host_config: Option<HostConfig>,
    #[serde(default)]
    config: Option<InspectConfig>,
}

/// A create body: the same fields as an inspect's, with `ExposedPorts` at the top.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    host_config: Option<HostConfig>,
    #[serde(flatten)]
    config: InspectConfig,
}

impl ContainerResources {
    /// Reads the resources from a container's inspect JSON; `None` when it is not one.
    /// Reservations are counted as the scheduler counts them (`container_reservation`).
    pub fn from_inspect(body: &[u8]) -> Option<Self> {
        let b: InspectBody = serde_json::from_slice(body).ok()?;
        Some(Self::from_config(
            b.host_config.unwrap_or_default(),
            b.config.unwrap_or_default(),
        ))
    }

    /// Reads the resources from the body of a create the engine accepted: the engine
    /// keeps reservations and port bindings as asked, so no inspect is needed to learn them.
    pub fn from_create(body: &[u8]) -> Option<Self> {
        let b: CreateBody = serde_json::from_slice(body).ok()?;
        Some(Self::from_config(
            b.host_config.unwrap_or_default(),
            b.config,
        ))
    }

    fn from_config(hc: HostConfig, config: InspectConfig) -> Self {
        let (nano_cpus, memory) = container_reservation(&hc);
        let network_mode = hc.network_mode.clone().unwrap_or_default();
        let mut host_ports = Vec::new();
        if network_mode == "host" {
            for spec in config.exposed_ports.keys() {
                host_ports.extend(HostPort::parse(spec));
            }
        } else {
            for (spec, bindings) in hc.port_bindings.iter().flatten() {
                let Some(exposed) = HostPort::parse(spec) else {
                    continue;
                };
                for b in bindings.iter().flatten() {
                    let port = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok());
                    if let Some(port) = port.filter(|p| *p != 0) {
                        host_ports.push(HostPort {
                            port,
                            proto: exposed.proto,
                        });
                    }
                }
            }
        }
        ContainerResources {
            reservation: Reservation {
                nano_cpus: nano_cpus as i64,
                memory: memory as i64,
            },
            host_ports,
            network_mode,
        }
    }
}

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
    /// The list JSON of this container without its `Names` field and without the opening
    /// `{`: a list answer is `{"Names":[...],` followed by this, so the node-qualified names
    /// are written per answer while the rest is serialized once per change, not per request.
    rendered_tail: Box<[u8]>,
}

impl ContainerEntry {
    pub fn new(mut summary: ContainerSummary) -> Self {
        let names = summary.names.take().unwrap_or_default();
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
            status: summary.status.unwrap_or_default(),
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
    /// `sizes` (`SizeRw`, `SizeRootFs`) are added when the client asked for them.
    pub fn render_into(&self, node_name: &str, sizes: Option<(i64, i64)>, out: &mut BytesMut) {
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
        let e = ContainerEntry::new(summary("abc", "web"));
        let mut out = BytesMut::new();
        e.render_into("node-1", Some((1, 2)), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Names"][0], "/node-1/web");
        assert_eq!(v["Id"], "abc");
        assert_eq!(v["Image"], "busybox");
        assert_eq!(v["Created"], 7);
        assert_eq!(v["SizeRootFs"], 2);
        assert_eq!(e.name(), "web");
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

    #[test]
    fn resources_come_from_host_config() {
        let body = br#"{"HostConfig":{"NanoCpus":0,"Memory":1073741824,"CpusetCpus":"0-1,3",
            "NetworkMode":"default","PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}],
            "53/udp":[{"HostIp":"","HostPort":"53"}],"81/tcp":null}},"Config":{"ExposedPorts":null}}"#;
        let r = ContainerResources::from_inspect(body).unwrap();
        assert_eq!(
            r.reservation,
            Reservation {
                nano_cpus: 3_000_000_000,
                memory: 1 << 30
            }
        );
        let mut ports = r.host_ports.clone();
        ports.sort();
        assert_eq!(ports, vec![HostPort::udp(53), HostPort::tcp(8080)]);
        let host =
            br#"{"HostConfig":{"NetworkMode":"host"},"Config":{"ExposedPorts":{"80/tcp":{}}}}"#;
        let r = ContainerResources::from_inspect(host).unwrap();
        assert_eq!(r.host_ports, vec![HostPort::tcp(80)]);
        assert!(ContainerResources::from_inspect(b"garbage").is_none());
        let create = br#"{"Image":"bb","ExposedPorts":{"80/tcp":{}},
            "HostConfig":{"NetworkMode":"host","Memory":64}}"#;
        let r = ContainerResources::from_create(create).unwrap();
        assert_eq!(r.host_ports, vec![HostPort::tcp(80)]);
        assert_eq!(r.reservation.memory, 64);
    }

    #[test]
    fn info_with_null_labels_parses() {
        let info: InfoBody =
            serde_json::from_str(r#"{"ID":"X","Name":"n","Labels":null,"NCPU":2}"#).unwrap();
        assert!(info.labels.is_empty());
        assert_eq!(info.ncpu, 2);
    }
}
