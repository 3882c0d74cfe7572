//! How serving one connection ends in failure: the connection broke, or actix-http's
//! service failed. Its own file so the gate (`front`) and the relay both name it without
//! importing each other.

use std::io;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FrontError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("HTTP service: {0}")]
    Http(String),
}
