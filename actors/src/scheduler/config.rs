//! The scheduler's start-up configuration: strategy, enabled filters, overcommit.
//! Parsed once from `--strategy`, `--filter` and `--cluster-opt swarm.overcommit`.

use std::fmt;
use std::str::FromStr;

use super::error::SchedulerConfigError;

/// How to choose among the nodes that pass the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Lowest weight: spread containers over the nodes.
    #[default]
    Spread,
    /// Highest weight: fill a node before the next.
    Binpack,
    /// Uniform among the nodes that fit.
    Random,
}

impl FromStr for Strategy {
    type Err = SchedulerConfigError;
    fn from_str(s: &str) -> Result<Self, SchedulerConfigError> {
        match s {
            "spread" => Ok(Strategy::Spread),
            "binpack" => Ok(Strategy::Binpack),
            "random" => Ok(Strategy::Random),
            other => Err(SchedulerConfigError::UnknownStrategy(other.into())),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Spread => "spread",
            Strategy::Binpack => "binpack",
            Strategy::Random => "random",
        })
    }
}

/// The switchable filters, declared in classic Swarm's order (the order they run in,
/// whatever order the configuration lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FilterKind {
    Health,
    Port,
    ContainerSlots,
    Dependency,
    Affinity,
    Constraint,
    Whitelist,
}

impl FilterKind {
    pub const ALL: [FilterKind; 7] = [
        FilterKind::Health,
        FilterKind::Port,
        FilterKind::ContainerSlots,
        FilterKind::Dependency,
        FilterKind::Affinity,
        FilterKind::Constraint,
        FilterKind::Whitelist,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FilterKind::Health => "health",
            FilterKind::Port => "port",
            FilterKind::ContainerSlots => "containerslots",
            FilterKind::Dependency => "dependency",
            FilterKind::Affinity => "affinity",
            FilterKind::Constraint => "constraint",
            FilterKind::Whitelist => "whitelist",
        }
    }
}

impl FromStr for FilterKind {
    type Err = SchedulerConfigError;
    fn from_str(s: &str) -> Result<Self, SchedulerConfigError> {
        FilterKind::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| SchedulerConfigError::UnknownFilter(s.into()))
    }
}

impl fmt::Display for FilterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The scheduler's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    pub strategy: Strategy,
    /// Enabled filters, kept in classic order.
    filters: Vec<FilterKind>,
    /// Raises each node's CPU and memory totals by this ratio (classic default 0.05).
    pub overcommit: f64,
    /// Seed for the random strategy (tests); `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::Spread,
            filters: FilterKind::ALL.to_vec(),
            overcommit: 0.05,
            seed: None,
        }
    }
}

impl SchedulerConfig {
    /// Builds a configuration from its start-up strings; an empty filter list means all.
    pub fn parse(
        strategy: &str,
        filters: &[&str],
        overcommit: f64,
    ) -> Result<Self, SchedulerConfigError> {
        let strategy = strategy.parse()?;
        let mut fs = if filters.is_empty() {
            FilterKind::ALL.to_vec()
        } else {
            filters
                .iter()
                .map(|f| f.parse())
                .collect::<Result<Vec<FilterKind>, _>>()?
        };
        fs.sort();
        fs.dedup();
        if !overcommit.is_finite() || overcommit <= -1.0 {
            return Err(SchedulerConfigError::BadOvercommit(overcommit));
        }
        Ok(Self {
            strategy,
            filters: fs,
            overcommit,
            seed: None,
        })
    }

    #[must_use]
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Only these filters (classic order is kept).
    #[must_use]
    pub fn with_filters(mut self, filters: &[FilterKind]) -> Self {
        self.filters = filters.to_vec();
        self.filters.sort();
        self.filters.dedup();
        self
    }

    #[must_use]
    pub fn with_overcommit(mut self, ratio: f64) -> Self {
        self.overcommit = ratio;
        self
    }

    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The enabled filters, in the order they run.
    pub fn filters(&self) -> &[FilterKind] {
        &self.filters
    }

    pub fn enabled(&self, f: FilterKind) -> bool {
        self.filters.contains(&f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config() {
        let c = SchedulerConfig::parse("binpack", &["whitelist", "health"], 0.05).unwrap();
        assert_eq!(c.strategy, Strategy::Binpack);
        assert_eq!(c.filters(), &[FilterKind::Health, FilterKind::Whitelist]);
        assert_eq!(
            SchedulerConfig::parse("spread", &[], 0.0)
                .unwrap()
                .filters()
                .len(),
            7
        );
        assert_eq!(
            SchedulerConfig::parse("fastest", &[], 0.0),
            Err(SchedulerConfigError::UnknownStrategy("fastest".into()))
        );
        assert_eq!(
            SchedulerConfig::parse("spread", &["health", "nope"], 0.0),
            Err(SchedulerConfigError::UnknownFilter("nope".into()))
        );
        assert!(SchedulerConfig::parse("spread", &[], f64::NAN).is_err());
    }
}
