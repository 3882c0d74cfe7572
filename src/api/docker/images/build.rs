//! `POST /build`: the whole build goes to one node chosen by the SchedulerActor, as a
//! container with no requirements would be placed, except that a node that has the
//! build's `cachefrom` images, then its base images (the Dockerfile's `FROM`s, read from
//! the head of the context by `context`), is preferred: soft `image==~` affinities, used
//! when some node has them. The classic builder uses only a cache it finds on its own
//! engine, and a base image found there need not be pulled (or cannot be, when it was
//! built or loaded there). The tar context streams from the client to that engine and the
//! build output streams back; neither is buffered whole (only the context's first MiB,
//! while the node is chosen).
//!
//! Read-your-writes, as for create: the answer ends only after the node lists the built
//! image (every `t` tag, and the ID the engine reported in its `aux` line) and the
//! scheduler has its offer, so a `docker run` of the image right after lands where it is.
//!
//! The classic builder only: BuildKit (`version=2`) is refused with what works instead
//! (`routes::buildkit`).

use super::context::{self, Scan};
use crate::api::docker::images::has_image;
use crate::api::docker::networks::place_for;
use crate::api::error::ApiError;
use crate::api::forward::fanout::await_published;
use crate::api::forward::progress::{self, header, registry_auth, stream_engine};
use crate::api::state::ApiState;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::Value;
use shoal_actors::engine::{StreamBody, StreamRequest};
use shoal_actors::scheduler::{Expr, ExprKind, PlacementRequest};
use std::cell::RefCell;
use std::rc::Rc;

/// Longest build output line looked at for the built image's ID; longer ones pass unread.
const MAX_SCAN_LINE: usize = 64 * 1024;
/// How much of the context is read before placing, to find the Dockerfile: it is held in
/// memory until the node is chosen, then sent first.
const PEEK_LIMIT: usize = 1 << 20;

pub async fn build(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<Vec<(String, String)>>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if q.iter().any(|(k, v)| k == "version" && v == "2") {
        return Err(crate::api::routes::buildkit::refused());
    }
    // The head of the context, for the Dockerfile's base images; sent on first.
    let dockerfile_name = q
        .iter()
        .find(|(k, _)| k == "dockerfile")
        .map_or("Dockerfile", |(_, v)| v.as_str());
    let mut head = BytesMut::new();
    let mut bases = Vec::new();
    while head.len() < PEEK_LIMIT {
        match payload.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(ApiError::BadRequest(format!("build context: {e}"))),
            None => break,
        }
        match context::find_dockerfile(&head, dockerfile_name) {
            Scan::NeedMore => continue,
            Scan::Found(text) => bases = context::base_images(&text),
            Scan::Absent => {}
        }
        break;
    }
    let read = state.read();
    let i = place_for(&state, &read, placement(&q, &bases)).await?;
    let node = &read.nodes[i];
    tracing::info!(node = %node.name, "build placed");
    let path = if req.query_string().is_empty() {
        "/build".to_string()
    } else {
        format!("/build?{}", req.query_string())
    };
    let rest = payload.map(|c| c.map_err(|e| std::io::Error::other(e.to_string())));
    let context =
        futures_util::stream::once(futures_util::future::ready(Ok(head.freeze()))).chain(rest);
    let r = StreamRequest::new(Method::POST, path.clone())
        .header("Content-Type", header(&req, "Content-Type"))
        .header("X-Registry-Config", header(&req, "X-Registry-Config"))
        .header("X-Registry-Auth", registry_auth(&req))
        .body(StreamBody::Stream(Box::pin(context)));
    let resp = stream_engine(&state, node).open(r).await?;
    if !(200..300).contains(&resp.status) {
        return Err(resp.into_error(&node.handle.addr, &path).await.into());
    }
    let handle = node.handle.clone();
    let tags: Vec<String> = q
        .iter()
        .filter(|(k, v)| k == "t" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    let scan = Rc::new(RefCell::new(BuiltId::default()));
    let seen = scan.clone();
    let settle = async move {
        // The build ended: the node lists the new image before the client's next call.
        let id = seen.borrow().id.clone();
        await_published(&handle, |s| {
            tags.iter().all(|t| has_image(s, t)) && id.as_deref().is_none_or(|id| has_image(s, id))
        })
        .await;
        None
    };
    let out = progress::body_stream(resp.body)
        .map(move |chunk| {
            if let Ok(c) = &chunk {
                scan.borrow_mut().feed(c);
            }
            chunk
        })
        .chain(futures_util::stream::once(settle).filter_map(futures_util::future::ready));
    Ok(HttpResponse::Ok()
        .content_type(
            resp.content_type
                .unwrap_or_else(|| "application/json".into()),
        )
        .streaming(out))
}

/// Where a build would rather run: on a node that has its `cachefrom` images, then its
/// base images. Soft affinities, applied in that order, each only when some remaining
/// node fits it.
fn placement(q: &[(String, String)], bases: &[String]) -> PlacementRequest {
    let mut request = PlacementRequest::default();
    let cache = q
        .iter()
        .filter(|(k, _)| k == "cachefrom")
        // A JSON array of image names (the CLI and SDKs send that).
        .flat_map(|(_, v)| serde_json::from_str::<Vec<String>>(v).unwrap_or_default());
    for name in cache.chain(bases.iter().cloned()) {
        match Expr::parse(ExprKind::Affinity, &format!("image==~{name}")) {
            Ok(e) => request.affinities.push(e),
            Err(e) => tracing::debug!(error = %e, "image name not usable for placement"),
        }
    }
    request
}

/// Reads the build output as it passes for the built image's ID: the engine's
/// `{"aux":{"ID":"sha256:..."}}` line.
#[derive(Default)]
struct BuiltId {
    partial: BytesMut,
    id: Option<String>,
}

impl BuiltId {
    fn feed(&mut self, chunk: &Bytes) {
        self.partial.extend_from_slice(chunk);
        while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
            let line = self.partial.split_to(pos + 1);
            self.line(&line);
        }
        if self.partial.len() > MAX_SCAN_LINE {
            self.partial.clear();
        }
    }

    fn line(&mut self, line: &[u8]) {
        // Most lines are `stream` text: look closer only at an `aux` one.
        if !line.windows(6).any(|w| w == b"\"aux\":") {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(line) {
            if let Some(id) = v["aux"]["ID"].as_str() {
                self.id = Some(id.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_id_is_read_across_chunks() {
        let mut b = BuiltId::default();
        b.feed(&Bytes::from_static(
            b"{\"stream\":\"Step 1/2\"}\n{\"aux\":{\"ID\":\"sha2",
        ));
        assert_eq!(b.id, None);
        b.feed(&Bytes::from_static(
            b"56:abc\"}}\n{\"stream\":\"Successfully built abc\"}\n",
        ));
        assert_eq!(b.id.as_deref(), Some("sha256:abc"));
    }

    #[test]
    fn cachefrom_images_are_soft_affinities() {
        let q = vec![(
            "cachefrom".to_string(),
            r#"["app:1","localhost:5000/app"]"#.to_string(),
        )];
        let r = placement(&q, &["busybox".to_string()]);
        assert_eq!(r.affinities.len(), 3);
        assert!(placement(&[("cachefrom".into(), "not json".into())], &[])
            .affinities
            .is_empty());
    }
}
