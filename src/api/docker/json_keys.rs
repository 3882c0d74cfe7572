//! JSON keys in any case, as the engine reads them.
//!
//! dockerd decodes request bodies with Go's `encoding/json`, which matches an object key to
//! a struct field exactly if it can, else case-insensitively: `{"container": id}` on
//! network connect is `{"Container": id}` to an engine (the Ruby `docker-api` gem sends the
//! former). Keys of maps (`Labels`, `EndpointsConfig`, `Options`, ...) are data and are
//! never folded. Shoal reads some bodies itself (typed with serde, which matches exactly),
//! so before anything reads one, [`canonical_body`] rewrites the keys of the bodies Shoal
//! reads into the case Docker's API spells them, by the same rule, with the field names of
//! the type that body is read as ([`fold_keys`]). The authorization guard, the handler and
//! the engine then all see one spelling. Bodies Shoal does not read (exec create, update,
//! commit, ...) are forwarded as they came: the engine folds them itself.
//!
//! The schema is the serde type itself: [`Fold`] is a deserializer over a JSON value that,
//! whenever the type asks for a struct (and so names its fields), renames that object's
//! keys in place before handing it over. Where a key matches no field it is left alone
//! (the engine ignores it or knows it better). Two keys that fold to one field (`Image`
//! and `image`) keep the exact one, as Go prefers an exact match.

use crate::api::error::ApiError;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use bollard_stubs::models::{
    ContainerCreateBody, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
    VolumeCreateOptions,
};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::{Map, Value};
use shoal_actors::engine::split_api_version;

/// Reads `value` as a `T` with Go's key matching, and leaves `value` with the keys of
/// every object read as a struct spelled as `T`'s fields are. On an error `value` may be
/// partly renamed.
pub fn fold_keys<T: DeserializeOwned>(value: &mut Value) -> Result<T, serde_json::Error> {
    T::deserialize(Fold(value))
}

/// The type a route's body is read as, for the bodies Shoal reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    CreateContainer,
    CreateNetwork,
    ConnectNetwork,
    DisconnectNetwork,
    CreateVolume,
}

/// Which body (if any) of Shoal's a request carries, from its method and path.
fn body_kind(method: &Method, path: &str) -> Option<BodyKind> {
    if method != Method::POST {
        return None;
    }
    let (_, path) = split_api_version(path);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["containers", "create"] => Some(BodyKind::CreateContainer),
        ["networks", "create"] => Some(BodyKind::CreateNetwork),
        ["networks", .., "connect"] if segments.len() > 2 => Some(BodyKind::ConnectNetwork),
        ["networks", .., "disconnect"] if segments.len() > 2 => Some(BodyKind::DisconnectNetwork),
        ["volumes", "create"] => Some(BodyKind::CreateVolume),
        _ => None,
    }
}

/// `body` with its keys in Docker's spelling, or `None` when nothing changed or it does
/// not read as `kind` (then it goes on as it came, for the handler or engine to refuse).
fn canonical(kind: BodyKind, body: &[u8]) -> Option<Vec<u8>> {
    let original: Value = serde_json::from_slice(body).ok()?;
    let mut value = original.clone();
    let read = match kind {
        BodyKind::CreateContainer => fold_keys::<ContainerCreateBody>(&mut value).map(drop),
        BodyKind::CreateNetwork => fold_keys::<NetworkCreateRequest>(&mut value).map(drop),
        BodyKind::ConnectNetwork => fold_keys::<NetworkConnectRequest>(&mut value).map(drop),
        BodyKind::DisconnectNetwork => fold_keys::<NetworkDisconnectRequest>(&mut value).map(drop),
        BodyKind::CreateVolume => fold_keys::<VolumeCreateOptions>(&mut value).map(drop),
    };
    if read.is_err() || value == original {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

/// The middleware before the authorization guard: puts the keys of a body Shoal reads in
/// Docker's spelling (see the module doc). Every other request passes untouched.
pub async fn canonical_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(kind) = body_kind(req.method(), crate::api::routed_path(req.request())) {
        let mut payload = req.take_payload();
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if body.len() + chunk.len() > crate::api::JSON_BODY_LIMIT {
                return Err(ApiError::BadRequest("request body too large".into()).into());
            }
            body.extend_from_slice(&chunk);
        }
        let body = match canonical(kind, &body) {
            Some(folded) => {
                let headers = req.headers_mut();
                headers.remove(TRANSFER_ENCODING);
                headers.insert(CONTENT_LENGTH, HeaderValue::from(folded.len()));
                bytes::Bytes::from(folded)
            }
            None => body.freeze(),
        };
        req.set_payload(Payload::from(body));
    }
    next.call(req).await
}

/// Renames the keys of `map` to the `fields` they fold to (see the module doc).
fn rename_keys(map: &mut Map<String, Value>, fields: &'static [&'static str]) {
    let folded: Vec<(String, &'static str)> = map
        .keys()
        .filter(|k| !fields.contains(&k.as_str()))
        .filter_map(|k| {
            let field = fields.iter().find(|f| f.eq_ignore_ascii_case(k))?;
            Some((k.clone(), *field))
        })
        .collect();
    for (key, field) in folded {
        if let Some(value) = map.remove(&key) {
            // An exact key wins over a folded one; of two folded ones, the first kept.
            map.entry(field).or_insert(value);
        }
    }
}

/// A deserializer over a JSON value that folds the keys of every object read as a struct
/// (see the module doc). Strings are handed over owned: the value is borrowed mutably.
struct Fold<'a>(&'a mut Value);

impl<'de> Deserializer<'de> for Fold<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => n.clone().deserialize_any(visitor),
            Value::String(s) => visitor.visit_string(s.clone()),
            Value::Array(items) => visitor.visit_seq(FoldSeq {
                items: items.iter_mut(),
            }),
            Value::Object(map) => visitor.visit_map(FoldMap {
                entries: map.iter_mut(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if let Value::Object(map) = &mut *self.0 {
            rename_keys(map, fields);
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // Docker's bodies hold enums of plain strings: nothing inside to fold.
        self.0.clone().deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct FoldSeq<'a> {
    items: std::slice::IterMut<'a, Value>,
}

impl<'de> SeqAccess<'de> for FoldSeq<'_> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.items.next() {
            Some(v) => seed.deserialize(Fold(v)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct FoldMap<'a> {
    entries: serde_json::map::IterMut<'a>,
    value: Option<&'a mut Value>,
}

impl<'de> MapAccess<'de> for FoldMap<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                let key: de::value::StringDeserializer<serde_json::Error> =
                    k.clone().into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(Fold(v)),
            None => Err(de::Error::custom("a value asked for before its key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn folded(kind: BodyKind, body: Value) -> Value {
        let bytes = serde_json::to_vec(&body).unwrap();
        match canonical(kind, &bytes) {
            Some(out) => serde_json::from_slice(&out).unwrap(),
            None => body,
        }
    }

    #[test]
    fn struct_keys_fold_to_dockers_spelling_and_map_keys_stay() {
        let out = folded(
            BodyKind::CreateContainer,
            json!({
                "image": "busybox",
                "CMD": ["sleep", "1"],
                "labels": {"tier": "web", "Tier": "x"},
                "hostconfig": {"memory": 1024, "restartpolicy": {"name": "always"},
                               "portbindings": {"80/tcp": [{"hostport": "8080"}]}},
                "networkingconfig": {"endpointsconfig": {"MyNet": {"aliases": ["a"]}}},
                "FutureField": {"x": 1}
            }),
        );
        assert_eq!(
            out,
            json!({
                "Image": "busybox",
                "Cmd": ["sleep", "1"],
                "Labels": {"tier": "web", "Tier": "x"},
                "HostConfig": {"Memory": 1024, "RestartPolicy": {"Name": "always"},
                               "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}},
                "NetworkingConfig": {"EndpointsConfig": {"MyNet": {"Aliases": ["a"]}}},
                "FutureField": {"x": 1}
            })
        );
    }

    #[test]
    fn an_exact_key_wins_over_a_folded_one() {
        let out = folded(
            BodyKind::ConnectNetwork,
            json!({"container": "b", "Container": "a"}),
        );
        assert_eq!(out, json!({"Container": "a"}));
        let out = folded(
            BodyKind::DisconnectNetwork,
            json!({"CONTAINER": "c", "force": true}),
        );
        assert_eq!(out, json!({"Container": "c", "Force": true}));
    }

    #[test]
    fn bodies_that_do_not_read_pass_as_they_came() {
        for body in [&b"{"[..], b"[1]", br#"{"image": 5}"#] {
            assert_eq!(canonical(BodyKind::CreateContainer, body), None);
        }
        assert_eq!(
            canonical(BodyKind::CreateVolume, br#"{"Name": "v"}"#),
            None,
            "already in Docker's spelling"
        );
        let out = folded(
            BodyKind::CreateVolume,
            json!({"name": "v", "labels": {"a": "b"}}),
        );
        assert_eq!(out, json!({"Name": "v", "Labels": {"a": "b"}}));
    }

    #[test]
    fn only_the_bodies_shoal_reads_are_looked_at() {
        let post = Method::POST;
        assert_eq!(
            body_kind(&post, "/v1.41/containers/create"),
            Some(BodyKind::CreateContainer)
        );
        assert_eq!(
            body_kind(&post, "/networks/a/b/connect"),
            Some(BodyKind::ConnectNetwork)
        );
        assert_eq!(
            body_kind(&post, "/networks/n/disconnect"),
            Some(BodyKind::DisconnectNetwork)
        );
        assert_eq!(
            body_kind(&post, "/networks/create"),
            Some(BodyKind::CreateNetwork)
        );
        assert_eq!(
            body_kind(&post, "/volumes/create"),
            Some(BodyKind::CreateVolume)
        );
        for p in [
            "/containers/web/update",
            "/containers/web/exec",
            "/commit",
            "/networks/connect",
        ] {
            assert_eq!(body_kind(&post, p), None, "{p}");
        }
        assert_eq!(body_kind(&Method::GET, "/containers/create"), None);
    }
}
