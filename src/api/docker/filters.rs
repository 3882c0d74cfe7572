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
    /// Parses the parameter and checks every key against `accepted`. Read as dockerd reads
    /// it: `null` is no filter and a `null` value no values; in the map form every value
    /// must be a boolean and every key counts whatever its boolean (dockerd's `Get` ignores
    /// it); one request uses one form.
    pub fn parse(raw: Option<&str>, accepted: &[&str]) -> Result<Self, ApiError> {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return Ok(Filters::default());
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::BadRequest(format!("invalid filter: {e}")))?;
        if value.is_null() {
            return Ok(Filters::default());
        }
        let obj = value
            .as_object()
            .ok_or_else(|| ApiError::BadRequest("invalid filter: not a JSON object".into()))?;
        let mut out = BTreeMap::new();
        let mut map_form = None;
        for (key, v) in obj {
            if !accepted.contains(&key.as_str()) {
                return Err(ApiError::BadRequest(format!("invalid filter '{key}'")));
            }
            let bad = |why: &str| ApiError::BadRequest(format!("invalid filter '{key}': {why}"));
            let (values, is_map): (Vec<String>, _) = match v {
                serde_json::Value::Null => (Vec::new(), None),
                serde_json::Value::Array(a) => (
                    a.iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or_else(|| bad("values must be strings"))?,
                    Some(false),
                ),
                serde_json::Value::Object(m) => {
                    if !m.values().all(serde_json::Value::is_boolean) {
                        return Err(bad("values must be booleans"));
                    }
                    (m.keys().cloned().collect(), Some(true))
                }
                _ => return Err(bad("not a list of values")),
            };
            if let Some(is_map) = is_map {
                if *map_form.get_or_insert(is_map) != is_map {
                    return Err(bad("lists and maps of values mixed"));
                }
            }
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
    fn read_as_dockerd_reads_it() {
        let name = |raw: &str| Filters::parse(Some(raw), &["name", "status"]);
        // dockerd's `Get` takes every key of the map form, whatever its boolean.
        assert_eq!(
            name(r#"{"name":{"web":false}}"#).unwrap().get("name"),
            Some(&["web".to_string()][..])
        );
        assert!(name("null").unwrap().0.is_empty());
        assert_eq!(name(r#"{"name":null}"#).unwrap().get("name"), None);
        for bad in [
            r#"{"name":{"web":"yes"}}"#,
            r#"{"name":["web"],"status":{"running":true}}"#,
            r#"{"name":"web"}"#,
        ] {
            assert!(name(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any text: an answer, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(raw in ".{0,200}") {
            let _ = Filters::parse(Some(&raw), &["name", "label"]);
        }

        /// Both wire forms of the same filters read the same, and what was written is what
        /// is read (as a set: the map form cannot repeat a value).
        #[test]
        fn both_forms_round_trip(
            filters in proptest::collection::btree_map(
                proptest::sample::select(vec!["name", "label", "status"]),
                proptest::collection::btree_set(".{0,12}", 0..4),
                0..3,
            )
        ) {
            let keys = ["name", "label", "status"];
            let lists: serde_json::Map<String, serde_json::Value> = filters
                .iter()
                .map(|(k, vs)| (k.to_string(), serde_json::json!(vs)))
                .collect();
            let maps: serde_json::Map<String, serde_json::Value> = filters
                .iter()
                .map(|(k, vs)| {
                    let m: serde_json::Map<String, serde_json::Value> =
                        vs.iter().map(|v| (v.clone(), serde_json::json!(true))).collect();
                    (k.to_string(), serde_json::Value::Object(m))
                })
                .collect();
            let a = Filters::parse(Some(&serde_json::Value::Object(lists).to_string()), &keys)
                .expect("list form");
            let b = Filters::parse(Some(&serde_json::Value::Object(maps).to_string()), &keys)
                .expect("map form");
            proptest::prop_assert_eq!(&a, &b);
            for (k, vs) in &filters {
                let got: std::collections::BTreeSet<String> =
                    a.0.get(*k).into_iter().flatten().cloned().collect();
                proptest::prop_assert_eq!(&got, vs);
            }
        }
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
