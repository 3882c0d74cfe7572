//! Small helpers shared by the stages: ids, times, Docker's string conventions.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// `busybox` → `busybox:latest`; drops the implicit `docker.io/library/` prefix.
pub fn normalize_image(s: &str) -> String {
    let s = s
        .strip_prefix("docker.io/library/")
        .or_else(|| s.strip_prefix("docker.io/"))
        .unwrap_or(s);
    let last = s.rsplit('/').next().unwrap_or(s);
    if last.contains(':') || s.contains('@') || s.starts_with("sha256:") {
        s.to_string()
    } else {
        format!("{s}:latest")
    }
}

/// A stable 64-hex digest of `seed`: the same image has the same ID on every engine.
pub fn fake_digest(seed: &str) -> String {
    (0u64..4)
        .map(|salt| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (salt, seed).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// A fresh 64-hex container ID.
pub fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// RFC 3339 with nanoseconds, as Go prints `time.Time`; 0 is Go's zero time.
pub fn rfc3339(nanos: i64) -> String {
    if nanos == 0 {
        return "0001-01-01T00:00:00Z".to_string();
    }
    chrono::DateTime::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Docker's `units.HumanDuration`, used in `Status` ("Up 5 minutes").
pub fn human_duration(nanos: i64) -> String {
    let secs = nanos.max(0) / 1_000_000_000;
    let mins = secs / 60;
    let hours = mins / 60;
    match () {
        _ if secs < 1 => "Less than a second".to_string(),
        _ if secs == 1 => "1 second".to_string(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if mins == 1 => "About a minute".to_string(),
        _ if mins < 60 => format!("{mins} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// Docker's boolean query values: empty, `0`, `no`, `false`, `none` are false.
pub fn query_bool(q: &HashMap<String, String>, key: &str) -> bool {
    match q.get(key) {
        None => false,
        Some(v) => !matches!(
            v.to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        ),
    }
}

/// Parsed `filters`: key → accepted values (values of one key OR, keys AND).
pub type Filters = HashMap<String, Vec<String>>;

/// Parses `filters` in both forms Docker accepts: `{"k":["v"]}` and `{"k":{"v":true}}`.
pub fn parse_filters(raw: Option<&String>) -> Result<Filters, crate::SimError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(Filters::new());
    };
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| crate::SimError::BadRequest(format!("invalid filter: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| crate::SimError::BadRequest("invalid filter: not an object".into()))?;
    let mut out = Filters::new();
    for (k, v) in obj {
        let vals = match v {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            _ => return Err(crate::SimError::BadRequest(format!("invalid filter '{k}'"))),
        };
        out.insert(k.clone(), vals);
    }
    Ok(out)
}

/// Whether `labels` satisfy every `key` / `key=value` in `wanted`.
pub fn labels_match<'a>(
    mut labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    wanted: &[String],
) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.clone().any(|(lk, lv)| lk == k && lv == v),
        None => labels.any(|(lk, _)| lk == w),
    })
}

/// `1700000000`, `1700000000.5` or `1700000000.000000001` as nanoseconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    Some(secs * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_normalize_like_docker() {
        assert_eq!(normalize_image("busybox"), "busybox:latest");
        assert_eq!(normalize_image("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(
            normalize_image("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(90 * 1_000_000_000), "About a minute");
        assert_eq!(human_duration(3 * 3600 * 1_000_000_000), "3 hours");
    }

    #[test]
    fn filters_accept_both_forms() {
        let f = parse_filters(Some(
            &r#"{"label":{"a=b":true},"status":["running"]}"#.to_string(),
        ))
        .unwrap();
        assert_eq!(f["label"], vec!["a=b"]);
        assert_eq!(f["status"], vec!["running"]);
        assert!(parse_filters(Some(&"nope".to_string())).is_err());
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_timestamp("2.5"), Some(2_500_000_000));
        assert_eq!(parse_timestamp("3"), Some(3_000_000_000));
        assert_eq!(parse_timestamp("x"), None);
    }
}
