//! Image routes, by what they do: `read` (list, inspect, history, search), `names` (tag,
//! remove, commit), `transfer` (pull, push, save, load) and `build`.

pub mod build;
pub mod names;
pub mod read;
pub mod transfer;
