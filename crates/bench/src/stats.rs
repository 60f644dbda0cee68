//! Percentiles of latency samples (nearest rank: p99 of 2000 samples is the 1980th smallest, a
//! value that was actually observed).

use std::time::Duration;

/// A latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Summary {
    pub fn of_durations(samples: &[Duration]) -> Summary {
        let micros: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        Summary::of_micros(micros)
    }

    pub fn of_micros(mut micros: Vec<f64>) -> Summary {
        if micros.is_empty() {
            return Summary::default();
        }
        micros.sort_by(f64::total_cmp);
        let mean = micros.iter().sum::<f64>() / micros.len() as f64;
        Summary {
            count: micros.len(),
            p50_us: percentile(&micros, 50.0),
            p90_us: percentile(&micros, 90.0),
            p99_us: percentile(&micros, 99.0),
            max_us: micros[micros.len() - 1],
            mean_us: mean,
        }
    }
}

/// Nearest-rank percentile of sorted, non-empty `sorted`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = Summary::of_micros((1..=100).map(f64::from).collect());
        assert_eq!((s.p50_us, s.p90_us, s.p99_us, s.max_us), (50.0, 90.0, 99.0, 100.0));
        let one = Summary::of_micros(vec![7.0]);
        assert_eq!((one.p50_us, one.p99_us, one.count), (7.0, 7.0, 1));
        assert_eq!(Summary::of_micros(Vec::new()).count, 0);
    }
}
