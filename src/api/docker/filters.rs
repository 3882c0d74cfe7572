//! The query of the list routes: `ListQuery`, and Docker's `filters` parameter in it, a
//! JSON object of key → values, in either of the two forms clients send
//! (`{"name":["web"]}` or the older `{"name":{"web":true}}`).

use crate::api::error::ApiError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The query of every list route (`/containers/json`, `/images/json`, `/networks`,
/// `/volumes`): each reads the parameters it has; unknown ones are ignored, as the engine
/// ignores them.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub all: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub filters: Option<String>,
}

/// Docker reads booleans in queries as `1`/`true` (any case); anything else is false.
pub fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(str::to_ascii_lowercase).as_deref(),
        Some("1") | Some("true")
    )
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the parameter and checks every key against `accepted`.
    pub fn parse(raw: Option<&str>, accepted: &[&str]) -> Result<Self, ApiError> {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return Ok(Filters::default());
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::BadRequest(format!("invalid filter: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ApiError::BadRequest("invalid filter: not a JSON object".into()))?;
        let mut out = BTreeMap::new();
        for (key, v) in obj {
            if !accepted.contains(&key.as_str()) {
                return Err(ApiError::BadRequest(format!("invalid filter '{key}'")));
            }
            let values: Vec<String> = match v {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "invalid filter '{key}': values must be strings"
                        ))
                    })?,
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(k, _)| k.clone())
                    .collect(),
                _ => return Err(ApiError::BadRequest(format!("invalid filter '{key}'"))),
            };
            out.insert(key.clone(), values);
        }
        Ok(Filters(out))
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice).filter(|v| !v.is_empty())
    }

    /// Docker's `Match`: an exact value, or a value read as an unanchored regular
    /// expression; a value that is not a valid expression matches only exactly.
    pub fn matches(&self, key: &str, source: &str) -> bool {
        match self.get(key) {
            None => true,
            Some(values) => values.iter().any(|v| {
                v == source
                    || regex::Regex::new(v)
                        .map(|re| re.is_match(source))
                        .unwrap_or(false)
            }),
        }
    }

    /// Docker's label match: every value (`key`, `key=value` or `key!=value`) must hold.
    pub fn matches_labels(&self, key: &str, labels: &impl Labels) -> bool {
        let Some(values) = self.get(key) else {
            return true;
        };
        values.iter().all(|want| {
            let get = |k: &str| labels.label(k);
            if let Some((k, v)) = want.split_once("!=") {
                get(k).is_some_and(|have| have != v)
            } else if let Some((k, v)) = want.split_once('=') {
                get(k).is_some_and(|have| have == v)
            } else {
                get(want).is_some()
            }
        })
    }
}

/// Labels as an engine object keeps them (a container's in a `BTreeMap`, an image's in a
/// `HashMap`).
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for std::collections::HashMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for std::collections::BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn truthy_like_docker() {
        assert!(truthy(Some("1")));
        assert!(truthy(Some("True")));
        assert!(!truthy(Some("0")));
        assert!(!truthy(Some("yes")));
        assert!(!truthy(None));
    }

    #[test]
    fn both_wire_forms_parse() {
        let a = Filters::parse(Some(r#"{"name":["web"]}"#), &["name"]).unwrap();
        let b = Filters::parse(Some(r#"{"name":{"web":true}}"#), &["name"]).unwrap();
        assert_eq!(a, b);
        assert!(Filters::parse(None, &[]).unwrap().0.is_empty());
    }

    #[test]
    fn unknown_keys_and_garbage_are_bad_requests() {
        let e = Filters::parse(Some(r#"{"colour":["x"]}"#), &["name"]).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'colour'");
        assert!(Filters::parse(Some("{"), &["name"]).is_err());
        assert!(Filters::parse(Some(r#"{"name":[1]}"#), &["name"]).is_err());
        assert!(Filters::parse(Some("[]"), &["name"]).is_err());
    }

    #[test]
    fn match_is_exact_or_regex() {
        let f = Filters::parse(Some(r#"{"name":["^/n1/web$","(bad"]}"#), &["name"]).unwrap();
        assert!(f.matches("name", "/n1/web"));
        assert!(!f.matches("name", "/n1/web2"));
        assert!(f.matches("name", "(bad"));
        assert!(f.matches("id", "anything"));
    }

    #[test]
    fn labels_all_must_hold() {
        let labels: HashMap<String, String> = [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]
        .into();
        let f = |s: &str| Filters::parse(Some(s), &["label"]).unwrap();
        assert!(f(r#"{"label":["a","b=2"]}"#).matches_labels("label", &labels));
        assert!(!f(r#"{"label":["a","b=3"]}"#).matches_labels("label", &labels));
        assert!(f(r#"{"label":["b!=3"]}"#).matches_labels("label", &labels));
        assert!(!f(r#"{"label":["c"]}"#).matches_labels("label", &HashMap::new()));
    }
}
