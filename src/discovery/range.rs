//! Address ranges as classic Swarm wrote them: `10.0.0.[10:20]:2375` is eleven addresses.

use super::DiscoveryError;

/// Largest number of addresses one range may expand to; a typo must not allocate millions.
const MAX_EXPANSION: u64 = 100_000;

/// Expands the first `[a:b]` of `pattern` (the rest of it is kept as written).
pub fn expand_ranges(pattern: &str) -> Result<Vec<String>, DiscoveryError> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let bad = || DiscoveryError::Range(pattern.to_string());
    let close = pattern[open..]
        .find(']')
        .map(|c| open + c)
        .ok_or_else(bad)?;
    let (a, b) = pattern[open + 1..close].split_once(':').ok_or_else(bad)?;
    let (first, last): (u64, u64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if first > last || last - first >= MAX_EXPANSION {
        return Err(bad());
    }
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    Ok((first..=last).map(|i| format!("{head}{i}{tail}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_inclusive() {
        assert_eq!(
            expand_ranges("a[1:3]:9").unwrap(),
            vec!["a1:9", "a2:9", "a3:9"]
        );
        assert_eq!(expand_ranges("h:1").unwrap(), vec!["h:1"]);
        assert_eq!(expand_ranges("h[5:5]:1").unwrap(), vec!["h5:1"]);
    }

    #[test]
    fn refuses_broken_ranges() {
        for bad in [
            "h[1:3:1",
            "h[x:3]:1",
            "h[3:1]:1",
            "h[1]:1",
            "h[0:999999999]:1",
        ] {
            assert!(expand_ranges(bad).is_err(), "{bad} accepted");
        }
    }
}
