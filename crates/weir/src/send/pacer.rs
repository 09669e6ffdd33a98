//! `--rate`: every record gets a due time on one schedule shared by all connections, `start + n / rate`
//! for the n-th record. Due times are absolute, so timer granularity (about 1 ms) and late wake-ups
//! do not accumulate into a lower rate: a late batch is sent at once and the schedule stays put.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Pacer {
    start: Instant,
    records_per_second: f64,
    scheduled: AtomicU64,
}

impl Pacer {
    pub fn new(start: Instant, records_per_second: f64) -> Pacer {
        Pacer {
            start,
            records_per_second,
            scheduled: AtomicU64::new(0),
        }
    }

    /// When a batch of `records` may be sent: the due time of its first record.
    pub fn schedule(&self, records: u32) -> Instant {
        let before = self.scheduled.fetch_add(u64::from(records), Ordering::Relaxed);
        self.start + Duration::from_secs_f64(before as f64 / self.records_per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spaces_records_evenly() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 400.0);
        assert_eq!(pacer.schedule(10), start);
        assert_eq!(pacer.schedule(10) - start, Duration::from_millis(25));
        assert_eq!(pacer.schedule(1) - start, Duration::from_millis(50));
    }
}
