//! Shoal's own pages beside the Docker API: `metrics` (`/metrics`, and the routes of this
//! stage), `cluster_json` (`/shoal/api/cluster`) and `page` (the live cluster page).

pub mod cluster_json;
pub mod metrics;
pub mod page;
