//! `POST /images/prune`, `/networks/prune`, `/volumes/prune`: every healthy node prunes,
//! the reports are summed (deleted lists joined, reclaimed space added up). A node that
//! fails is logged and left out of the sum; only when every node fails is it an error.

use crate::api::forward::fanout::{call, healthy, merge_reports, no_node, worst};
use crate::api::{ApiError, ApiState};
use actix_web::{web, HttpRequest, HttpResponse};
use shoal_actors::node::{ObjectOp, PruneKind};

async fn prune(
    state: web::Data<ApiState>,
    req: HttpRequest,
    kind: PruneKind,
) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let query = req.query_string().to_string();
    let nodes: Vec<_> = healthy(&read).map(|(_, n)| n).collect();
    let answers = futures_util::future::join_all(nodes.iter().map(|n| {
        call(
            n,
            ObjectOp::Prune {
                kind,
                query: query.clone(),
            },
        )
    }))
    .await;
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for (node, a) in nodes.iter().zip(answers) {
        match a {
            Ok((s, body)) if (200..300).contains(&s) => {
                reports.push(serde_json::from_slice(&body).unwrap_or_default())
            }
            Ok((s, body)) => errors.push(crate::api::forward::fanout::engine_error(s, &body)),
            Err(e) => {
                tracing::warn!(node = %node.name, error = %e, "prune failed");
                errors.push(e)
            }
        }
    }
    if reports.is_empty() {
        return Err(worst(errors, no_node));
    }
    Ok(HttpResponse::Ok().json(merge_reports(reports)))
}

pub async fn images(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    prune(state, req, PruneKind::Images).await
}

pub async fn networks(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    prune(state, req, PruneKind::Networks).await
}

pub async fn volumes(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    prune(state, req, PruneKind::Volumes).await
}
