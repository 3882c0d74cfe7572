//! Route templates for labels: a path becomes a bounded string, so container IDs, names
//! and image references never reach the label space.

/// Words of the Docker Engine API kept as they are in a template; any other path segment
/// is an object reference and becomes `{}`. A fixed vocabulary bounds the label values
/// whatever the clients send.
const API_WORDS: &[&str] = &[
    "_ping",
    "archive",
    "attach",
    "auth",
    "build",
    "changes",
    "commit",
    "configs",
    "connect",
    "containers",
    "create",
    "delete",
    "df",
    "disconnect",
    "distribution",
    "events",
    "exec",
    "export",
    "get",
    "history",
    "images",
    "info",
    "inspect",
    "json",
    "kill",
    "load",
    "logs",
    "networks",
    "nodes",
    "pause",
    "plugins",
    "prune",
    "push",
    "rename",
    "resize",
    "restart",
    "search",
    "secrets",
    "services",
    "session",
    "start",
    "stats",
    "stop",
    "swarm",
    "system",
    "tag",
    "tasks",
    "top",
    "unpause",
    "update",
    "version",
    "volumes",
    "wait",
];

/// The template of an engine (or unrouted API) path: no query, no version prefix, every
/// segment outside the API's vocabulary replaced by `{}` (a run of them, as in an image
/// name with slashes, by one). `/v1.41/images/library/nginx:1/json?x=1` → `/images/{}/json`.
pub fn route_template(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let (_, path) = crate::engine::split_api_version(path);
    let mut out = String::new();
    let mut last_was_ref = false;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if API_WORDS.contains(&seg) {
            out.push('/');
            out.push_str(seg);
            last_was_ref = false;
        } else if !last_was_ref {
            out.push_str("/{}");
            last_was_ref = true;
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The label of an actix match pattern: the `/v{api_version}` scope dropped (versioned and
/// unversioned calls are the same route) and the regex of each parameter dropped:
/// `/v{api_version:[0-9]+\.[0-9]+}/containers/{id:.+}/json` → `/containers/{id}/json`.
pub fn api_route_label(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '{' {
            out.push(c);
            continue;
        }
        let mut name = String::new();
        let mut depth = 1;
        let mut in_regex = false;
        for c in chars.by_ref() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ':' if depth == 1 => in_regex = true,
                _ if !in_regex => name.push(c),
                _ => {}
            }
        }
        out.push('{');
        out.push_str(&name);
        out.push('}');
    }
    match out.strip_prefix("/v{api_version}") {
        Some("") => "/".to_string(),
        Some(rest) => rest.to_string(),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_paths_lose_ids_names_queries_and_versions() {
        assert_eq!(route_template("/containers/json?all=1"), "/containers/json");
        assert_eq!(
            route_template("/v1.41/containers/0123abcd/json"),
            "/containers/{}/json"
        );
        assert_eq!(
            route_template("/images/registry:5000/library/nginx:1.25/json"),
            "/images/{}/json"
        );
        assert_eq!(route_template("/images/sha256:abc"), "/images/{}");
        assert_eq!(route_template("/info"), "/info");
        assert_eq!(route_template("/events?since=1"), "/events");
        assert_eq!(route_template("/"), "/");
        assert_eq!(route_template("/what/ever/this/is"), "/{}");
        assert_eq!(route_template("/v1.41/exec/abc/start"), "/exec/{}/start");
    }

    #[test]
    fn match_patterns_lose_regexes_and_the_version_scope() {
        assert_eq!(
            api_route_label(r"/v{api_version:[0-9]+\.[0-9]+}/containers/{id:.+}/json"),
            "/containers/{id}/json"
        );
        assert_eq!(
            api_route_label("/containers/{id}/json"),
            "/containers/{id}/json"
        );
        assert_eq!(api_route_label("/_ping"), "/_ping");
        assert_eq!(api_route_label(r"/x/{n:\d{1,3}}"), "/x/{n}");
    }
}
