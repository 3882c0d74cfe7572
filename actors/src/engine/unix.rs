//! The one awc connector for engines (and Shoals) behind a unix socket: awc only dials TCP,
//! so a client for `unix:///path` gets this connector, which opens the socket instead and
//! lets awc speak HTTP/1.1 over it. Used by the engine client and by `shoal-bench`'s load
//! client.

use actix_rt::net::UnixStream;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection};
use awc::http::Uri;
use std::path::PathBuf;

/// A connector for `awc::Connector::connector` that opens `path` for every connection,
/// whatever host the request's URL names (use `http://localhost`).
pub fn unix_connector(
    path: impl Into<PathBuf>,
) -> impl Service<ConnectInfo<Uri>, Response = Connection<Uri, UnixStream>, Error = ConnectError>
       + Clone
       + 'static {
    let path: PathBuf = path.into();
    actix_service::fn_service(move |req: ConnectInfo<Uri>| {
        let path = path.clone();
        async move {
            let io = UnixStream::connect(&path).await.map_err(ConnectError::Io)?;
            Ok::<_, ConnectError>(Connection::new(req.request().clone(), io))
        }
    })
}
