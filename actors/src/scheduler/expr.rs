//! Placement expressions, classic Swarm syntax: `key==value`, `key!=value`, soft
//! `key==~value` / `key!=~value`; a value is an exact string, a glob with `*`, or a
//! `/regex/`. Matching is case-insensitive, as in classic Swarm. Parsed once, when the
//! request is read, so a decision never compiles a regex.

use std::fmt;

use regex::Regex;
use std::collections::HashMap;

/// Where an expression came from; it decides the prefix in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprKind {
    Constraint,
    Affinity,
    Whitelist,
}

impl ExprKind {
    pub fn prefix(self) -> &'static str {
        match self {
            ExprKind::Constraint => "constraint",
            ExprKind::Affinity => "affinity",
            ExprKind::Whitelist => "whitelist",
        }
    }
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
}

/// A malformed expression; the front answers 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid expression \"{expr}\": {reason}")]
pub struct ExprError {
    /// The expression as the user wrote it, with its prefix (`constraint:==x`).
    pub expr: String,
    pub reason: String,
}

/// How a value matches.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Exact, case-insensitive; stored lowercased so it is an index key.
    Exact(String),
    /// A glob (anchored) or a `/regex/` (unanchored), compiled case-insensitive.
    Pattern(Regex),
    /// Alternatives `a|b` (whitelist only).
    AnyOf(Vec<Matcher>),
}

impl Matcher {
    fn parse(value: &str, alternatives: bool) -> Result<Self, String> {
        if alternatives && value.contains('|') {
            let alts = value
                .split('|')
                .map(|v| Self::parse(v, false))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Matcher::AnyOf(alts));
        }
        if value.is_empty() {
            return Err("missing value".into());
        }
        if value.len() >= 2 && value.starts_with('/') && value.ends_with('/') {
            let body = &value[1..value.len() - 1];
            return compiled(&format!("(?i){body}"))
                .map(Matcher::Pattern)
                .map_err(|e| format!("bad regular expression: {e}"));
        }
        if value.contains('*') {
            let parts: Vec<String> = value.split('*').map(regex::escape).collect();
            let re = format!("(?i)^{}$", parts.join(".*"));
            return compiled(&re)
                .map(Matcher::Pattern)
                .map_err(|e| format!("bad glob: {e}"));
        }
        Ok(Matcher::Exact(value.to_lowercase()))
    }

    /// Does `what` match?
    pub fn matches(&self, what: &str) -> bool {
        match self {
            Matcher::Exact(v) => {
                v.eq_ignore_ascii_case(what) || (!what.is_ascii() && *v == what.to_lowercase())
            }
            Matcher::Pattern(re) => re.is_match(what),
            Matcher::AnyOf(alts) => alts.iter().any(|m| m.matches(what)),
        }
    }

    /// The exact (lowercased) values this matcher accepts, if it is not a pattern:
    /// then a lookup in an index answers it, with no scan.
    pub fn exact_values(&self) -> Option<Vec<&str>> {
        match self {
            Matcher::Exact(v) => Some(vec![v.as_str()]),
            Matcher::Pattern(_) => None,
            Matcher::AnyOf(alts) => {
                let mut out = Vec::with_capacity(alts.len());
                for a in alts {
                    out.extend(a.exact_values()?);
                }
                Some(out)
            }
        }
    }
}

/// One parsed placement expression.
#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub key: String,
    pub op: Op,
    /// `==~` / `!=~`: enforced only when some node can meet it.
    pub soft: bool,
    pub matcher: Matcher,
    /// As written, without the kind prefix (`storage==ssd`): what the labels record.
    pub raw: String,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.raw == other.raw
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.raw)
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

impl Expr {
    /// Parses `raw` (without its `constraint:` / `affinity:` / `whitelist:` prefix).
    pub fn parse(kind: ExprKind, raw: &str) -> Result<Self, ExprError> {
        let err = |reason: String| ExprError {
            expr: format!("{}:{raw}", kind.prefix()),
            reason,
        };
        let raw_t = raw.trim();
        let key_end = raw_t.find(|c| !is_key_char(c)).unwrap_or(raw_t.len());
        let key = &raw_t[..key_end];
        let rest = &raw_t[key_end..];
        let op_end = rest
            .find(|c| !matches!(c, '=' | '!' | '<' | '>' | '~'))
            .unwrap_or(rest.len());
        let (op_str, value) = rest.split_at(op_end);
        let (op, soft) = match op_str {
            "==" => (Op::Eq, false),
            "!=" => (Op::Ne, false),
            "==~" => (Op::Eq, true),
            "!=~" => (Op::Ne, true),
            "" if rest.is_empty() => return Err(err("missing operator".into())),
            "" => {
                return Err(err(format!(
                    "bad character {:?} in key",
                    rest.chars().next().unwrap_or(' ')
                )))
            }
            other => return Err(err(format!("unknown operator \"{other}\""))),
        };
        if key.is_empty() {
            return Err(err("missing key".into()));
        }
        if !key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return Err(err("key must start with a letter or '_'".into()));
        }
        if kind == ExprKind::Whitelist && key != "node" {
            return Err(err("whitelist key must be \"node\"".into()));
        }
        let matcher = Matcher::parse(value, kind == ExprKind::Whitelist).map_err(err)?;
        Ok(Expr {
            kind,
            key: key.to_owned(),
            op,
            soft,
            matcher,
            raw: raw_t.to_owned(),
        })
    }

    /// True for `==`, whatever the softness.
    pub fn is_eq(&self) -> bool {
        self.op == Op::Eq
    }
}

/// Patterns compiled so far: clients send the same few expressions with every create, and
/// compiling one costs more than placing the container. Bounded: emptied when full.
static COMPILED: std::sync::Mutex<Option<HashMap<String, Regex>>> = std::sync::Mutex::new(None);
const COMPILED_MAX: usize = 1024;

/// `pattern` compiled, from the cache when it was compiled before.
fn compiled(pattern: &str) -> Result<Regex, regex::Error> {
    let mut cache = COMPILED.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(re) = cache.get(pattern) {
        return Ok(re.clone());
    }
    let re = Regex::new(pattern)?;
    if cache.len() >= COMPILED_MAX {
        cache.clear();
    }
    cache.insert(pattern.to_string(), re.clone());
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let cases: &[(&str, &str, Op, bool)] = &[
            ("storage==ssd", "storage", Op::Eq, false),
            ("storage!=ssd", "storage", Op::Ne, false),
            ("storage==~ssd", "storage", Op::Eq, true),
            ("storage!=~ssd", "storage", Op::Ne, true),
            ("com.example.zone==a", "com.example.zone", Op::Eq, false),
            (" node==n1 ", "node", Op::Eq, false),
        ];
        for (raw, key, op, soft) in cases {
            let e = Expr::parse(ExprKind::Constraint, raw).unwrap();
            assert_eq!((&e.key[..], e.op, e.soft), (*key, *op, *soft), "{raw}");
        }
    }

    #[test]
    fn rejects_with_the_expression_named() {
        let cases: &[(&str, &str)] = &[
            ("==x", "missing key"),
            ("storage", "missing operator"),
            ("storage=ssd", "unknown operator \"=\""),
            ("storage>=ssd", "unknown operator \">=\""),
            ("storage~=ssd", "unknown operator \"~=\""),
            ("storage==", "missing value"),
            ("storage==/[a/", "bad regular expression"),
            ("1abc==x", "key must start"),
            ("a b==x", "bad character"),
        ];
        for (raw, reason) in cases {
            let e = Expr::parse(ExprKind::Constraint, raw).unwrap_err();
            assert_eq!(e.expr, format!("constraint:{raw}"));
            assert!(e.reason.contains(reason), "{raw}: {}", e.reason);
            assert!(e
                .to_string()
                .starts_with("invalid expression \"constraint:"));
        }
    }

    #[test]
    fn matchers() {
        let cases: &[(&str, &str, bool)] = &[
            ("ssd", "ssd", true),
            ("ssd", "SSD", true),
            ("ssd", "ssd2", false),
            ("ub*t*", "ubuntu", true),
            ("ub*t*", "debian", false),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "aXexample.com", false),
            ("/^ub.*/", "ubuntu", true),
            ("/bun/", "ubuntu", true),
            ("/^x/", "ubuntu", false),
        ];
        for (value, what, want) in cases {
            let m = Matcher::parse(value, false).unwrap();
            assert_eq!(m.matches(what), *want, "{value} vs {what}");
        }
        let m = Matcher::parse("n1|n2*", true).unwrap();
        assert!(m.matches("n1") && m.matches("n22") && !m.matches("n3"));
        assert!(m.exact_values().is_none());
        let m = Matcher::parse("n1|N2", true).unwrap();
        assert_eq!(m.exact_values().unwrap(), vec!["n1", "n2"]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn kind() -> impl Strategy<Value = ExprKind> {
            prop_oneof![
                Just(ExprKind::Constraint),
                Just(ExprKind::Affinity),
                Just(ExprKind::Whitelist),
            ]
        }

        fn op() -> impl Strategy<Value = (&'static str, Op, bool)> {
            prop_oneof![
                Just(("==", Op::Eq, false)),
                Just(("!=", Op::Ne, false)),
                Just(("==~", Op::Eq, true)),
                Just(("!=~", Op::Ne, true)),
            ]
        }

        proptest! {
            /// Any text, of any kind: an expression or an error, never a panic.
            #[test]
            fn any_text_parses_or_is_refused(kind in kind(), raw in "\\PC{0,40}") {
                let _ = Expr::parse(kind, &raw);
            }

            /// Text shaped like an expression, with odd operators and values.
            #[test]
            fn near_expressions_parse_or_are_refused(
                kind in kind(),
                raw in "[ a-z_.0-9/-]{0,6}[=!<>~]{0,4}[ a-zA-Z0-9*/|()\\[\\]{}+?^$.\\\\-]{0,12}",
            ) {
                let _ = Expr::parse(kind, &raw);
            }

            /// What parses reads the same when parsed again from what it records (the
            /// `raw` kept in labels) and from how it is shown.
            #[test]
            fn parsed_expressions_round_trip(kind in kind(), raw in "[ a-z_.0-9/-]{0,6}[=!~]{0,3}[ a-zA-Z0-9*/|.]{0,8}") {
                if let Ok(e) = Expr::parse(kind, &raw) {
                    let again = Expr::parse(kind, &e.raw).expect("its own raw parses");
                    prop_assert_eq!((&again.key, again.op, again.soft), (&e.key, e.op, e.soft));
                    prop_assert_eq!(&again, &e);
                    let shown = e.to_string();
                    let raw_back = shown.strip_prefix(&format!("{}:", kind.prefix()));
                    prop_assert_eq!(raw_back, Some(e.raw.as_str()));
                }
            }

            /// A well-formed exact or glob expression parses to its key, operator and
            /// softness, and its value matches itself in any ASCII case; a glob matches
            /// whatever its `*` stands for.
            #[test]
            fn well_formed_expressions_match_their_value(
                key in "[a-zA-Z_][a-zA-Z0-9_.-]{0,8}",
                (op_str, op, soft) in op(),
                value in "[a-zA-Z0-9][a-zA-Z0-9._ -]{0,8}[a-zA-Z0-9]",
                glob_at in proptest::option::of(0usize..10),
                filler in "[a-zA-Z0-9]{0,5}",
            ) {
                let value = match glob_at {
                    Some(i) => {
                        let i = i.min(value.len());
                        format!("{}*{}", &value[..i], &value[i..])
                    }
                    None => value,
                };
                let raw = format!("{key}{op_str}{value}");
                let e = Expr::parse(ExprKind::Constraint, &raw).expect("well formed");
                prop_assert_eq!((&e.key[..], e.op, e.soft), (&key[..], op, soft));
                let plain = value.replace('*', &filler);
                prop_assert!(e.matcher.matches(&plain), "{} vs {}", raw, plain);
                prop_assert!(e.matcher.matches(&plain.to_uppercase()));
                prop_assert!(e.matcher.matches(&plain.to_lowercase()));
            }
        }
    }
}
