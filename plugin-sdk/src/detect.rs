//! Detector plugins: the [`Detector`] trait's types and a compact encoding
//! for the state a detector saves.
//!
//! The host keeps no detector alive between batches (see `wit/plugin.wit`,
//! interface `detection`): every batch is `restore` → `observe` → `save`.
//! [`StateWriter`] and [`StateReader`] write that state as little-endian
//! numbers behind a version byte: a few kilobytes round-trip in
//! microseconds, which JSON would not.

use crate::PluginError;

/// One point of the series, in time order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A detector's judgement of one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// How unusual the point is; larger is more anomalous. NaN while the
    /// detector is still learning.
    pub score: f64,
    /// Whether the point is anomalous at the configured sensitivity.
    pub anomalous: bool,
}

impl Verdict {
    /// A verdict for a point seen while the detector is still learning.
    pub const LEARNING: Verdict = Verdict {
        score: f64::NAN,
        anomalous: false,
    };

    /// `score`, anomalous when it reaches `threshold`.
    pub fn scored(score: f64, threshold: f64) -> Verdict {
        Verdict {
            score,
            anomalous: score >= threshold,
        }
    }
}

/// What a forecasting detector expects of the series' future.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    /// The predicted value at the horizon.
    pub value: f64,
    /// Seconds from the last observed point until the predicted path first
    /// reaches the threshold; `None` when it does not within the horizon.
    pub seconds_to_threshold: Option<f64>,
}

/// Checks a detector's sensitivity: the score from which a point is
/// anomalous must be a positive number.
pub fn check_threshold(threshold: f64) -> Result<(), PluginError> {
    if threshold.is_finite() && threshold > 0.0 {
        Ok(())
    } else {
        Err(PluginError::config(format!(
            "`threshold` must be a positive number, not {threshold}"
        )))
    }
}

/// Checks a sliding window of `window` points (2..=`max`) and the points
/// seen before the first score (2..=`window`).
pub fn check_window(window: usize, min_points: usize, max: usize) -> Result<(), PluginError> {
    if !(2..=max).contains(&window) {
        return Err(PluginError::config(format!(
            "`window` must be 2 to {max} points, not {window}"
        )));
    }
    if !(2..=window).contains(&min_points) {
        return Err(PluginError::config(format!(
            "`min_points` must be 2 to `window` ({window}), not {min_points}"
        )));
    }
    Ok(())
}

/// Writes a detector's state: a format version byte, then numbers.
pub struct StateWriter {
    bytes: Vec<u8>,
}

impl StateWriter {
    /// Starts state of format `version` (bump it when the layout changes,
    /// so an old state is refused instead of misread).
    pub fn new(version: u8) -> StateWriter {
        StateWriter {
            bytes: vec![version],
        }
    }

    pub fn f64(&mut self, value: f64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.bytes.push(u8::from(value));
        self
    }

    /// A length-prefixed run of numbers.
    pub fn f64s(&mut self, values: impl ExactSizeIterator<Item = f64>) -> &mut Self {
        self.u64(values.len() as u64);
        // One reservation: a detector's window is thousands of values.
        self.bytes.reserve(values.len() * 8);
        for value in values {
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads what a [`StateWriter`] wrote; every read past the end or of
/// another version is a [`PluginError::Permanent`] naming what was wrong.
pub struct StateReader<'a> {
    bytes: &'a [u8],
}

impl<'a> StateReader<'a> {
    /// Checks the version byte.
    pub fn new(bytes: &'a [u8], version: u8) -> Result<StateReader<'a>, PluginError> {
        match bytes.split_first() {
            Some((&found, rest)) if found == version => Ok(StateReader { bytes: rest }),
            Some((&found, _)) => Err(PluginError::permanent(format!(
                "saved state has format {found}, this plugin reads format {version}"
            ))),
            None => Err(PluginError::permanent("saved state is empty")),
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], PluginError> {
        if self.bytes.len() < N {
            return Err(PluginError::permanent("saved state ends early"));
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        Ok(head.try_into().expect("split at N"))
    }

    pub fn f64(&mut self) -> Result<f64, PluginError> {
        self.take::<8>().map(f64::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, PluginError> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    pub fn i64(&mut self) -> Result<i64, PluginError> {
        self.take::<8>().map(i64::from_le_bytes)
    }

    pub fn bool(&mut self) -> Result<bool, PluginError> {
        self.take::<1>().map(|[b]| b != 0)
    }

    /// A length-prefixed run of numbers, at most `max` of them.
    pub fn f64s(&mut self, max: usize) -> Result<Vec<f64>, PluginError> {
        let len = self.u64()?;
        if len > max as u64 {
            return Err(PluginError::permanent(format!(
                "saved state holds {len} values where at most {max} fit"
            )));
        }
        if len > (self.bytes.len() / 8) as u64 {
            return Err(PluginError::permanent("saved state ends early"));
        }
        // Checked once above, converted in bulk.
        let (head, rest) = self.bytes.split_at(len as usize * 8);
        self.bytes = rest;
        Ok(head
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")))
            .collect())
    }

    /// Checks that nothing is left over.
    pub fn finish(self) -> Result<(), PluginError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(PluginError::permanent(format!(
                "saved state has {} bytes too many",
                self.bytes.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_refuses_other_versions_and_truncation() {
        let mut w = StateWriter::new(3);
        w.f64(1.5)
            .u64(7)
            .i64(-2)
            .bool(true)
            .f64s([1.0, 2.0].into_iter());
        let bytes = w.finish();
        let mut r = StateReader::new(&bytes, 3).unwrap();
        assert_eq!(r.f64().unwrap(), 1.5);
        assert_eq!(r.u64().unwrap(), 7);
        assert_eq!(r.i64().unwrap(), -2);
        assert!(r.bool().unwrap());
        assert_eq!(r.f64s(10).unwrap(), vec![1.0, 2.0]);
        r.finish().unwrap();

        assert!(StateReader::new(&bytes, 4).is_err());
        let mut r = StateReader::new(&bytes[..bytes.len() - 3], 3).unwrap();
        r.f64().unwrap();
        r.u64().unwrap();
        r.i64().unwrap();
        r.bool().unwrap();
        assert!(r.f64s(10).is_err());
        let mut r = StateReader::new(&bytes, 3).unwrap();
        for _ in 0..4 {
            let _ = r.u64();
        }
        assert!(StateReader::new(&bytes, 3).unwrap().finish().is_err());
    }
}
