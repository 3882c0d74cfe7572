//! `POST /build`: the whole build goes to one node chosen by the SchedulerActor (as a
//! container with no requirements would be placed), so the image lands where the spread or
//! binpack strategy says. The tar context streams from the client to that engine as it
//! arrives and the build output streams back; neither is buffered whole. The legacy
//! builder only: BuildKit (`version=2`) needs the `/session` hijack, which is not routed.

use crate::api::docker::networks::place;
use crate::api::error::ApiError;
use crate::api::forward::progress::{self, header, registry_auth, stream_engine};
use crate::api::state::ApiState;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use shoal_actors::engine::{StreamBody, StreamRequest};
use shoal_actors::node::RefreshNode;

pub async fn build(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<Vec<(String, String)>>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if q.iter().any(|(k, v)| k == "version" && v == "2") {
        return Err(ApiError::NotImplemented {
            method: "POST".into(),
            path: "/build?version=2 (BuildKit)".into(),
        });
    }
    let read = state.read();
    let i = place(&state, &read).await?;
    let node = &read.nodes[i];
    tracing::info!(node = %node.name, "build placed");
    let path = if req.query_string().is_empty() {
        "/build".to_string()
    } else {
        format!("/build?{}", req.query_string())
    };
    let context = payload.map(|c| c.map_err(|e| std::io::Error::other(e.to_string())));
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
    let tag = q.iter().find(|(k, _)| k == "t").map(|(_, v)| v.clone());
    let settle = async move {
        // The build ended: the node lists the new image before the client's next call.
        match tag {
            Some(tag) => {
                crate::api::forward::fanout::await_published(&handle, |s| {
                    crate::api::docker::images::has_image(s, &tag)
                })
                .await
            }
            None => {
                let _ = handle.actor.try_send(RefreshNode);
            }
        }
        None
    };
    let out = progress::body_stream(resp.body)
        .chain(futures_util::stream::once(settle).filter_map(futures_util::future::ready));
    Ok(HttpResponse::Ok()
        .content_type(
            resp.content_type
                .unwrap_or_else(|| "application/json".into()),
        )
        .streaming(out))
}
