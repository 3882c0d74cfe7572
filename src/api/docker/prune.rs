//! The one prune path: `POST /containers/prune`, `/images/prune`, `/networks/prune`,
//! `/volumes/prune`. Every healthy node prunes at once (the client's query, filters
//! included, passed on) and the reports are summed as one engine would have answered:
//! deleted lists joined, reclaimed space added up. A node that fails is logged and left
//! out of the sum; only when every node fails is the answer an error. Each node lists its
//! objects again afterwards.

use crate::api::error::ApiError;
use crate::api::forward::fanout::{ask_all, healthy, merge_reports};
use crate::api::forward::proxy;
use crate::api::state::ApiState;
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::Duration;

/// A prune removes many objects on every node: it gets this beyond the call timeout.
const PRUNE_WAIT: Duration = Duration::from_secs(600);

/// What a prune route removes: the first segment of its path.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Containers,
    Images,
    Networks,
    Volumes,
}

impl Kind {
    fn segment(self) -> &'static str {
        match self {
            Kind::Containers => "containers",
            Kind::Images => "images",
            Kind::Networks => "networks",
            Kind::Volumes => "volumes",
        }
    }
}

async fn prune(state: &ApiState, req: &HttpRequest, kind: Kind) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let nodes: Vec<_> = healthy(&read).map(|(_, n)| n).collect();
    // A tenant prunes only its own objects (the engines filter on its label).
    let query = match crate::authz::Grant::tenant_of(req) {
        Some(tenant) => crate::authz::guard::scoped_query(req.query_string(), &tenant)?,
        None => req.query_string().to_string(),
    };
    let tail = format!("/{}/prune", kind.segment());
    let target = proxy::rewrite(req.path(), &query, &tail);
    let (timeouts, limit) = (state.timeouts, state.timeouts.call + PRUNE_WAIT);
    let gathered = ask_all(&nodes, "prune", |n| {
        let target = &target;
        async move {
            let body = proxy::post_whole(&n.handle.addr, target, timeouts, limit).await?;
            Ok((200, body))
        }
    })
    .await;
    for n in &nodes {
        proxy::refresh(&n.handle.actor);
    }
    let answers = gathered.or_worst(|| ApiError::NoNode("nothing to prune on".to_string()))?;
    let reports = answers
        .iter()
        .map(|(_, _, body)| serde_json::from_slice(body).unwrap_or_default());
    Ok(HttpResponse::Ok().json(merge_reports(reports)))
}

pub async fn containers(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    prune(&state, &req, Kind::Containers).await
}

pub async fn images(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    prune(&state, &req, Kind::Images).await
}

pub async fn networks(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    prune(&state, &req, Kind::Networks).await
}

pub async fn volumes(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    prune(&state, &req, Kind::Volumes).await
}

#[cfg(test)]
mod tests {
    use crate::api::forward::fanout::merge_reports;
    use serde_json::json;

    #[test]
    fn reports_add_up_as_one_engines() {
        let total = merge_reports([
            json!({"ContainersDeleted": ["a"], "SpaceReclaimed": 5}),
            json!({"ContainersDeleted": null, "SpaceReclaimed": 0}),
            json!({"ContainersDeleted": ["b", "c"], "SpaceReclaimed": 7}),
        ]);
        assert_eq!(
            total,
            json!({"ContainersDeleted": ["a", "b", "c"], "SpaceReclaimed": 12})
        );
        assert_eq!(
            merge_reports([json!({"ContainersDeleted": null, "SpaceReclaimed": 0})]),
            json!({"ContainersDeleted": null, "SpaceReclaimed": 0})
        );
    }
}
