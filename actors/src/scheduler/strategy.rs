//! The strategies: weigh the candidate nodes and pick one. Classic Swarm's weight: CPU
//! score + memory score, each (reserved + requested) * 100 / total (totals raised by the
//! overcommit ratio); a node that would go over its total on either is out. Plus a
//! health term: a node that is not healthy (reachable only with the health filter off)
//! always loses. Spread takes the lowest weight, then fewer containers; binpack the
//! highest, then more containers; both then the lowest node name: deterministic.
//! Random picks uniformly among the nodes that fit.

use rand::rngs::StdRng;
use rand::Rng;

use super::config::Strategy;
use super::nodeset::NodeSet;
use super::state::Nums;

/// Weight added (spread) or taken (binpack) for a node that is not healthy.
const UNHEALTHY_PENALTY: i64 = 1_000;

/// `(used + requested) * 100 / total` in whole percent, or `None` if it does not fit.
/// `k` is the node's precomputed `100 / total`: a multiply, not a division, per node
/// (divisions were most of a decision's time at 1,000 nodes). The fit test is exact,
/// in integers; the small epsilon keeps exact percentages (50.0) from flooring to 49.
fn score(used: u64, requested: u64, total: u64, k: f64) -> Option<i64> {
    let need = used.saturating_add(requested);
    if need == 0 {
        return Some(0);
    }
    if need > total {
        return None;
    }
    Some((need as f64 * k + 1e-9) as i64)
}

/// The node's weight for this request, or `None` if it does not fit.
pub(crate) fn weight(n: &Nums, cpu: u64, mem: u64) -> Option<i64> {
    Some(
        score(n.used_cpu, cpu, n.total_cpu, n.cpu_k)?
            + score(n.used_mem, mem, n.total_mem, n.mem_k)?,
    )
}

/// Picks a slot among `cand`, or `None` when no candidate has the resources.
pub(crate) fn pick(
    strategy: Strategy,
    nums: &[Nums],
    cand: &NodeSet,
    cpu: u64,
    mem: u64,
    rng: &mut StdRng,
) -> Option<u32> {
    match strategy {
        Strategy::Random => {
            // Reservoir sampling: uniform, one pass, no allocation.
            let mut chosen = None;
            let mut seen = 0u32;
            for s in cand.iter() {
                if weight(&nums[s as usize], cpu, mem).is_some() {
                    seen += 1;
                    if rng.gen_range(0..seen) == 0 {
                        chosen = Some(s);
                    }
                }
            }
            chosen
        }
        Strategy::Spread | Strategy::Binpack => {
            let sign = if strategy == Strategy::Spread { 1 } else { -1 };
            let mut best: Option<((i64, i64, u32), u32)> = None;
            for s in cand.iter() {
                let n = &nums[s as usize];
                let Some(w) = weight(n, cpu, mem) else {
                    continue;
                };
                let w = w + if n.healthy {
                    0
                } else {
                    UNHEALTHY_PENALTY * sign
                };
                // Smallest key wins.
                let key = (sign * w, sign * i64::from(n.containers), n.rank);
                if best.is_none_or(|(b, _)| key < b) {
                    best = Some((key, s));
                }
            }
            best.map(|(_, s)| s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nums(total_cpu: u64, used_cpu: u64, containers: u32, rank: u32) -> Nums {
        Nums {
            total_cpu,
            total_mem: 100,
            cpu_k: 100.0 / total_cpu as f64,
            mem_k: 1.0,
            used_cpu,
            used_mem: 0,
            containers,
            rank,
            healthy: true,
        }
    }

    #[test]
    fn scores() {
        let k = |t: u64| 100.0 / t as f64;
        assert_eq!(score(0, 0, 0, 0.0), Some(0));
        assert_eq!(score(0, 1, 0, 0.0), None);
        assert_eq!(score(50, 50, 100, k(100)), Some(100));
        assert_eq!(score(50, 51, 100, k(100)), None);
        // Over by less than a percent is still over.
        assert_eq!(score(1000, 1, 1000, k(1000)), None);
        assert_eq!(score(1, 0, 3, k(3)), Some(33));
        assert_eq!(score(7 << 30, 0, 14 << 30, k(14 << 30)), Some(50));
        for t in 1..2000u64 {
            for need in (0..=t).step_by(7) {
                assert_eq!(
                    score(need, 0, t, k(t)),
                    Some((need * 100 / t) as i64),
                    "{need}/{t}"
                );
            }
        }
    }

    #[test]
    fn table() {
        // (nodes, strategy, cpu requested, expected winner)
        let cases: Vec<(Vec<Nums>, Strategy, u64, Option<u32>)> = vec![
            // spread: least loaded
            (
                vec![nums(100, 50, 1, 0), nums(100, 10, 5, 1)],
                Strategy::Spread,
                10,
                Some(1),
            ),
            // binpack: most loaded that still fits
            (
                vec![nums(100, 50, 1, 0), nums(100, 10, 5, 1)],
                Strategy::Binpack,
                10,
                Some(0),
            ),
            (
                vec![nums(100, 95, 1, 0), nums(100, 10, 5, 1)],
                Strategy::Binpack,
                10,
                Some(1),
            ),
            // ties: spread fewer containers, binpack more
            (
                vec![nums(100, 0, 3, 0), nums(100, 0, 2, 1)],
                Strategy::Spread,
                0,
                Some(1),
            ),
            (
                vec![nums(100, 0, 3, 0), nums(100, 0, 2, 1)],
                Strategy::Binpack,
                0,
                Some(0),
            ),
            // full tie: lowest name rank, both strategies
            (
                vec![nums(100, 0, 2, 1), nums(100, 0, 2, 0)],
                Strategy::Spread,
                0,
                Some(1),
            ),
            (
                vec![nums(100, 0, 2, 1), nums(100, 0, 2, 0)],
                Strategy::Binpack,
                0,
                Some(1),
            ),
            // nothing fits
            (vec![nums(100, 95, 1, 0)], Strategy::Spread, 10, None),
            (vec![nums(100, 95, 1, 0)], Strategy::Random, 10, None),
        ];
        let mut rng = StdRng::seed_from_u64(1);
        for (i, (ns, strat, cpu, want)) in cases.into_iter().enumerate() {
            let mut cand = NodeSet::default();
            (0..ns.len() as u32).for_each(|s| cand.insert(s));
            assert_eq!(pick(strat, &ns, &cand, cpu, 0, &mut rng), want, "case {i}");
        }
    }

    #[test]
    fn unhealthy_always_loses() {
        let mut sick = nums(100, 0, 0, 0);
        sick.healthy = false;
        let ns = vec![sick, nums(100, 90, 9, 1)];
        let mut cand = NodeSet::default();
        cand.insert(0);
        cand.insert(1);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(pick(Strategy::Spread, &ns, &cand, 0, 0, &mut rng), Some(1));
        let ns = vec![nums(100, 0, 0, 0), {
            let mut s = nums(100, 90, 9, 1);
            s.healthy = false;
            s
        }];
        assert_eq!(pick(Strategy::Binpack, &ns, &cand, 0, 0, &mut rng), Some(0));
    }

    #[test]
    fn random_is_uniform_among_fit() {
        let ns = vec![nums(100, 0, 0, 0), nums(100, 100, 0, 1), nums(100, 0, 0, 2)];
        let mut cand = NodeSet::default();
        (0..3).for_each(|s| cand.insert(s));
        let mut rng = StdRng::seed_from_u64(7);
        let mut hits = [0u32; 3];
        for _ in 0..3000 {
            hits[pick(Strategy::Random, &ns, &cand, 1, 0, &mut rng).unwrap() as usize] += 1;
        }
        assert_eq!(hits[1], 0);
        assert!(hits[0] > 1300 && hits[2] > 1300, "{hits:?}");
    }
}
