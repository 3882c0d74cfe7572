//! What a node keeps of the engine's answers that clients ask for again and again: the
//! inspect JSON of containers and of images. An entry lives until an event or a list says
//! its object changed, so a cached answer is never older than what the node knows.

use bytes::Bytes;
use std::collections::HashMap;

/// Which inspect a cache entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspect {
    /// A container's, by full ID.
    Container,
    /// An image's, by the name the client gave.
    Image,
}

/// The inspect caches of one node.
#[derive(Debug, Default)]
pub struct Caches {
    containers: HashMap<String, Bytes>,
    images: HashMap<String, Bytes>,
}

impl Caches {
    fn of(&mut self, kind: Inspect) -> &mut HashMap<String, Bytes> {
        match kind {
            Inspect::Container => &mut self.containers,
            Inspect::Image => &mut self.images,
        }
    }

    /// The cached inspect `key` of that kind.
    pub fn get(&mut self, kind: Inspect, key: &str) -> Option<Bytes> {
        self.of(kind).get(key).cloned()
    }

    pub fn keep(&mut self, kind: Inspect, key: String, body: Bytes) {
        self.of(kind).insert(key, body);
    }

    /// Container `id` changed: its inspect must be asked for again.
    pub fn forget_container(&mut self, id: &str) {
        self.containers.remove(id);
    }

    /// Keeps only the containers `listed` says still exist.
    pub fn retain_containers(&mut self, listed: impl Fn(&str) -> bool) {
        self.containers.retain(|id, _| listed(id));
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
        c.keep(Inspect::Container, "a".into(), Bytes::from_static(b"{}"));
        c.keep(Inspect::Container, "b".into(), Bytes::from_static(b"{}"));
        c.keep(Inspect::Image, "bb".into(), Bytes::from_static(b"[]"));
        c.retain_containers(|id| id == "a");
        assert!(c.get(Inspect::Container, "a").is_some());
        assert!(c.get(Inspect::Container, "b").is_none());
        c.forget_container("a");
        assert!(c.get(Inspect::Container, "a").is_none());
        assert!(c.get(Inspect::Image, "bb").is_some());
        assert!(
            c.get(Inspect::Container, "bb").is_none(),
            "kinds do not mix"
        );
        c.forget_images();
        assert!(c.get(Inspect::Image, "bb").is_none());
    }
}
