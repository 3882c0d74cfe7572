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

pub async fn df(
    state: web::Data<ApiState>,
    http: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
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
    let mut merged = merge_reports(reports);
    if let Some(tenant) = crate::authz::Grant::tenant_of(&http) {
        keep_tenant(&mut merged, &tenant);
    }
    Ok(HttpResponse::Ok().json(merged))
}

/// A tenant's report: its own containers and volumes only (images are shared).
fn keep_tenant(report: &mut Value, tenant: &str) {
    for key in ["Containers", "Volumes"] {
        if let Some(list) = report.get_mut(key).and_then(Value::as_array_mut) {
            list.retain(|o| {
                crate::authz::Grant::sees(Some(tenant), |k| o.get("Labels")?.get(k)?.as_str())
            });
        }
    }
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

    #[test]
    fn a_tenant_sees_its_own_containers_and_volumes() {
        let mut v = serde_json::json!({
            "Containers": [
                {"Id": "1", "Labels": {"com.shoal.tenant": "a"}},
                {"Id": "2", "Labels": {"com.shoal.tenant": "b"}},
                {"Id": "3", "Labels": {}},
            ],
            "Volumes": [{"Name": "v", "Labels": null}],
            "Images": [{"Id": "i"}],
        });
        keep_tenant(&mut v, "a");
        assert_eq!(
            v["Containers"],
            serde_json::json!([{"Id": "1", "Labels": {"com.shoal.tenant": "a"}}])
        );
        assert_eq!(v["Volumes"], serde_json::json!([]));
        assert_eq!(v["Images"].as_array().map(Vec::len), Some(1));
    }
}
