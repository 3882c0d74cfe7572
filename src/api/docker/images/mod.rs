//! Image routes, by what they do: `read` (list, inspect, history, search), `names` (tag,
//! remove, commit), `transfer` (pull, push, save, load) and `build`; and what they share
//! here: the `{name}` of their paths, and which nodes show an image.

pub mod build;
mod context;
pub mod names;
pub mod read;
pub mod transfer;

use super::reference;
use crate::api::error::ApiError;
use crate::api::forward::fanout::healthy;
use serde::Deserialize;
use shoal_actors::cluster::{ClusterRead, NodeRead};
use shoal_actors::node::NodeSnapshot;

/// The `{name}` of an image route (it may hold slashes: `localhost:5000/busybox`).
#[derive(Debug, Deserialize)]
pub struct ImagePath {
    pub name: String,
}

impl ImagePath {
    /// The name, once checked to be an image reference (the engine's 400 otherwise).
    pub fn reference(self) -> Result<String, ApiError> {
        reference::check(&self.name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(self.name)
    }
}

/// Does the node's list show `name` (a tag, `repo` meaning `repo:latest`, an ID or ID
/// prefix, or a digest reference)?
pub fn has_image(snapshot: &NodeSnapshot, name: &str) -> bool {
    let bare = name.trim_start_matches("sha256:");
    let with_tag = if name.contains('@') || name.rsplit('/').next().is_some_and(|l| l.contains(':'))
    {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    snapshot.images.iter().any(|img| {
        img.repo_tags.iter().any(|t| *t == with_tag || *t == name)
            || img.repo_digests.iter().any(|d| d == name)
            || (bare.len() >= 4 && img.id.trim_start_matches("sha256:").starts_with(bare))
    })
}

/// Healthy nodes that show `name`; all healthy nodes when none does.
pub fn image_nodes<'a>(read: &'a ClusterRead, name: &str) -> Vec<&'a NodeRead> {
    let having: Vec<&NodeRead> = healthy(read)
        .map(|(_, n)| n)
        .filter(|n| has_image(&n.snapshot, name))
        .collect();
    if having.is_empty() {
        healthy(read).map(|(_, n)| n).collect()
    } else {
        having
    }
}

pub fn no_such_image(name: &str) -> impl FnOnce() -> ApiError + '_ {
    move || ApiError::NotFound(format!("No such image: {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::ImageSummary;
    use shoal_actors::engine::EngineAddr;
    use std::sync::Arc;

    #[test]
    fn image_references_match_like_an_engine() {
        let mut snap = NodeSnapshot::pending(EngineAddr::Tcp {
            host: "h".into(),
            port: 1,
        });
        snap.images = Arc::new(vec![ImageSummary {
            id: "sha256:abcdef123".into(),
            repo_tags: vec!["busybox:latest".into(), "localhost:5000/bb:v1".into()],
            repo_digests: vec!["bb@sha256:99".into()],
            ..Default::default()
        }]);
        for yes in [
            "busybox",
            "busybox:latest",
            "localhost:5000/bb:v1",
            "abcd",
            "sha256:abcdef",
            "bb@sha256:99",
        ] {
            assert!(has_image(&snap, yes), "{yes}");
        }
        for no in ["busy", "localhost:5000/bb", "abc", "ubuntu"] {
            assert!(!has_image(&snap, no), "{no}");
        }
    }
}
