//! Docker API paths: the optional `/vX.Y` version prefix every route may carry, and the
//! one way client input enters an engine path ([`escape_param`]).

/// Encodes a path parameter taken from a client (container or exec ID, image reference,
/// network or volume name) for an engine path: every byte but RFC 3986's unreserved
/// characters and `:` and `@` (which a segment may hold, and references use) is
/// percent-encoded, so a `?`, `#`, `%` or space stays inside the parameter. `/` is kept:
/// a reference spans segments (`localhost:5000/team/app`), as the engine's routes expect
/// (`/images/{name:.*}/json`). Dot segments are not the helper's to refuse: callers check
/// references first (`..` is not one) and resolve the other names through the cluster view.
pub fn escape_param(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'@'
            | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

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
    use super::{escape_param, split_api_version};

    #[test]
    fn client_input_stays_one_parameter() {
        assert_eq!(escape_param("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(escape_param("a?b#c"), "a%3Fb%23c");
        assert_eq!(escape_param("a b%2F"), "a%20b%252F");
        assert_eq!(escape_param("app@sha256:ab"), "app@sha256:ab");
        assert_eq!(escape_param("é+"), "%C3%A9%2B");
    }

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
