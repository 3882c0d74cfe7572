//! `POST /containers/create`: the HTTP edge of the create flow. The body and `?name=` are
//! parsed once into a typed `CreateRequest`; the flow (`shoal_actors::create`) owns the
//! rest: place, make what the container needs, create, pull, retry, confirm or cancel, and
//! settle a create whose engine went silent. This file only turns HTTP into that request
//! and the flow's answer or error back into Docker's.

use std::rc::Rc;

use crate::api::{ApiError, ApiState};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use shoal_actors::create::{ClusterNodes, CreateError, CreateFlow, CreateRequest, FlowConfig};

#[derive(Debug, Deserialize)]
pub struct CreateQuery {
    #[serde(default)]
    name: Option<String>,
}

/// The flow's failure in the front's terms: statuses and messages unchanged.
fn api_error(e: CreateError) -> ApiError {
    match e {
        CreateError::Invalid(message) => ApiError::BadRequest(message),
        CreateError::Schedule(e) => ApiError::Schedule(e),
        CreateError::Engine(e) => ApiError::from(e),
        e @ CreateError::NodeGone(_) => ApiError::NoNode(e.to_string()),
        CreateError::Internal(message) => ApiError::Internal(message),
    }
}

pub async fn create(
    state: web::Data<ApiState>,
    q: web::Query<CreateQuery>,
    http: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let registry_auth = http
        .headers()
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut request = CreateRequest::parse(&body, q.name.as_deref())
        .map_err(api_error)?
        .registry_auth(registry_auth);
    // What the authorization guard let on with: the tenant's label over the client's, and
    // the client's forced constraints.
    if let Some(grant) = crate::authz::Grant::of(&http) {
        if let Some(tenant) = &grant.tenant {
            request.force_label(crate::authz::TENANT_LABEL, tenant.clone());
        }
        for c in &grant.constraints {
            request.force_constraint(c).map_err(api_error)?;
        }
    }
    let flow = CreateFlow::new(
        state.scheduler.clone(),
        Rc::new(ClusterNodes(state.view.clone())),
        FlowConfig {
            retries: state.create_retry,
            ..FlowConfig::default()
        },
    );
    let created = flow.run(request).await.map_err(api_error)?;
    Ok(HttpResponse::Created()
        .content_type("application/json")
        .body(created.answer))
}
