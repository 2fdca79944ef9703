//! Latency histograms (hdrhistogram) shared by every scenario.

use std::time::Duration;

use hdrhistogram::Histogram;

pub fn hist() -> Histogram<u64> {
    // Microseconds, 1 µs to 10 min, 3 significant digits. The bounds are valid constants.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// Record `d` (clamped into the histogram's range).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

pub fn ms_of(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

pub fn at(h: &Histogram<u64>, q: f64) -> Duration {
    if h.is_empty() {
        Duration::ZERO
    } else {
        Duration::from_micros(h.value_at_quantile(q))
    }
}
