//! Shoal actors.
#![forbid(unsafe_code)]
