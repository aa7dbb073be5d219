//! The write-ahead table's record: one accepted batch.
//!
//! ```text
//! uvarint  sample count
//! uvarint  zigzag(base timestamp)        (the first sample's)
//! per sample:
//!   uvarint  series id
//!   uvarint  zigzag(t − base)             (wrapping)
//!   8 bytes  value bits, little endian
//! ```
//!
//! A scrape's samples share one timestamp, so a sample costs ~11 bytes.

use crate::TsdbError;
use crate::bits::{get_uvarint, put_uvarint, unzigzag, zigzag};

/// Builds one record; reused across batches.
#[derive(Default)]
pub(crate) struct WalRecord {
    body: Vec<u8>,
    count: u64,
    base: i64,
    out: Vec<u8>,
}

impl WalRecord {
    pub(crate) fn clear(&mut self) {
        self.body.clear();
        self.count = 0;
    }

    pub(crate) fn reserve(&mut self, samples: usize) {
        self.body.reserve(samples * 12);
    }

    #[inline]
    pub(crate) fn push(&mut self, series: u64, t: i64, v: f64) {
        if self.count == 0 {
            self.base = t;
        }
        self.count += 1;
        put_uvarint(&mut self.body, series);
        put_uvarint(&mut self.body, zigzag(t.wrapping_sub(self.base)));
        self.body.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished record.
    pub(crate) fn bytes(&mut self) -> &[u8] {
        self.out.clear();
        put_uvarint(&mut self.out, self.count);
        put_uvarint(&mut self.out, zigzag(self.base));
        self.out.extend_from_slice(&self.body);
        &self.out
    }
}

/// Calls `f(series, t, v)` for each sample of a stored record.
pub(crate) fn for_each(bytes: &[u8], mut f: impl FnMut(u64, i64, f64)) -> Result<(), TsdbError> {
    let corrupt = || TsdbError::Corrupt("write-ahead record is unreadable".into());
    let mut pos = 0;
    let count = get_uvarint(bytes, &mut pos).ok_or_else(corrupt)?;
    let base = unzigzag(get_uvarint(bytes, &mut pos).ok_or_else(corrupt)?);
    for _ in 0..count {
        let series = get_uvarint(bytes, &mut pos).ok_or_else(corrupt)?;
        let t = base.wrapping_add(unzigzag(get_uvarint(bytes, &mut pos).ok_or_else(corrupt)?));
        let raw = bytes.get(pos..pos + 8).ok_or_else(corrupt)?;
        pos += 8;
        f(
            series,
            t,
            f64::from_bits(u64::from_le_bytes(raw.try_into().unwrap())),
        );
    }
    if pos != bytes.len() {
        return Err(corrupt());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_extreme_values() {
        let mut rec = WalRecord::default();
        let input = [
            (1u64, 1000i64, 1.5f64),
            (u64::MAX, i64::MIN, f64::NAN),
            (0, i64::MAX, -0.0),
        ];
        for (s, t, v) in input {
            rec.push(s, t, v);
        }
        let bytes = rec.bytes().to_vec();
        let mut got = Vec::new();
        for_each(&bytes, |s, t, v| got.push((s, t, v.to_bits()))).unwrap();
        let want: Vec<_> = input.iter().map(|&(s, t, v)| (s, t, v.to_bits())).collect();
        assert_eq!(got, want);
        assert!(for_each(&bytes[..bytes.len() - 1], |_, _, _| {}).is_err());
    }
}
