//! The engine's facts, read from `GET /info` and `GET /version`: who the engine is (ID,
//! name, labels), what it has (CPUs, memory) and what it runs (OS, kernel, storage driver,
//! versions).
//!
//! One type for everyone: the node publishes it in its snapshot, the front shows it
//! (`/info`, the cluster page, the `Node` field of an inspect), and the scheduler reads its
//! constraint keys (`storagedriver`, `kernelversion`, ...) and capacity from the offer.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The engine's facts, from `GET /info` and `GET /version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineFacts {
    pub id: String,
    pub name: String,
    /// `dockerd --label` labels.
    pub labels: BTreeMap<String, String>,
    /// `NCPU`.
    pub ncpu: u32,
    /// `MemTotal`, bytes.
    pub mem_total: u64,
    pub operating_system: String,
    pub os_type: String,
    pub kernel_version: String,
    pub storage_driver: String,
    pub architecture: String,
    pub server_version: String,
    pub api_version: String,
    pub min_api_version: String,
}

/// The fields of `GET /info` Shoal keeps. Unknown fields are ignored, so newer engines parse.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InfoBody {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    #[serde(rename = "NCPU", default)]
    pub ncpu: i64,
    #[serde(default)]
    pub mem_total: i64,
    #[serde(default)]
    pub operating_system: String,
    #[serde(rename = "OSType", default)]
    pub os_type: String,
    #[serde(default)]
    pub kernel_version: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub architecture: String,
}

/// The fields of `GET /version` Shoal keeps.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionBody {
    #[serde(rename = "Version", default)]
    pub version: String,
    #[serde(rename = "ApiVersion")]
    pub api_version: String,
    #[serde(rename = "MinAPIVersion", default)]
    pub min_api_version: String,
}

/// Reads a JSON `null` as the type's default (engines write `null` for empty lists).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl EngineFacts {
    pub(crate) fn from_bodies(info: InfoBody, version: VersionBody) -> Self {
        let labels = info
            .labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect();
        EngineFacts {
            id: info.id,
            name: info.name,
            labels,
            // An engine never counts below zero; one that says so is read as having none.
            ncpu: u32::try_from(info.ncpu.max(0)).unwrap_or(u32::MAX),
            mem_total: info.mem_total.max(0) as u64,
            operating_system: info.operating_system,
            os_type: info.os_type,
            kernel_version: info.kernel_version,
            storage_driver: info.driver,
            architecture: info.architecture,
            server_version: version.version,
            api_version: version.api_version,
            min_api_version: version.min_api_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_with_null_labels_parses() {
        let info: InfoBody =
            serde_json::from_str(r#"{"ID":"X","Name":"n","Labels":null,"NCPU":2}"#).unwrap();
        assert!(info.labels.is_empty());
        assert_eq!(info.ncpu, 2);
    }

    #[test]
    fn facts_from_bodies() {
        let info: InfoBody = serde_json::from_str(
            r#"{"ID":"X","Name":"n","Labels":["zone=a","ssd"],"NCPU":-1,"MemTotal":1024,
                "Driver":"overlay2","OSType":"linux"}"#,
        )
        .unwrap();
        let version: VersionBody =
            serde_json::from_str(r#"{"Version":"27.0","ApiVersion":"1.46"}"#).unwrap();
        let f = EngineFacts::from_bodies(info, version);
        assert_eq!(f.labels.get("zone").map(String::as_str), Some("a"));
        assert_eq!(f.labels.get("ssd").map(String::as_str), Some(""));
        assert_eq!((f.ncpu, f.mem_total), (0, 1024));
        assert_eq!(f.storage_driver, "overlay2");
        assert_eq!(f.api_version, "1.46");
    }
}
