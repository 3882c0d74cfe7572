//! The guard: the one place a request is checked against the policy, before any handler
//! runs and so before any engine is asked. Wrapped around the route table (`guard`), and
//! asked by the hijack gate for attach and exec start (`check_hijack`), which never reach
//! actix-web's routes.
//!
//! For a client with a tenant it also hides other tenants' objects: a request naming a
//! container, network or volume the client may not see is answered 404 with the words of a
//! missing one. What passes carries a `Grant` in the request's extensions: the handlers
//! that list, count or create read the tenant and constraints from it.
//!
//! An exec belongs to its container's tenant. Engines say which container an exec runs in
//! only when asked, so the guard notes it as execs are created through Shoal (the exec
//! create's answer, recorded in the `ExecRegistry`); a tenant's inspect, start or resize
//! of an exec in a container it cannot see, or of one Shoal did not see created, is a 404
//! as for a missing exec.

use super::decide::{self, Access, Named, RequestKind, Rule};
use super::policy::TENANT_LABEL;
use crate::api::{link_of, ApiError, ApiState, ExecContainer, RecordExecContainer};
use crate::tls::ClientIdentity;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use bollard_stubs::models::ContainerCreateBody;
use bytes::BytesMut;
use futures_util::StreamExt;
use shoal_actors::cluster::{ClusterRead, ResolveError};
use shoal_actors::engine::split_api_version;

/// How every refusal's message starts.
pub const DENIED_PREFIX: &str = "authorization denied by shoal policy: ";

/// What an allowed request of a listed client carries to the handlers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grant {
    /// Its objects are labelled `com.shoal.tenant=<tenant>`; it sees only those.
    pub tenant: Option<String>,
    /// Placement expressions forced on its container creates.
    pub constraints: Vec<String>,
}

impl Grant {
    /// The grant of a request (none: no policy, or an unrestricted client).
    pub fn of(req: &HttpRequest) -> Option<Grant> {
        req.extensions().get::<Grant>().cloned()
    }

    /// The tenant a request is scoped to.
    pub fn tenant_of(req: &HttpRequest) -> Option<String> {
        req.extensions()
            .get::<Grant>()
            .and_then(|g| g.tenant.clone())
    }

    /// Whether labels (read through `label`) are this request's to see.
    pub fn sees<'a>(tenant: Option<&str>, label: impl FnOnce(&str) -> Option<&'a str>) -> bool {
        decide::visible(tenant, label)
    }
}

/// A network or volume create body with the request's tenant label forced over the
/// client's (unchanged without a tenant).
pub fn label_body(
    req: &HttpRequest,
    mut obj: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    if let Some(tenant) = Grant::tenant_of(req) {
        let labels = obj
            .entry("Labels")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if !labels.is_object() {
            *labels = serde_json::Value::Object(Default::default());
        }
        if let Some(map) = labels.as_object_mut() {
            map.insert(TENANT_LABEL.into(), tenant.into());
        }
    }
    obj
}

/// A query with `label=com.shoal.tenant=<tenant>` added to its `filters` (ANDed with the
/// client's own label filters by the engine): a tenant's prune removes only its objects.
pub fn scoped_query(query: &str, tenant: &str) -> Result<String, ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::BadRequest(format!("invalid filter: {e}"));
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| bad(&e))?;
    let label = format!("{TENANT_LABEL}={tenant}");
    let existing = pairs.iter().position(|(k, _)| k == "filters");
    let mut filters: serde_json::Map<String, serde_json::Value> = match existing {
        Some(i) if !pairs[i].1.trim().is_empty() => {
            serde_json::from_str(&pairs[i].1).map_err(|e| bad(&e))?
        }
        _ => serde_json::Map::new(),
    };
    match filters.get_mut("label") {
        // `{"label": {"k=v": true}}`, as the CLI sends it.
        Some(serde_json::Value::Object(m)) => {
            m.insert(label, true.into());
        }
        Some(serde_json::Value::Array(a)) => a.push(label.into()),
        _ => {
            filters.insert("label".into(), serde_json::json!({ label: true }));
        }
    }
    let encoded = serde_json::Value::Object(filters).to_string();
    match existing {
        Some(i) => pairs[i].1 = encoded,
        None => pairs.push(("filters".into(), encoded)),
    }
    serde_urlencoded::to_string(&pairs).map_err(|e| bad(&e))
}

/// The client's certificate CN: from the connection (TLS), or set on the request by a test.
fn client_name(req: &HttpRequest) -> Option<String> {
    req.conn_data::<ClientIdentity>()
        .map(|c| c.common_name.clone())
        .or_else(|| {
            req.extensions()
                .get::<ClientIdentity>()
                .map(|c| c.common_name.clone())
        })
}

/// A refusal: counted, logged with the client, answered 403.
pub fn deny(client: Option<&str>, rule: Rule, what: &str) -> ApiError {
    let client = client.unwrap_or("");
    shoal_actors::metrics::authz_denied(client, rule.name());
    tracing::warn!(
        client,
        rule = rule.name(),
        request = what,
        "authorization denied"
    );
    ApiError::Forbidden(format!("{DENIED_PREFIX}{rule}"))
}

/// The object a path names, for the tenant check.
#[derive(Debug, PartialEq)]
enum Target<'a> {
    Container(&'a str),
    Network(&'a str),
    Volume(&'a str),
}

/// Which object a request path (without `/v1.xx`) names, if any; `query` tells a link
/// removal (`DELETE /containers/web/db?link=1` names the parent, `web`).
fn target<'a>(method: &str, path: &'a str, query: &str) -> Option<Target<'a>> {
    let delete = method.eq_ignore_ascii_case("DELETE");
    if let Some(rest) = path.strip_prefix("/containers/") {
        if matches!(rest, "json" | "create" | "prune") {
            return None;
        }
        let reference = if delete {
            link_of(query, rest).map_or(rest, |(parent, _)| parent)
        } else if let Some(r) = rest.strip_suffix("/attach/ws") {
            r
        } else {
            rest.rsplit_once('/').map_or(rest, |(r, _)| r)
        };
        return Some(Target::Container(reference));
    }
    if let Some(rest) = path.strip_prefix("/networks/") {
        if matches!(rest, "create" | "prune") {
            return None;
        }
        let reference = rest
            .strip_suffix("/connect")
            .or_else(|| rest.strip_suffix("/disconnect"))
            .unwrap_or(rest);
        return Some(Target::Network(reference));
    }
    if let Some(rest) = path.strip_prefix("/volumes/") {
        if matches!(rest, "create" | "prune") {
            return None;
        }
        return Some(Target::Volume(rest));
    }
    None
}

/// Whether the container `reference` names is `tenant`'s to see; `None`: no such
/// container (or an ambiguous name): the handler answers as it would anyway.
pub fn container_visible(state: &ApiState, tenant: Option<&str>, reference: &str) -> Option<bool> {
    let found = state.cluster().find_container(reference).ok()?;
    let entry = found.node.snapshot.containers.by_id(&found.id)?;
    Some(decide::visible(tenant, |k| {
        entry.info.labels.get(k).map(String::as_str)
    }))
}

fn label_of<'a>(json: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    json.get("Labels")?.get(key)?.as_str()
}

/// Whether every volume named `name` is `tenant`'s (`None`: none exists).
fn volume_visible(read: &ClusterRead, tenant: Option<&str>, name: &str) -> Option<bool> {
    let bare = name.rsplit('/').next().unwrap_or(name);
    let mut found = false;
    for n in &read.nodes {
        for v in n.snapshot.volumes.iter().filter(|v| v.name == bare) {
            found = true;
            let json = v.json();
            if !decide::visible(tenant, |k| label_of(&json, k)) {
                return Some(false);
            }
        }
    }
    found.then_some(true)
}

/// Whether the network `reference` names is `tenant`'s; the built-in networks are
/// everyone's.
fn network_visible(read: &ClusterRead, tenant: Option<&str>, reference: &str) -> Option<bool> {
    if matches!(reference, "bridge" | "host" | "none") {
        return Some(true);
    }
    let (_, entry) = crate::api::network_resolve(read, reference).ok()?;
    if matches!(entry.name.as_str(), "bridge" | "host" | "none") {
        return Some(true);
    }
    let json = entry.json();
    Some(decide::visible(tenant, |k| label_of(&json, k)))
}

/// 404 for an object of another tenant, in the words of a missing one.
fn hide(state: &ApiState, tenant: &str, target: &Target<'_>) -> Result<(), ApiError> {
    let tenant = Some(tenant);
    match *target {
        Target::Container(r) => match container_visible(state, tenant, r) {
            Some(false) => Err(ResolveError::NotFound(r.to_string()).into()),
            _ => Ok(()),
        },
        Target::Network(r) => match network_visible(&state.read(), tenant, r) {
            Some(false) => Err(ApiError::NotFound(format!("network {r} not found"))),
            _ => Ok(()),
        },
        Target::Volume(r) => match volume_visible(&state.read(), tenant, r) {
            Some(false) => Err(ApiError::NotFound(format!("get {r}: no such volume"))),
            _ => Ok(()),
        },
    }
}

/// 404 for an exec the tenant may not see (`decide::exec_visible`), in the words of a
/// missing one.
async fn hide_exec(state: &ApiState, tenant: &str, id: &str) -> Result<(), ApiError> {
    let container = state
        .execs
        .send(ExecContainer { id: id.to_string() })
        .await?;
    let visible = container.and_then(|c| container_visible(state, Some(tenant), &c));
    if decide::exec_visible(Some(tenant), visible) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("No such exec instance: {id}")))
    }
}

/// Largest exec create answer read for its ID (the engine's is `{"Id":"<64 hex>"}`).
const EXEC_CREATED_LIMIT: usize = 64 << 10;

/// After an exec create through Shoal succeeded: records its container (the full ID of the
/// container `reference` names) for [`hide_exec`]; answers the response unchanged.
async fn record_exec<B: MessageBody>(
    state: &ApiState,
    reference: &str,
    res: ServiceResponse<B>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let (req, res) = res.into_parts();
    let (res, body) = res.into_parts();
    let bad_answer = |message: String| ApiError::EngineAnswer {
        status: 502,
        message,
    };
    let bytes = actix_web::body::to_bytes_limited(body, EXEC_CREATED_LIMIT)
        .await
        .map_err(|_| bad_answer("the engine's exec create answer is too large".into()))?
        .map_err(|e| bad_answer(e.into().to_string()))?;
    let id = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| Some(v.get("Id")?.as_str()?.to_string()));
    let container = state.cluster().find_container(reference).ok().map(|f| f.id);
    if let (Some(id), Some(container)) = (id, container) {
        state
            .execs
            .send(RecordExecContainer { id, container })
            .await
            .map_err(ApiError::from)?;
    }
    Ok(ServiceResponse::new(req, res.set_body(bytes)).map_into_boxed_body())
}

/// Reads a request body whole (up to the front's JSON limit) and puts it back for the
/// handler.
async fn body_of(req: &mut ServiceRequest) -> Result<bytes::Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if body.len() + chunk.len() > crate::api::JSON_BODY_LIMIT {
            return Err(ApiError::BadRequest("request body too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    req.set_payload(Payload::from(body.clone()));
    Ok(body)
}

/// The checks of one request; `Ok(grant)` lets it on.
async fn check(
    state: &ApiState,
    req: &mut ServiceRequest,
    policy: &super::Policy,
) -> Result<Option<Grant>, ApiError> {
    let client = client_name(req.request());
    let method = req.method().as_str().to_string();
    let (_, path) = split_api_version(crate::api::routed_path(req.request()));
    let path = path.to_string();
    let kind = decide::classify(&method, &path);
    let what = format!("{method} {path}");
    let access = decide::decide(policy, client.as_deref(), kind)
        .map_err(|rule| deny(client.as_deref(), rule, &what))?;
    let Access::Client(rules) = access else {
        return Ok(None);
    };
    let tenant = rules.tenant.as_deref();
    if let (Some(t), Some(target)) = (tenant, target(&method, &path, req.query_string())) {
        hide(state, t, &target)?;
    }
    if let (Some(t), Some(id)) = (tenant, decide::exec_of(&path)) {
        hide_exec(state, t, id).await?;
    }
    // `docker exec --privileged` is a privileged process in the container.
    if kind == RequestKind::Exec && method == "POST" && path.ends_with("/exec") {
        let body = body_of(req).await?;
        let privileged = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("Privileged")?.as_bool())
            .unwrap_or(false);
        if privileged && !rules.allow_privileged {
            return Err(deny(client.as_deref(), Rule::AllowPrivileged, &what));
        }
    }
    if path == "/build" {
        let network_mode = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .ok()
            .and_then(|q| {
                q.into_iter()
                    .find(|(k, _)| k == "networkmode")
                    .map(|(_, v)| v)
            });
        decide::check_build(rules, network_mode.as_deref())
            .map_err(|rule| deny(client.as_deref(), rule, &what))?;
    }
    // Containers named outside the path: a network (dis)connect's body, a commit's query.
    if let Some(t) = tenant {
        let named = if path.starts_with("/networks/")
            && (path.ends_with("/connect") || path.ends_with("/disconnect"))
        {
            let body = body_of(req).await?;
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| Some(v.get("Container")?.as_str()?.to_string()))
        } else if path == "/commit" {
            serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
                .ok()
                .and_then(|q| {
                    q.into_iter()
                        .find(|(k, _)| k == "container")
                        .map(|(_, v)| v)
                })
        } else {
            None
        };
        if let Some(name) = named {
            hide(state, t, &Target::Container(&name))?;
        }
    }
    if kind == RequestKind::CreateContainer {
        let body = body_of(req).await?;
        // A body that does not parse is the handler's to refuse (400), as without a policy.
        if let Ok(typed) = serde_json::from_slice::<ContainerCreateBody>(&body) {
            let read = state.read();
            decide::check_create(rules, &typed, |named, name| match named {
                Named::Container => container_visible(state, tenant, name).unwrap_or(true),
                Named::Volume => volume_visible(&read, tenant, name).unwrap_or(true),
            })
            .map_err(|rule| deny(client.as_deref(), rule, &what))?;
        }
    }
    Ok(Some(Grant {
        tenant: rules.tenant.clone(),
        constraints: rules.constraints.clone(),
    }))
}

/// The middleware around the route table: without `--authz-policy` it lets everything on.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<ApiState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let Some(authz) = state.authz.as_ref() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let policy = authz.current();
    if let Some(grant) = check(&state, &mut req, &policy).await? {
        req.extensions_mut().insert(grant);
    }
    // An exec create's answer names the exec: noted, whoever the client, so a tenant's
    // later use of it can be checked against its container.
    let (_, path) = split_api_version(crate::api::routed_path(req.request()));
    let exec_create = decide::exec_create_of(req.method().as_str(), path).map(str::to_string);
    let res = next.call(req).await?;
    match exec_create {
        Some(reference) if res.status() == actix_web::http::StatusCode::CREATED => {
            Ok(record_exec(&state, &reference, res)
                .await?
                .map_into_right_body())
        }
        _ => Ok(res.map_into_left_body()),
    }
}

/// The guard's answer for a hijack the gate took (attach, exec start), which never reaches
/// the route table: the same rules, the same 403 and 404.
pub async fn check_hijack(
    state: &ApiState,
    client: Option<&ClientIdentity>,
    hijack: &crate::api::hijack::Hijack,
) -> Result<(), ApiError> {
    let Some(authz) = state.authz.as_ref() else {
        return Ok(());
    };
    let policy = authz.current();
    let client = client.map(|c| c.common_name.as_str());
    let what = format!("{hijack:?}");
    let access = decide::decide(&policy, client, RequestKind::Exec)
        .map_err(|rule| deny(client, rule, &what))?;
    match (access.tenant(), hijack) {
        (Some(tenant), crate::api::hijack::Hijack::Attach { reference }) => {
            hide(state, tenant, &Target::Container(reference))
        }
        (Some(tenant), crate::api::hijack::Hijack::ExecStart { id }) => {
            hide_exec(state, tenant, id).await
        }
        (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_prune_is_filtered_on_its_label() {
        let filters = |q: &str| -> serde_json::Value {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap();
            let f = &pairs.iter().find(|(k, _)| k == "filters").unwrap().1;
            serde_json::from_str(f).unwrap()
        };
        let q = scoped_query("", "a").unwrap();
        assert_eq!(
            filters(&q),
            serde_json::json!({"label": {"com.shoal.tenant=a": true}})
        );
        let q = scoped_query("filters=%7B%22until%22%3A%7B%2224h%22%3Atrue%7D%7D", "a").unwrap();
        assert_eq!(
            filters(&q),
            serde_json::json!({"until": {"24h": true}, "label": {"com.shoal.tenant=a": true}})
        );
        let q = scoped_query("filters=%7B%22label%22%3A%5B%22x%3D1%22%5D%7D&all=1", "b").unwrap();
        assert_eq!(
            filters(&q),
            serde_json::json!({"label": ["x=1", "com.shoal.tenant=b"]})
        );
        assert!(q.contains("all=1"));
        assert!(scoped_query("filters=%7Bnot", "a").is_err());
    }

    #[test]
    fn paths_name_their_object() {
        use Target::*;
        for (m, p, t) in [
            ("GET", "/containers/web/json", Some(Container("web"))),
            (
                "GET",
                "/containers/node-1/web/logs",
                Some(Container("node-1/web")),
            ),
            ("GET", "/containers/web/attach/ws", Some(Container("web"))),
            ("DELETE", "/containers/web", Some(Container("web"))),
            (
                "DELETE",
                "/containers/node-1/web",
                Some(Container("node-1/web")),
            ),
            ("POST", "/containers/abc/exec", Some(Container("abc"))),
            ("GET", "/containers/json", None),
            ("POST", "/containers/create", None),
            ("POST", "/containers/prune", None),
            ("GET", "/networks/front", Some(Network("front"))),
            ("POST", "/networks/front/connect", Some(Network("front"))),
            ("POST", "/networks/create", None),
            ("DELETE", "/volumes/data", Some(Volume("data"))),
            ("POST", "/volumes/create", None),
            ("GET", "/images/json", None),
        ] {
            assert_eq!(target(m, p, ""), t, "{m} {p}");
        }
        for (q, t) in [
            ("link=1", Container("web")),
            ("link=true&force=0", Container("web")),
            ("link=0", Container("web/db")),
            ("", Container("web/db")),
        ] {
            assert_eq!(target("DELETE", "/containers/web/db", q), Some(t), "{q}");
        }
    }
}
