//! The replica layer (`--replication`): on a replica, every request but `/_ping`,
//! `/version` and `/info` goes to the primary manager, through the same proxy that forwards
//! to engines (the primary is one more Docker endpoint); a WebSocket attach through the
//! WebSocket relay. It sits after the authorization guard, so a replica applies the policy
//! to its own clients before anything is forwarded, and before the handlers, so a replica
//! never places a container. With no primary known: 503. On the primary, and without
//! `--replication`, it passes every request on.
//!
//! Hijacked attach and exec never reach actix-web; the hijack relay asks
//! `crate::replication` where to send them the same way.

use crate::api::docker::containers::attach_ws;
use crate::api::forward::proxy::{self, Forward};
use crate::api::state::ApiState;
use crate::replication::{self, Upstream};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;
use shoal_actors::engine::split_api_version;

pub async fn forward(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let upstream = req
        .app_data::<web::Data<ApiState>>()
        .and_then(|s| s.replication.as_ref())
        .map(|r| r.upstream());
    let (_, path) = split_api_version(req.path());
    let primary = match upstream {
        None | Some(Upstream::Here) => None,
        Some(_) if replication::served_locally(path) => None,
        Some(Upstream::NoPrimary) => return Err(replication::no_primary().into()),
        Some(Upstream::Primary(addr)) => Some(addr),
    };
    let Some(primary) = primary else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let websocket = path.ends_with("/attach/ws")
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    let body = req.extract::<web::Payload>().await?;
    let http = req.request().clone();
    let answer = if websocket {
        let Some(state) = req.app_data::<web::Data<ApiState>>().cloned() else {
            return Err(replication::no_primary().into());
        };
        attach_ws::relay(&state, &http, body, &primary, &target).await?
    } else {
        // No deadline on the head: the primary may rightly take long (a create that pulls,
        // `stop`, `wait`); connecting is bounded, and a primary that dies closes the socket.
        proxy::forward_with(
            Forward {
                node: &primary,
                req: &http,
                path: &target,
                body,
                refresh: None,
            },
            None,
        )
        .await?
    };
    Ok(req.into_response(answer).map_into_right_body())
}
