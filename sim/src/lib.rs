//! Simulated Docker engines.
#![forbid(unsafe_code)]
