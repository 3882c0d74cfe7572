//! `GET /events`: the EventsHub's merged stream as JSON lines, chunked, one object per
//! event (what `docker events` decodes), each carrying its node.
//!
//! The request is parsed first (`since`, `until`, `filters`), then one `Subscribe` to the
//! hub answers the replay and the live channel. The response ends when `until` is reached;
//! it breaks off (no final chunk, so the client sees an error rather than a clean end) when
//! the hub cut this client off for staying too far behind (the hub module has the policy).
//! A client that hangs up drops the stream, which unsubscribes.
//!
//! Whatever is queued when the stream is polled goes out as one chunk (up to `MAX_BATCH`):
//! a client that fell behind catches up in few large writes rather than one per event.

use crate::api::docker::filters::Filters;
use crate::api::error::ApiError;
use crate::api::state::ApiState;
use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use shoal_actors::events::{
    EventFilter, EventsHub, LiveEvents, Subscribe, SubscriberId, Unsubscribe, EVENT_FILTERS,
};
use shoal_actors::metrics;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    filters: Option<String>,
}

/// A parsed `GET /events`.
#[derive(Debug)]
struct EventsRequest {
    since: Option<i64>,
    until: Option<i64>,
    filter: EventFilter,
}

impl EventsRequest {
    /// `tenant`: a tenant client's stream carries only events of its objects (those whose
    /// attributes hold its label: container events), as a label filter ANDed with its own.
    fn parse(q: &EventsQuery, now: i64, tenant: Option<&str>) -> Result<Self, ApiError> {
        let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
            match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => parse_time(v, now).map(Some).map_err(|reason| {
                    ApiError::BadRequest(format!("invalid value for {name} ({v:?}): {reason}"))
                }),
            }
        };
        let since = time("since", &q.since)?;
        let until = time("until", &q.until)?;
        if let (Some(s), Some(u)) = (since, until) {
            if u < s {
                return Err(ApiError::BadRequest(format!(
                    "`since` time ({}) cannot be after `until` time ({})",
                    show(s),
                    show(u)
                )));
            }
        }
        let mut filters = Filters::parse(q.filters.as_deref(), EVENT_FILTERS)?;
        if let Some(t) = tenant {
            filters
                .0
                .entry("label".into())
                .or_default()
                .push(format!("{}={t}", crate::authz::TENANT_LABEL));
        }
        Ok(EventsRequest {
            since,
            until,
            filter: EventFilter::new(filters.0),
        })
    }
}

fn show(nanos: i64) -> String {
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

pub async fn events(
    state: web::Data<ApiState>,
    query: web::Query<EventsQuery>,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let now = now_nanos();
    let tenant = crate::authz::Grant::tenant_of(&http);
    let req = EventsRequest::parse(&query, now, tenant.as_deref())?;
    // dockerd: an `until` already past answers the replay and ends.
    let follow = req.until.is_none_or(|u| u > now);
    let sub = state
        .hub
        .send(Subscribe {
            filter: req.filter,
            since: req.since,
            until: req.until,
            follow,
        })
        .await?;
    let deadline = req.until.map(|u| {
        tokio::time::Instant::now() + Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
    });
    let backlog = stream::iter(sub.backlog).map(|e| Ok::<Bytes, actix_web::Error>(e.line.clone()));
    let live = sub.live.map(|rx| Live {
        rx,
        deadline,
        _open: metrics::events_subscribed(),
        _guard: Unsubscriber {
            hub: state.hub.clone(),
            id: sub.id,
        },
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(backlog.chain(live_lines(live))))
}

/// Most bytes of queued events written as one chunk.
const MAX_BATCH: usize = 64 * 1024;

/// The live part of one client's stream.
struct Live {
    rx: LiveEvents,
    deadline: Option<tokio::time::Instant>,
    /// Counts the subscription in `shoal_api_event_subscribers` while the stream lives.
    _open: metrics::Open,
    _guard: Unsubscriber,
}

fn live_lines(
    live: Option<Live>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    stream::unfold(live, |live| async move {
        let mut live = live?;
        let next = match live.deadline {
            Some(d) => match tokio::time::timeout_at(d, live.rx.recv()).await {
                Ok(next) => next,
                // `until` reached: a clean end.
                Err(_) => return None,
            },
            None => live.rx.recv().await,
        };
        match next {
            Some(ev) => {
                // Whatever else is already queued goes out in the same chunk: one write per
                // burst instead of one per event, so a busy stream keeps up with its hub.
                let mut batch = bytes::BytesMut::new();
                batch.extend_from_slice(&ev.line);
                while batch.len() < MAX_BATCH {
                    match live.rx.try_recv() {
                        Some(ev) => batch.extend_from_slice(&ev.line),
                        None => break,
                    }
                }
                Some((Ok(batch.freeze()), Some(live)))
            }
            None if live.rx.was_cut() => {
                tracing::info!("events stream cut off by the hub");
                let err = std::io::Error::other(
                    "events subscriber cut off: it stayed too far behind the stream",
                );
                Some((Err(err.into()), None))
            }
            None => {
                // The hub stopped (Shoal is shutting down): the stream breaks off too,
                // since the client did not get everything it asked for.
                tracing::info!("events stream ended: the hub stopped");
                let err = std::io::Error::other("events hub stopped");
                Some((Err(err.into()), None))
            }
        }
    })
}

/// Unsubscribes when the stream is dropped (the client hung up, or the stream ended). If
/// the hub's mailbox is full the hub still finds the closed channel on its own.
struct Unsubscriber {
    hub: Addr<EventsHub>,
    id: SubscriberId,
}

impl Drop for Unsubscriber {
    fn drop(&mut self) {
        if self.hub.try_send(Unsubscribe(self.id)).is_err() {
            tracing::debug!(
                subscriber = self.id.0,
                "hub busy; it will drop the subscriber itself"
            );
        }
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A time as `docker events --since/--until` take it, in unix nanoseconds: unix seconds
/// with an optional fraction (`1700000000.5`, what the CLI sends), a Go duration before
/// `now` (`10m`, `1h30m`, `-5s` is in the future), or RFC 3339 (`2024-05-01T10:00:00Z`,
/// with an offset, a fraction, or without seconds or zone; no zone reads as UTC, and a
/// bare date `2024-05-01` too).
pub fn parse_time(value: &str, now: i64) -> Result<i64, String> {
    if value != "0" {
        if let Some(d) = parse_go_duration(value) {
            return Ok(now.saturating_sub(d));
        }
    }
    if let Some(t) = parse_unix(value) {
        return Ok(t);
    }
    parse_rfc3339(value).ok_or_else(|| {
        "not unix seconds, a duration (10m) or an RFC 3339 time (2006-01-02T15:04:05Z)".into()
    })
}

/// `sec` or `sec.fraction`, as dockerd's `ParseTimestamps`.
fn parse_unix(value: &str) -> Option<i64> {
    let (sec, frac) = match value.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (value, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let neg = sec.starts_with('-');
    if !digits(sec.trim_start_matches('-')) {
        return None;
    }
    let sec: i64 = sec.parse().ok()?;
    let nanos = match frac {
        None => 0,
        Some(f) if digits(f) => {
            // Only nanoseconds count; further digits are cut.
            let f = &f[..f.len().min(9)];
            f.parse::<i64>().ok()? * 10i64.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    let nanos = if neg { -nanos } else { nanos };
    sec.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Go's `time.ParseDuration`: `[-+]` then one or more `<number><unit>`, units `ns`, `us`,
/// `µs`, `ms`, `s`, `m`, `h`, numbers with an optional fraction. Answers nanoseconds.
fn parse_go_duration(value: &str) -> Option<i64> {
    let (neg, mut rest) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let total = total as i64;
    Some(if neg { -total } else { total })
}

/// RFC 3339 and the shorter layouts docker accepts: `2006-01-02`, `2006-01-02T15:04`,
/// `2006-01-02T15:04:05`, each with an optional `.fraction` (after seconds) and `Z` or
/// `±07:00`; a space may stand for the `T`.
fn parse_rfc3339(value: &str) -> Option<i64> {
    let b = value.as_bytes();
    let num = |s: &[u8]| -> Option<i64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let mut rest = &b[10..];
    let (mut hour, mut min, mut sec, mut nanos) = (0, 0, 0, 0);
    if let Some((&sep, r)) = rest.split_first() {
        if sep == b'T' || sep == b't' || sep == b' ' {
            if r.len() < 5 || r[2] != b':' {
                return None;
            }
            hour = num(&r[0..2])?;
            min = num(&r[3..5])?;
            rest = &r[5..];
            if rest.first() == Some(&b':') {
                sec = num(rest.get(1..3)?)?;
                rest = &rest[3..];
                if rest.first() == Some(&b'.') {
                    let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if digits == 0 {
                        return None;
                    }
                    let f = &rest[1..1 + digits.min(9)];
                    nanos = num(f)? * 10i64.pow(9 - f.len() as u32);
                    rest = &rest[1 + digits..];
                }
            }
        }
    }
    let offset = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = num(&[*h1, *h2])?;
            let m = num(&[*m1, *m2])?;
            let o = (h * 60 + m) * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Some(secs * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const NOW: i64 = 1_700_000_000 * S;

    #[test]
    fn unix_seconds_with_and_without_fraction() {
        assert_eq!(parse_time("1700000000", NOW), Ok(1_700_000_000 * S));
        assert_eq!(
            parse_time("1700000000.5", NOW),
            Ok(1_700_000_000 * S + S / 2)
        );
        assert_eq!(
            parse_time("1700000000.000000001", NOW),
            Ok(1_700_000_000 * S + 1)
        );
        assert_eq!(parse_time("0", NOW), Ok(0));
        assert!(parse_time("17000x", NOW).is_err());
        assert!(parse_time("1700000000.", NOW).is_err());
    }

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(parse_time("10m", NOW), Ok(NOW - 600 * S));
        assert_eq!(parse_time("1h30m", NOW), Ok(NOW - 5400 * S));
        assert_eq!(parse_time("1.5s", NOW), Ok(NOW - 3 * S / 2));
        assert_eq!(parse_time("250ms", NOW), Ok(NOW - S / 4));
        assert_eq!(parse_time("-5s", NOW), Ok(NOW + 5 * S));
        assert!(parse_go_duration("10").is_none());
        assert!(parse_go_duration("10d").is_none());
        assert!(parse_go_duration("m").is_none());
        assert!(parse_go_duration("").is_none());
    }

    #[test]
    fn rfc3339_and_shorter_layouts() {
        // 2023-11-14T22:13:20Z is 1_700_000_000.
        assert_eq!(parse_time("2023-11-14T22:13:20Z", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14T22:13:20", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14 22:13:20", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14T21:13:20-01:00", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14T22:13:20.25Z", NOW), Ok(NOW + S / 4));
        assert_eq!(parse_time("2023-11-14T22:13Z", NOW), Ok(NOW - 20 * S));
        assert_eq!(
            parse_time("2023-11-14", NOW),
            Ok(NOW - (22 * 3600 + 13 * 60 + 20) * S)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z", NOW), Ok(0));
        assert_eq!(parse_time("2000-03-01", NOW), Ok(951_868_800 * S));
        for bad in [
            "2023-13-01",
            "2023-11-14T25:00",
            "2023-11-14T22:13:20+0100",
            "yesterday",
        ] {
            assert!(parse_time(bad, NOW).is_err(), "{bad}");
        }
    }

    fn q(since: Option<&str>, until: Option<&str>, filters: Option<&str>) -> EventsQuery {
        EventsQuery {
            since: since.map(str::to_string),
            until: until.map(str::to_string),
            filters: filters.map(str::to_string),
        }
    }

    #[test]
    fn requests_parse_or_are_refused_with_docker_words() {
        let r = EventsRequest::parse(&q(Some("10s"), Some(""), None), NOW, None).unwrap();
        assert_eq!(r.since, Some(NOW - 10 * S));
        assert_eq!(r.until, None);
        assert!(r.filter.is_empty());
        let e = EventsRequest::parse(&q(Some("20"), Some("10"), None), NOW, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`since` time (20.000000000) cannot be after `until` time (10.000000000)"
        );
        let e = EventsRequest::parse(&q(None, None, Some(r#"{"colour":["x"]}"#)), NOW, None)
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'colour'");
        assert!(EventsRequest::parse(&q(Some("soon"), None, None), NOW, None).is_err());
        let ok =
            EventsRequest::parse(&q(None, None, Some(r#"{"node":["n1"]}"#)), NOW, None).unwrap();
        assert!(!ok.filter.is_empty());
        // A tenant's stream is filtered on its label even when it asked for nothing.
        let scoped = EventsRequest::parse(&q(None, None, None), NOW, Some("a")).unwrap();
        assert!(!scoped.filter.is_empty());
        assert!(EventsRequest::parse(&q(None, None, None), NOW, None)
            .unwrap()
            .filter
            .is_empty());
    }
}
