//! The Docker object routes: containers, images, networks, volumes and the system routes,
//! each answered from the nodes' published snapshots or sent to the node that owns the
//! object (through `forward`). What they parse from a request first lives here too:
//! `filters` (the `filters` parameter and the list query) and `reference` (image names), `json_keys` (a body's keys in Docker's spelling, as Go reads
//! them).

pub mod containers;
pub mod disk_usage;
pub mod events;
pub mod filters;
pub mod images;
pub mod json_keys;
pub mod local_objects;
pub mod networks;
pub mod prune;
pub mod reference;
pub mod system;
pub mod volumes;
