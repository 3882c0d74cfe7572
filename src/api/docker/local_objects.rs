//! The list loop networks and volumes share: both are local to their engine, so their
//! list walks every node's published table. A node that is not healthy is skipped with a
//! warning (its objects are missing from the answer, and the client should know why), an
//! object a tenant client may not see is left out (`--authz-policy`), and the route's own
//! filters decide the rest.

use crate::authz::Grant;
use serde_json::Value;
use shoal_actors::cluster::{ClusterRead, NodeRead};
use shoal_actors::node::{Health, NodeSnapshot, ObjectEntry};

/// One listed object: its node, its entry and the engine's JSON of it.
pub struct Listed<'a> {
    pub node: &'a NodeRead,
    pub entry: &'a ObjectEntry,
    pub json: Value,
}

/// What a list found: the objects kept, and a warning per node that was not asked.
pub struct Listing<'a> {
    pub objects: Vec<Listed<'a>>,
    pub warnings: Vec<String>,
}

/// How one kind of object is listed.
pub struct ListSpec<'f> {
    /// Plural of the kind, for warnings: `"volumes"`.
    pub kind: &'static str,
    /// The node's table of the kind.
    pub table: fn(&NodeSnapshot) -> &[ObjectEntry],
    /// Objects every tenant sees (the built-in networks).
    pub public: &'f dyn Fn(&ObjectEntry) -> bool,
    /// The route's filters.
    pub keep: &'f dyn Fn(&ObjectEntry, &Value) -> bool,
}

/// Walks every node's table in the order users see.
pub fn list<'a>(read: &'a ClusterRead, tenant: Option<&str>, spec: &ListSpec<'_>) -> Listing<'a> {
    let mut out = Listing {
        objects: Vec::new(),
        warnings: Vec::new(),
    };
    for node in &read.nodes {
        if node.snapshot.health != Health::Healthy {
            out.warnings.push(format!(
                "node {} is {}: its {} are not listed",
                node.name, node.snapshot.health, spec.kind
            ));
            continue;
        }
        for entry in (spec.table)(&node.snapshot) {
            let json = entry.json();
            let visible = (spec.public)(entry)
                || Grant::sees(tenant, |k| json.get("Labels")?.get(k)?.as_str());
            if visible && (spec.keep)(entry, &json) {
                out.objects.push(Listed { node, entry, json });
            }
        }
    }
    out
}
