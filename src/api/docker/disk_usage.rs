//! `GET /system/df`.
//!
//! `df` asks every healthy node and sums: `LayersSize` adds up, and the images, containers,
//! volumes and build cache of all nodes are listed together. An image present on three
//! nodes is listed three times, because it takes disk space three times; container names
//! show their node (`/node-1/web`) as `docker ps` does.

use crate::api::error::ApiError;
use crate::api::forward::fanout::{ask_all, call, healthy, merge_reports, no_node};
use crate::api::state::ApiState;
use actix_web::{web, HttpResponse};
use serde_json::Value;
use shoal_actors::node::ObjectOp;

/// Shows each container name as `/node/name`.
fn qualify_names(report: &mut Value, node: &str) {
    let Some(containers) = report.get_mut("Containers").and_then(Value::as_array_mut) else {
        return;
    };
    for c in containers {
        if let Some(names) = c.get_mut("Names").and_then(Value::as_array_mut) {
            for n in names {
                if let Value::String(s) = n {
                    *s = format!("/{node}/{}", s.trim_start_matches('/'));
                }
            }
        }
    }
}

pub async fn df(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let nodes: Vec<_> = healthy(&read).map(|(_, n)| n).collect();
    let answers = ask_all(&nodes, "system df", |n| call(n, ObjectOp::SystemDf))
        .await
        .or_worst(no_node)?;
    let reports = answers.into_iter().map(|(node, _, body)| {
        let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
        qualify_names(&mut v, &node.name);
        v
    });
    Ok(HttpResponse::Ok().json(merge_reports(reports)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_show_their_node() {
        let mut v = serde_json::json!({"Containers":[{"Names":["/web"]}]});
        qualify_names(&mut v, "node-1");
        assert_eq!(v["Containers"][0]["Names"][0], "/node-1/web");
    }
}
