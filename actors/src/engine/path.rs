//! Docker API paths: the optional `/vX.Y` version prefix every route may carry.

/// Splits `/v1.41/containers/json` into (`/v1.41`, `/containers/json`); a path without a
/// version prefix gives (`""`, the path).
pub fn split_api_version(path: &str) -> (&str, &str) {
    let Some(rest) = path.strip_prefix("/v") else {
        return ("", path);
    };
    let Some(end) = rest.find('/') else {
        return ("", path);
    };
    let version = &rest[..end];
    let numeric = version.split('.').count() == 2
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if numeric {
        path.split_at(end + 2)
    } else {
        ("", path)
    }
}

#[cfg(test)]
mod tests {
    use super::split_api_version;

    #[test]
    fn only_a_version_is_split_off() {
        assert_eq!(
            split_api_version("/v1.41/containers/x/start"),
            ("/v1.41", "/containers/x/start")
        );
        assert_eq!(
            split_api_version("/containers/x/start"),
            ("", "/containers/x/start")
        );
        assert_eq!(split_api_version("/volumes/v1.2"), ("", "/volumes/v1.2"));
        assert_eq!(split_api_version("/vx/y"), ("", "/vx/y"));
        assert_eq!(split_api_version("/v1/y"), ("", "/v1/y"));
        assert_eq!(split_api_version("/v1.41"), ("", "/v1.41"));
    }
}
