//! What a node keeps of the engine's answers that clients ask for again and again: the
//! inspect JSON of containers and of images. An entry lives until an event or a list says
//! its object changed, so a cached answer is never older than what the node knows.

use bytes::Bytes;
use std::collections::HashMap;

/// The inspect caches of one node.
#[derive(Debug, Default)]
pub struct Caches {
    containers: HashMap<String, Bytes>,
    images: HashMap<String, Bytes>,
}

impl Caches {
    /// The cached inspect of container `id`.
    pub fn container(&self, id: &str) -> Option<Bytes> {
        self.containers.get(id).cloned()
    }

    pub fn keep_container(&mut self, id: String, body: Bytes) {
        self.containers.insert(id, body);
    }

    /// Container `id` changed: its inspect must be asked for again.
    pub fn forget_container(&mut self, id: &str) {
        self.containers.remove(id);
    }

    /// Keeps only the containers `listed` says still exist.
    pub fn retain_containers(&mut self, listed: impl Fn(&str) -> bool) {
        self.containers.retain(|id, _| listed(id));
    }

    /// The cached inspect of image `name` (as the client named it).
    pub fn image(&self, name: &str) -> Option<Bytes> {
        self.images.get(name).cloned()
    }

    pub fn keep_image(&mut self, name: String, body: Bytes) {
        self.images.insert(name, body);
    }

    /// An image may have changed (an image event, a refresh): forget every image inspect,
    /// since a name may now point at another image.
    pub fn forget_images(&mut self) {
        self.images.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_until_forgotten() {
        let mut c = Caches::default();
        c.keep_container("a".into(), Bytes::from_static(b"{}"));
        c.keep_container("b".into(), Bytes::from_static(b"{}"));
        c.keep_image("bb".into(), Bytes::from_static(b"[]"));
        c.retain_containers(|id| id == "a");
        assert!(c.container("a").is_some() && c.container("b").is_none());
        c.forget_container("a");
        assert!(c.container("a").is_none());
        assert!(c.image("bb").is_some());
        c.forget_images();
        assert!(c.image("bb").is_none());
    }
}
