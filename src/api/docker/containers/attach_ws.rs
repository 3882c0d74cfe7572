//! `GET /containers/{id}/attach/ws`: the engine's WebSocket attach, relayed frame by frame.
//!
//! actix-http upgrades WebSocket requests itself (unlike Docker's raw `Upgrade: tcp`
//! hijacks, see `hijack`), so this is an ordinary handler: it opens the WebSocket to the
//! owning engine first, so that an unknown container or a dead engine is a Docker-shaped
//! error and not a half-open socket, then answers the client's upgrade and copies frames
//! both ways until either side closes.

use crate::api::error::ApiError;
use crate::api::forward::proxy;
use crate::api::state::ApiState;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::Message;
use awc::ws::{Frame, Message as EngineMessage};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use shoal_actors::engine::{escape_param, local_engine, EngineAddr, EngineError};

#[derive(Debug, Deserialize)]
pub struct AttachPath {
    id: String,
}

pub async fn attach_ws(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<AttachPath>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let owner = proxy::resolve(&state, &path.id)?;
    let engine_path = proxy::engine_path(
        &req,
        &format!("/containers/{}/attach/ws", escape_param(&owner.id)),
    );
    relay(&state, &req, body, &owner.addr, &engine_path).await
}

/// Opens the WebSocket at `engine_path` on `addr` (an engine, or the primary manager for a
/// replica), then answers the client's upgrade and relays frames both ways.
pub async fn relay(
    state: &ApiState,
    req: &HttpRequest,
    body: web::Payload,
    addr: &EngineAddr,
    engine_path: &str,
) -> Result<HttpResponse, ApiError> {
    let engine = local_engine(addr, state.timeouts);
    let (client, base) = engine.client();
    let url = format!("{}{}", base.replacen("http://", "ws://", 1), engine_path);
    let limit = state.timeouts.call;
    let down = |reason: String| {
        ApiError::EngineDown(EngineError::Connect {
            addr: addr.to_string(),
            reason,
        })
    };
    let (_, engine_ws) = actix_rt::time::timeout(limit, client.ws(url).connect())
        .await
        .map_err(|_| down(format!("no WebSocket answer within {limit:?}")))?
        .map_err(|e| down(e.to_string()))?;
    let (response, mut session, mut from_client) =
        actix_ws::handle(req, body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (mut to_engine, mut from_engine) = engine_ws.split();
    actix_rt::spawn(async move {
        loop {
            tokio::select! {
                m = from_client.next() => {
                    let forward = match m {
                        Some(Ok(Message::Text(t))) => EngineMessage::Text(t),
                        Some(Ok(Message::Binary(b))) => EngineMessage::Binary(b),
                        Some(Ok(Message::Ping(p))) => EngineMessage::Ping(p),
                        Some(Ok(Message::Pong(p))) => EngineMessage::Pong(p),
                        Some(Ok(Message::Close(reason))) => {
                            let _ = to_engine.send(EngineMessage::Close(reason)).await;
                            break;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(_)) | None => {
                            let _ = to_engine.send(EngineMessage::Close(None)).await;
                            break;
                        }
                    };
                    if to_engine.send(forward).await.is_err() {
                        let _ = session.close(None).await;
                        break;
                    }
                }
                f = from_engine.next() => {
                    let sent = match f {
                        Some(Ok(Frame::Text(b))) => session.text(String::from_utf8_lossy(&b).into_owned()).await,
                        Some(Ok(Frame::Binary(b))) => session.binary(b).await,
                        Some(Ok(Frame::Ping(p))) => session.ping(&p).await,
                        Some(Ok(Frame::Pong(p))) => session.pong(&p).await,
                        Some(Ok(Frame::Close(reason))) => {
                            let _ = session.close(reason).await;
                            break;
                        }
                        Some(Ok(Frame::Continuation(_))) => Ok(()),
                        Some(Err(_)) | None => {
                            let _ = session.close(None).await;
                            break;
                        }
                    };
                    if sent.is_err() {
                        let _ = to_engine.send(EngineMessage::Close(None)).await;
                        break;
                    }
                }
            }
        }
    });
    Ok(response)
}
