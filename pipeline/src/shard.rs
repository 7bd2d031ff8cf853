//! `--shard I/N`: a deterministic share of the classes, for Slurm arrays and Kubernetes
//! Indexed Jobs (which set the index and count in the environment).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// From `--shard I/N`, else `SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT` (minus
    /// `SLURM_ARRAY_TASK_MIN`), else Kubernetes' `JOB_COMPLETION_INDEX` with `--shard-count` or
    /// `SALIENT_SHARD_COUNT`; else the whole job.
    pub fn resolve(arg: Option<&str>) -> Result<Shard> {
        if let Some(a) = arg {
            return Self::parse(a);
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str, v: String| -> Result<usize> {
            v.trim().parse().map_err(|_| Error::Usage(format!("${k} is {v:?}, not a number")))
        };
        if let (Some(id), Some(count)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT")) {
            let min = env("SLURM_ARRAY_TASK_MIN").map(|v| num("SLURM_ARRAY_TASK_MIN", v)).transpose()?.unwrap_or(0);
            let id = num("SLURM_ARRAY_TASK_ID", id)?;
            return Self::new(id.saturating_sub(min), num("SLURM_ARRAY_TASK_COUNT", count)?);
        }
        if let Some(id) = env("JOB_COMPLETION_INDEX") {
            let Some(count) = env("SALIENT_SHARD_COUNT") else {
                return Err(Error::Usage(
                    "JOB_COMPLETION_INDEX is set but SALIENT_SHARD_COUNT is not: set it to the Job's completions"
                        .into(),
                ));
            };
            return Self::new(num("JOB_COMPLETION_INDEX", id)?, num("SALIENT_SHARD_COUNT", count)?);
        }
        Ok(Shard::WHOLE)
    }

    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || Error::Usage(format!("--shard {s:?}: expected I/N with 0 ≤ I < N, e.g. 0/4"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        Self::new(i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?)
    }

    fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::Usage(format!("shard {index}/{count}: the index must be below the count")));
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard does the class at `position` in the sorted class list.
    pub fn owns(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_classes() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard::parse(&format!("{i}/3")).unwrap()).collect();
        for pos in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.owns(pos)).count(), 1);
        }
        assert!(Shard::parse("3/3").is_err() && Shard::parse("x").is_err() && Shard::parse("0/0").is_err());
    }
}
