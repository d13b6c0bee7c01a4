//! The memory a node's workers may hold at once. Before a job runs its worker reserves the
//! pipeline's estimated peak ([`lucid_imaging::pipeline::peak_memory`]) and waits while other
//! jobs hold too much of the budget: concurrent large jobs take turns instead of exhausting
//! the machine (after which the OOM killer takes the whole server, and the job's next attempt
//! crashes it again). A job that could never fit is refused at submit.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reservations are counted in MiB: a semaphore's permits, and the waits are first come, first
/// served, so a large job is not starved by small ones that keep fitting.
const UNIT: u64 = 1 << 20;

#[derive(Clone)]
pub struct MemoryBudget {
    units: u32,
    free: Arc<Semaphore>,
}

/// Held while a job runs; dropping it gives the memory back.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let units = (bytes / UNIT).clamp(1, u32::MAX as u64) as u32;
        MemoryBudget {
            units,
            free: Arc::new(Semaphore::new(units as usize)),
        }
    }

    pub fn total(&self) -> u64 {
        self.units as u64 * UNIT
    }

    /// Bytes reserved by the jobs running now.
    pub fn reserved(&self) -> u64 {
        (self.units as u64 - self.free.available_permits() as u64) * UNIT
    }

    /// Whether a job needing `bytes` can ever run here.
    pub fn fits(&self, bytes: u64) -> bool {
        units(bytes) <= self.units
    }

    /// Waits until `bytes` are free and reserves them. `bytes` must [`fit`](Self::fits).
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let permit = self
            .free
            .clone()
            .acquire_many_owned(units(bytes).min(self.units))
            .await
            .expect("the budget's semaphore is never closed");
        Reservation { _permit: permit }
    }
}

fn units(bytes: u64) -> u32 {
    bytes.div_ceil(UNIT).clamp(1, u32::MAX as u64) as u32
}

/// The default budget: three quarters of the memory this process may use (the cgroup's
/// limit in a container, else the machine's), leaving room for the server itself, the
/// inputs and outputs in flight and the page cache.
pub fn default_budget() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| {
        std::fs::read_to_string(path)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    });
    let available = match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c),
        (m, c) => m.or(c).unwrap_or(8 << 30),
    };
    available / 4 * 3
}

/// "1.5 GB": sizes in messages.
pub fn gigabytes(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_large_reservation_waits_its_turn_and_is_not_overtaken() {
        let budget = MemoryBudget::new(100 * UNIT);
        let first = budget.reserve(60 * UNIT).await;
        assert_eq!(budget.reserved(), 60 * UNIT);
        let large = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(80 * UNIT).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!large.is_finished(), "80 MiB do not fit beside 60 of 100");
        // A small one that would fit now waits behind the large one.
        let small = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(10 * UNIT).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!small.is_finished(), "the small one overtook the large one");
        drop(first);
        let large = large.await.unwrap();
        let small = small.await.unwrap();
        assert_eq!(budget.reserved(), 90 * UNIT);
        drop((large, small));
        assert_eq!(budget.reserved(), 0);
        assert!(budget.fits(100 * UNIT) && !budget.fits(100 * UNIT + 1));
    }
}
