//! Image routes that read: `GET /images/json`, `GET /images/{name}/json`, `.../history`
//! and `GET /images/search`.
//!
//! The list merges the nodes' images by ID: an image present on several nodes is listed
//! once, with the union of its tags and the sum of its containers, so `docker images` reads
//! like one engine's. Inspect asks a node that has the image (its NodeActor caches it);
//! history asks one node that has it; search, one healthy node (they all ask the same
//! registry).

use super::{image_nodes, no_such_image, ImagePath};
use crate::api::docker::filters::{truthy, Filters, ListQuery};
use crate::api::docker::reference;
use crate::api::error::ApiError;
use crate::api::forward::fanout::{self, call, healthy, no_node, pass, worst};
use crate::api::state::ApiState;
use actix_web::{web, HttpRequest, HttpResponse};
use bollard_stubs::models::ImageSummary;
use shoal_actors::node::ObjectOp;
use shoal_actors::node::{Health, InspectImage};
use std::collections::HashMap;

const IMAGE_FILTERS: &[&str] = &["dangling", "label", "reference", "before", "since"];

fn reference_matches(image: &ImageSummary, pattern: &str) -> bool {
    image.repo_tags.iter().any(|t| {
        let (repo, _) = t.rsplit_once(':').unwrap_or((t, ""));
        glob_match(pattern, t) || glob_match(pattern, repo)
    })
}

/// `*` matches any run of characters except `/`, as Docker's reference filter does.
fn glob_match(pattern: &str, text: &str) -> bool {
    let escaped = regex::escape(pattern).replace("\\*", "[^/]*");
    regex::Regex::new(&format!("^{escaped}$")).is_ok_and(|re| re.is_match(text))
}

pub async fn list(
    state: web::Data<ApiState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let filters = Filters::parse(q.filters.as_deref(), IMAGE_FILTERS)?;
    let _all = truthy(q.all.as_deref());
    let read = state.read();
    let mut merged: HashMap<String, ImageSummary> = HashMap::new();
    for node in read
        .nodes
        .iter()
        .filter(|n| n.snapshot.health == Health::Healthy)
    {
        for image in node.snapshot.images.iter() {
            match merged.get_mut(&image.id) {
                Some(have) => {
                    for t in &image.repo_tags {
                        if !have.repo_tags.contains(t) {
                            have.repo_tags.push(t.clone());
                        }
                    }
                    for d in &image.repo_digests {
                        if !have.repo_digests.contains(d) {
                            have.repo_digests.push(d.clone());
                        }
                    }
                    if have.containers >= 0 && image.containers >= 0 {
                        have.containers += image.containers;
                    }
                }
                None => {
                    merged.insert(image.id.clone(), image.clone());
                }
            }
        }
    }
    let dangling = filters
        .get("dangling")
        .map(|v| v.iter().any(|x| x == "true" || x == "1"));
    let mut out: Vec<ImageSummary> = merged
        .into_values()
        .filter(|i| {
            let is_dangling =
                i.repo_tags.is_empty() || i.repo_tags.iter().all(|t| t == "<none>:<none>");
            dangling.is_none_or(|d| d == is_dangling)
                && filters.matches_labels("label", &i.labels)
                && filters
                    .get("reference")
                    .is_none_or(|refs| refs.iter().any(|r| reference_matches(i, r)))
        })
        .collect();
    out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    Ok(HttpResponse::Ok().json(out))
}

pub async fn inspect(
    state: web::Data<ApiState>,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().name;
    // The engine's inspect names the image before the reason.
    if let Err(e) = reference::check(&name) {
        return Err(ApiError::BadRequest(format!("no such image: {name}: {e}")));
    }
    let read = state.read();
    let wanted = name.trim_start_matches("sha256:");
    let with_tag = if name.rsplit('/').next().is_some_and(|l| l.contains(':')) {
        name.clone()
    } else {
        format!("{name}:latest")
    };
    // Ask first a node whose list shows the image, then any healthy node (the engine
    // resolves short IDs and digests itself).
    let mut order: Vec<usize> = Vec::new();
    for (i, n) in read.nodes.iter().enumerate() {
        if n.snapshot.health != Health::Healthy {
            continue;
        }
        let has = n.snapshot.images.iter().any(|img| {
            img.repo_tags.iter().any(|t| *t == with_tag || *t == name)
                || img.id.trim_start_matches("sha256:").starts_with(wanted)
        });
        if has {
            order.insert(0, i);
        } else {
            order.push(i);
        }
    }
    let mut last = ApiError::NotFound(format!("No such image: {name}"));
    for i in order.into_iter().take(3) {
        shoal_actors::metrics::queued("node", &read.nodes[i].handle.addr);
        match read.nodes[i]
            .handle
            .actor
            .send(InspectImage { name: name.clone() })
            .await?
        {
            Ok(body) => {
                return Ok(HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body))
            }
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// `GET /images/{name}/history`: from one node that has it.
pub async fn history(
    state: web::Data<ApiState>,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let read = state.read();
    let mut errors = Vec::new();
    for n in image_nodes(&read, &name).into_iter().take(3) {
        match call(n, ObjectOp::ImageHistory { name: name.clone() }).await {
            Ok((200, body)) => return pass(200, body),
            Ok((s, body)) => errors.push(fanout::engine_error(s, &body)),
            Err(e) => errors.push(e),
        }
    }
    Err(worst(errors, no_such_image(&name)))
}

/// `GET /images/search`: one healthy node asks the registry.
pub async fn search(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let (_, node) = healthy(&read).next().ok_or_else(no_node)?;
    let (s, body) = call(
        node,
        ObjectOp::SearchImages {
            query: req.query_string().to_string(),
        },
    )
    .await?;
    pass(s, body)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn reference_globs() {
        assert!(glob_match("busy*", "busybox"));
        assert!(!glob_match("busy*", "library/busybox"));
        assert!(glob_match("busybox", "busybox"));
    }
}
