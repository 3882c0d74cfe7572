//! A create request, parsed once where it enters Shoal and typed from then on.
//!
//! The body is kept twice on purpose: typed (bollard's `ContainerCreateBody`) for the
//! placement, and as the client's raw JSON object for the engine, so fields this build does
//! not model still reach the engine unchanged. Only `Env` and `Labels` are rewritten
//! (Shoal's placement entries move from the env to the `com.docker.swarm.*` labels, and
//! labels a caller forces are added last, over the client's).
//!
//! Keys are read in Docker's spelling (serde matches exactly). A client may write them in
//! any case, as Go's decoder on the engine takes them: the HTTP front puts them in Docker's
//! spelling before the body gets here (`src/api/docker/json_keys.rs`).

use std::collections::BTreeMap;

use bollard_stubs::models::ContainerCreateBody;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::CreateError;
use crate::scheduler::{Expr, ExprKind, NodeId, PlacementRequest, ScheduleError};

/// What to do with a container found on an engine after its create went unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfLanded {
    /// Remove it: the caller was told the create failed (the HTTP front).
    #[default]
    Remove,
    /// Keep it and count it as placed: no caller waits on the answer (a rescheduler).
    /// A silent create that is adopted is never tried on another node as well.
    Adopt,
}

/// One create, typed. Built by [`CreateRequest::parse`]; amended by callers that force
/// labels or constraints onto it.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    raw: Map<String, Value>,
    body: ContainerCreateBody,
    placement: PlacementRequest,
    registry_auth: Option<String>,
    forced_labels: BTreeMap<String, String>,
    if_landed: IfLanded,
    /// The `com.docker.swarm.id` to keep (a re-created container); `None`: the reservation's.
    swarm_id: Option<String>,
}

/// Docker's rule for container names.
pub fn valid_name(name: &str) -> bool {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl CreateRequest {
    /// Reads a create body and its `?name=` (empty means none). Malformed JSON, a name
    /// Docker refuses, a missing image, a bad placement expression or reschedule policy
    /// are refused here, before anything is placed.
    pub fn parse(body: &[u8], name: Option<&str>) -> Result<Self, CreateError> {
        let raw: Value = serde_json::from_slice(body)
            .map_err(|e| CreateError::Invalid(format!("invalid JSON: {e}")))?;
        if !raw.is_object() {
            return Err(CreateError::Invalid(
                "invalid JSON: the body must be an object".into(),
            ));
        }
        // Typed from the parsed value where it is: a copy of the whole body to read it from
        // was one more pass over it per create.
        let typed = ContainerCreateBody::deserialize(&raw)
            .map_err(|e| CreateError::Invalid(format!("invalid create body: {e}")))?;
        let Value::Object(raw) = raw else {
            return Err(CreateError::Internal(
                "the body stopped being an object".into(),
            ));
        };
        let name = name.filter(|n| !n.is_empty());
        if let Some(name) = name {
            if !valid_name(name) {
                return Err(CreateError::Invalid(format!(
                    "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        if typed.image.as_deref().unwrap_or("").is_empty() {
            return Err(CreateError::Invalid(
                "config cannot be empty in order to create a container".into(),
            ));
        }
        let placement = PlacementRequest::from_create(&typed, name)?;
        Ok(CreateRequest {
            raw,
            body: typed,
            placement,
            registry_auth: None,
            forced_labels: BTreeMap::new(),
            if_landed: IfLanded::Remove,
            swarm_id: None,
        })
    }

    /// `X-Registry-Auth` for a pull this create may need; never logged.
    #[must_use]
    pub fn registry_auth(mut self, auth: Option<String>) -> Self {
        self.registry_auth = auth;
        self
    }

    /// Keep a container that lands after its create went unanswered (see [`IfLanded`]).
    #[must_use]
    pub fn adopt_if_landed(mut self) -> Self {
        self.if_landed = IfLanded::Adopt;
        self
    }

    /// Sets a label on the container over whatever the client gave (an authorization
    /// policy's owner label, a rescheduler's marks).
    pub fn force_label(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.forced_labels.insert(key.into(), value.into());
    }

    /// Adds a constraint the client did not write (`zone==a`, classic syntax without the
    /// `constraint:` prefix). It steers the placement and is recorded in the container's
    /// constraints label like the client's own, so a re-create keeps it.
    pub fn force_constraint(&mut self, raw: &str) -> Result<(), CreateError> {
        let expr = Expr::parse(ExprKind::Constraint, raw).map_err(ScheduleError::from)?;
        if !self.placement.constraints.iter().any(|e| e.raw == expr.raw) {
            self.placement.constraints.push(expr);
        }
        Ok(())
    }

    /// Re-creates a container of node `from` (the rescheduler): the copy keeps the
    /// original's `com.docker.swarm.id`, is never placed on `from`, and may take the name
    /// the original still holds there (it is the same container, moved).
    pub fn replace_from(&mut self, swarm_id: impl Into<String>, from: NodeId) {
        self.swarm_id = Some(swarm_id.into());
        self.placement.avoid.insert(from.clone());
        self.placement.takes_name_from = Some(from);
    }

    /// The `com.docker.swarm.id` the container gets: the kept one, else the reservation's.
    pub(crate) fn swarm_id<'a>(&'a self, reservation: &'a str) -> &'a str {
        self.swarm_id.as_deref().unwrap_or(reservation)
    }

    /// The container name asked for, without the leading `/`.
    pub fn name(&self) -> Option<&str> {
        self.placement.name.as_deref()
    }

    pub fn image(&self) -> Option<&str> {
        self.placement.image.as_deref()
    }

    pub fn placement(&self) -> &PlacementRequest {
        &self.placement
    }

    pub(crate) fn auth(&self) -> Option<String> {
        self.registry_auth.clone()
    }

    pub(crate) fn if_landed(&self) -> IfLanded {
        self.if_landed
    }

    /// The body for the engine: the client's JSON with Shoal's rewrite of `Env` and
    /// `Labels`, `com.docker.swarm.id` set to `swarm_id`, forced labels last.
    pub(crate) fn engine_body(&self, swarm_id: &str) -> Bytes {
        // Only `Env` and `Labels` are rewritten: a copy of them, not of the whole typed body.
        let mut rewritten = ContainerCreateBody {
            env: self.body.env.clone(),
            labels: self.body.labels.clone(),
            ..Default::default()
        };
        self.placement.rewrite_body(&mut rewritten, swarm_id);
        let labels = rewritten.labels.get_or_insert_with(Default::default);
        for (k, v) in &self.forced_labels {
            labels.insert(k.clone(), v.clone());
        }
        let out = EngineBody {
            raw: &self.raw,
            env: &rewritten.env,
            labels: &rewritten.labels,
        };
        // Written straight from the client's object: a copy of it to edit first was one more
        // pass over the body per create.
        Bytes::from(serde_json::to_vec(&out).unwrap_or_else(|_| b"{}".to_vec()))
    }
}

/// The client's object with `Env` and `Labels` in Shoal's rewrite, as it is serialized:
/// the client's other fields as they came, then the two rewritten ones.
struct EngineBody<'a> {
    raw: &'a Map<String, Value>,
    env: &'a Option<Vec<String>>,
    labels: &'a Option<std::collections::HashMap<String, String>>,
}

impl serde::Serialize for EngineBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.raw {
            match k.as_str() {
                "Env" | "Labels" => {}
                _ => map.serialize_entry(k, v)?,
            }
        }
        map.serialize_entry("Env", self.env)?;
        map.serialize_entry("Labels", self.labels)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{LABEL_RESCHEDULE, LABEL_SWARM_ID};

    #[test]
    fn docker_name_rule() {
        for ok in ["web", "/web", "a1", "web_1.x-y"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "w", "_web", "-x", "we b", "a/b", "é1"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn bad_requests_are_refused_with_400() {
        let cases: [(&[u8], Option<&str>, &str); 6] = [
            (b"{", None, "invalid JSON"),
            (b"[1]", None, "must be an object"),
            (br#"{"Image": 5}"#, None, "invalid create body"),
            (
                br#"{"Image": "bb"}"#,
                Some("-x"),
                "Invalid container name (-x)",
            ),
            (br#"{"Env": ["A=1"]}"#, None, "config cannot be empty"),
            (
                br#"{"Image": "bb", "Env": ["reschedule:sometimes"]}"#,
                None,
                "invalid reschedule policy: sometimes",
            ),
        ];
        for (body, name, want) in cases {
            let e = CreateRequest::parse(body, name).unwrap_err();
            assert_eq!(e.status(), 400, "{want}");
            assert!(e.to_string().contains(want), "{e} / {want}");
        }
    }

    #[test]
    fn engine_body_keeps_unknown_fields_and_rewrites_env_and_labels() {
        let mut r = CreateRequest::parse(
            br#"{"Image": "bb", "FutureField": {"x": 1}, "Env": ["A=1", "constraint:zone==a", "reschedule:on-node-failure"], "Labels": {"owner": "client", "keep": "1"}}"#,
            Some("web"),
        )
        .unwrap();
        r.force_label("owner", "policy");
        r.force_constraint("tier==web").unwrap();
        r.force_constraint("tier==web").unwrap();
        assert_eq!(r.name(), Some("web"));
        assert_eq!(r.placement().constraints.len(), 2);
        let out: Value = serde_json::from_slice(&r.engine_body("sid")).unwrap();
        assert_eq!(out["FutureField"]["x"], 1);
        assert_eq!(out["Env"], serde_json::json!(["A=1"]));
        let labels = &out["Labels"];
        assert_eq!(labels["owner"], "policy");
        assert_eq!(labels["keep"], "1");
        assert_eq!(labels[LABEL_SWARM_ID], "sid");
        assert_eq!(labels[LABEL_RESCHEDULE], r#"["on-node-failure"]"#);
        assert_eq!(
            labels["com.docker.swarm.constraints"],
            r#"["zone==a","tier==web"]"#
        );
        assert!(r.force_constraint("==x").is_err());
    }
}
