//! Paths with empty or `.` segments (`//`, `/./`) are redirected to their clean form with
//! `301 Moved Permanently`, as dockerd's router does before it routes anything. Clients
//! follow the redirect, so `GET /images/gensokyo.jp//kirisame/json` ends, as on an
//! engine, in a 404 for `gensokyo.jp/kirisame` rather than a 400 about the name.
//!
//! A path with a `..` segment is not redirected (dockerd would): it is left to the routes,
//! which refuse it (a 400 for an image name, a 404 otherwise), so a path that climbs out
//! of its object never gets a second meaning through Shoal.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::LOCATION;
use actix_web::middleware::Next;
use actix_web::HttpResponse;

/// `path` without empty and `.` segments (keeping a trailing slash), or `None` when it has
/// none, or has a `..` segment.
fn cleaned(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => return None,
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    (out != path).then_some(out)
}

pub async fn redirect(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(clean) = cleaned(req.uri().path()) {
        let location = match req.uri().query() {
            Some(q) => format!("{clean}?{q}"),
            None => clean,
        };
        let resp = HttpResponse::MovedPermanently()
            .insert_header((LOCATION, location))
            .finish();
        return Ok(req.into_response(resp).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::cleaned;

    #[test]
    fn paths_clean_as_dockerd_cleans_them() {
        assert_eq!(cleaned("/v1.41/images/json"), None);
        assert_eq!(cleaned("/"), None);
        assert_eq!(
            cleaned("/v1.41/images/gensokyo.jp//kirisame/json").as_deref(),
            Some("/v1.41/images/gensokyo.jp/kirisame/json")
        );
        assert_eq!(cleaned("/a/./b//c/").as_deref(), Some("/a/b/c/"));
        assert_eq!(cleaned("/images/../../info/json"), None);
        assert_eq!(cleaned("/a/b/"), None);
    }
}
