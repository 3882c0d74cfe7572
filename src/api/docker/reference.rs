//! Image references as the engine accepts them in a path (`/images/{name}/...`): the
//! distribution reference grammar, `[domain[:port]/]path[:tag][@digest]`, of which an image
//! ID or ID prefix is a case. Checked at the edge, so a name that is not a reference (`..`,
//! a `?` or `#`, upper case) is refused with the engine's 400 before it is sent anywhere;
//! what passes holds only characters a path may carry and no `.` or `..` segment.
//!
//! No crate on hand parses references without bringing a registry client with it; the
//! grammar is a few lines of regular expression, written from the distribution project's
//! description of it.

use regex::Regex;
use std::sync::LazyLock;
use thiserror::Error;

/// The longest repository name the engine accepts.
const NAME_MAX: usize = 255;

/// Why a string is not an image reference, in the engine's words.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error(
        "invalid reference format: repository name must not be more than {NAME_MAX} characters"
    )]
    TooLong,
}

/// `name[:tag][@digest]`, anchored; group 1 is the name.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let path_component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let host = format!(r"(?:{domain_component}(?:\.{domain_component})*|\[[a-fA-F0-9:]+\])");
    let domain = format!(r"{host}(?::[0-9]+)?");
    let name = format!(r"(?:{domain}/)?{path_component}(?:/{path_component})*");
    let tag = r"[\w][\w.-]{0,127}";
    let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    #[allow(
        clippy::unwrap_used,
        reason = "the grammar is fixed text: it compiles, as the tests show"
    )]
    Regex::new(&format!(r"^({name})(?::{tag})?(?:@{digest})?$")).unwrap()
});

/// Checks that `s` is a reference the engine would accept in an image route.
pub fn check(s: &str) -> Result<(), ReferenceError> {
    match REFERENCE.captures(s) {
        Some(c) if c.get(1).map_or(0, |n| n.as_str().len()) > NAME_MAX => {
            Err(ReferenceError::TooLong)
        }
        Some(_) => Ok(()),
        None if REFERENCE.is_match(&s.to_lowercase()) => Err(ReferenceError::Uppercase),
        None => Err(ReferenceError::Format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_the_engine_accepts() {
        for r in [
            "busybox",
            "busybox:1.36",
            "library/busybox:latest",
            "docker.io/library/busybox",
            "localhost:5000/team/app:v1.2-rc_3",
            "Registry.Example.com/app",
            "[::1]:5000/app",
            "my-app__x/y.z",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:abc",
            "abc123",
        ] {
            assert_eq!(check(r), Ok(()), "{r}");
        }
    }

    #[test]
    fn not_references_are_the_engines_400() {
        for r in [
            "",
            "..",
            "../../info",
            "busybox/../../containers/prune",
            "./busybox",
            "a?b",
            "a#b",
            "a b",
            "busybox:",
            "x@y",
            "-app",
            "app-",
            "a..b",
            "a/",
            "/a",
            "a//b",
            "busybox:tag?x=1",
            "app%2F..",
        ] {
            assert_eq!(check(r), Err(ReferenceError::Format), "{r:?}");
        }
        assert_eq!(check("Busybox"), Err(ReferenceError::Uppercase));
        assert_eq!(
            check("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name must be lowercase"
        );
        let long = format!("a/{}", "b".repeat(254));
        assert_eq!(check(&long), Err(ReferenceError::TooLong));
        assert_eq!(check(&format!("a/{}", "b".repeat(253))), Ok(()));
    }
}
