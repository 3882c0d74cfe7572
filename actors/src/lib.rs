//! Shoal actors.
#![forbid(unsafe_code)]

pub mod scheduler;
