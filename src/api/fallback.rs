//! Answers for paths no handler took: 501 naming the route when it is part of the Docker
//! Engine API (later work adds it), 404 `page not found` otherwise, as the engine answers.

use super::ApiError;
use actix_web::HttpRequest;

/// First path segments of the Docker Engine API.
const ENGINE_API_ROOTS: &[&str] = &[
    "containers",
    "images",
    "networks",
    "volumes",
    "exec",
    "build",
    "events",
    "system",
    "swarm",
    "services",
    "nodes",
    "tasks",
    "secrets",
    "configs",
    "plugins",
    "session",
    "distribution",
    "auth",
    "commit",
    "grpc",
];

/// Strips a `/vN.NN` prefix.
fn unversioned(path: &str) -> &str {
    let rest = path.trim_start_matches('/');
    match rest.split_once('/') {
        Some((first, tail))
            if first.starts_with('v')
                && first[1..]
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            &path[path.len() - tail.len() - 1..]
        }
        _ => path,
    }
}

pub async fn unrouted(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    let path = unversioned(req.path());
    let root = path.trim_start_matches('/').split('/').next().unwrap_or("");
    Err(if ENGINE_API_ROOTS.contains(&root) {
        ApiError::NotImplemented {
            method: req.method().to_string(),
            path: path.to_string(),
        }
    } else {
        ApiError::NoRoute
    })
}

#[cfg(test)]
mod tests {
    use super::unversioned;

    #[test]
    fn strips_only_a_version_prefix() {
        assert_eq!(
            unversioned("/v1.41/containers/x/start"),
            "/containers/x/start"
        );
        assert_eq!(unversioned("/containers/x/start"), "/containers/x/start");
        assert_eq!(unversioned("/volumes/v1.2"), "/volumes/v1.2");
        assert_eq!(unversioned("/vx/y"), "/vx/y");
    }
}
