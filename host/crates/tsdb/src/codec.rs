//! The chunk codec: Gorilla-style compression of one series' samples.
//!
//! # Format (version 1)
//!
//! A chunk is stored under the key `(series id, first timestamp)`, so the
//! payload does not repeat the first timestamp; [`decode`] takes it as `mint`.
//!
//! ```text
//! u8       encoding: 1 = XOR floats, 2 = decimal integers
//! uvarint  number of samples (≥ 1)
//! uvarint  last timestamp − first timestamp (wrapping, as u64)
//! bits     timestamps: first delta (7-bit length + zigzag bits), then
//!          delta-of-deltas as a bucket block (below)
//! bits     values, by encoding:
//!          1 XOR: 64 raw bits, then Prometheus' XOR scheme (`0` repeat,
//!            `10` reuse the previous leading/trailing window, `11` + 5-bit
//!            leading zeros + 6-bit length + bits)
//!          2 decimal: every value is exactly `m / 10^e` for integers
//!            `m` (|m| ≤ 2^53) and `e` ≤ 15. 4-bit `e`, 1-bit mode (0 delta,
//!            1 delta-of-delta), first `m` (7-bit length + zigzag bits), for
//!            delta-of-delta the first delta likewise, then a bucket block
//! ```
//!
//! A bucket block stores zigzagged integers: a bit `1` if all are zero
//! (regular timestamps, constant values: nothing more is written), else
//! `0`, three widths chosen per block to minimise its size (7 bits each,
//! `b1 ≤ b2 ≤ b3`), then per value `0` for zero, `10` + b1 bits,
//! `110` + b2 bits or `111` + b3 bits.
//!
//! Why two value encodings: Gorilla's XOR works on the float's bits, and a
//! gauge like `42.17` has a binary mantissa that is noise in its low bits,
//! so XOR spends ~7 bytes on it. Exporters print decimals, so most real
//! values are the doubles nearest to short decimals; as integers `4217`
//! their deltas take a few bits. The decimal encoding is used only when it
//! reproduces every value bit for bit (`(m as f64) / 10^e`, one correctly
//! rounded IEEE division, is deterministic), otherwise XOR is: NaN, the
//! staleness marker, ±Inf and −0.0 always round-trip exactly.
//!
//! **Invariant:** decoding never panics on any input; corrupt bytes give
//! [`CodecError`].

use crate::Sample;
use crate::bits::{
    BitReader, BitWriter, EndOfData, bit_len, get_uvarint, put_uvarint, unzigzag, zigzag,
};

const ENCODING_XOR: u8 = 1;
const ENCODING_DECIMAL: u8 = 2;

/// Largest decimal exponent tried; 10^15 is exact in f64.
const MAX_DECIMAL_EXPONENT: usize = 15;
const POW10: [f64; MAX_DECIMAL_EXPONENT + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
/// Most samples one chunk may hold; the engine writes at most a few
/// hundred, and a corrupt count must not make a reader allocate gigabytes.
pub(crate) const MAX_SAMPLES: usize = 1 << 16;
/// Integers up to 2^53 are exact in f64.
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chunk is corrupt: {0}")]
pub struct CodecError(pub &'static str);

impl From<EndOfData> for CodecError {
    fn from(_: EndOfData) -> Self {
        CodecError("bit stream ends early")
    }
}

/// Buffers reused across encodes so cutting chunks does not allocate.
#[derive(Default)]
pub(crate) struct Encoder {
    mantissas: Vec<i64>,
    zigzags: Vec<u64>,
    spare: Vec<u8>,
}

/// What the chunk header says without decoding the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkHeader {
    pub count: u32,
    /// Last timestamp, given the first.
    pub maxt: i64,
}

pub(crate) fn header(mint: i64, bytes: &[u8]) -> Result<ChunkHeader, CodecError> {
    let (h, _) = parse_header(mint, bytes)?;
    Ok(h)
}

fn parse_header(mint: i64, bytes: &[u8]) -> Result<(ChunkHeader, usize), CodecError> {
    let mut pos = 1;
    if bytes.is_empty() {
        return Err(CodecError("empty chunk"));
    }
    let count = get_uvarint(bytes, &mut pos).ok_or(CodecError("bad sample count"))?;
    let span = get_uvarint(bytes, &mut pos).ok_or(CodecError("bad time span"))?;
    if count == 0 || count > u32::MAX as u64 {
        return Err(CodecError("bad sample count"));
    }
    Ok((
        ChunkHeader {
            count: count as u32,
            maxt: mint.wrapping_add(span as i64),
        },
        pos,
    ))
}

impl Encoder {
    /// Encodes `samples` (at least one) into `out`, replacing its contents.
    /// Any timestamp sequence round-trips; chunks hold increasing ones.
    pub(crate) fn encode(&mut self, samples: &[Sample], out: &mut Vec<u8>) {
        assert!(
            !samples.is_empty() && samples.len() <= MAX_SAMPLES,
            "a chunk holds 1..=MAX_SAMPLES samples"
        );
        out.clear();
        let decimal = self.decimal_exponent(samples);
        out.push(if decimal.is_some() {
            ENCODING_DECIMAL
        } else {
            ENCODING_XOR
        });
        put_uvarint(out, samples.len() as u64);
        let first = samples[0].t;
        put_uvarint(out, samples[samples.len() - 1].t.wrapping_sub(first) as u64);
        let header_len = out.len();
        let mut w = BitWriter::new(out);
        self.write_timestamps(&mut w, samples);
        match decimal {
            Some(e) => self.write_decimal(&mut w, e),
            None => write_xor(&mut w, samples),
        }
        w.finish();
        // Integers with many digits of noise can be larger than XOR floats:
        // keep whichever is smaller.
        if decimal.is_some() && out.len() - header_len > samples.len() * 5 {
            let mut spare = std::mem::take(&mut self.spare);
            spare.clear();
            spare.extend_from_slice(&out[..header_len]);
            spare[0] = ENCODING_XOR;
            let mut w = BitWriter::new(&mut spare);
            self.write_timestamps(&mut w, samples);
            write_xor(&mut w, samples);
            w.finish();
            if spare.len() < out.len() {
                std::mem::swap(out, &mut spare);
            }
            self.spare = spare;
        }
    }

    fn write_timestamps(&mut self, w: &mut BitWriter<'_>, samples: &[Sample]) {
        if samples.len() < 2 {
            return;
        }
        let mut delta = samples[1].t.wrapping_sub(samples[0].t);
        write_with_length(w, zigzag(delta));
        self.zigzags.clear();
        for pair in samples[1..].windows(2) {
            let d = pair[1].t.wrapping_sub(pair[0].t);
            self.zigzags.push(zigzag(d.wrapping_sub(delta)));
            delta = d;
        }
        write_block(w, &self.zigzags);
    }

    /// The smallest `e` with every value exactly `m / 10^e`; fills
    /// `self.mantissas`.
    fn decimal_exponent(&mut self, samples: &[Sample]) -> Option<usize> {
        let mut e = 0;
        for s in samples {
            while mantissa(s.v, e).is_none() {
                e += 1;
                if e > MAX_DECIMAL_EXPONENT {
                    return None;
                }
            }
        }
        self.mantissas.clear();
        for s in samples {
            self.mantissas.push(mantissa(s.v, e)?);
        }
        Some(e)
    }

    fn write_decimal(&mut self, w: &mut BitWriter<'_>, e: usize) {
        let ms = &self.mantissas;
        w.write(e as u64, 4);
        // Deltas suit random walks, delta-of-deltas suit counters: try both.
        let mut delta_hist = [0u32; 65];
        let mut dod_hist = [0u32; 65];
        for i in 1..ms.len() {
            let d = ms[i].wrapping_sub(ms[i - 1]);
            delta_hist[bit_len(zigzag(d)) as usize] += 1;
            if i >= 2 {
                let prev = ms[i - 1].wrapping_sub(ms[i - 2]);
                dod_hist[bit_len(zigzag(d.wrapping_sub(prev))) as usize] += 1;
            }
        }
        let delta_cost = choose_buckets(&delta_hist).1;
        let dod_cost = if ms.len() >= 2 {
            choose_buckets(&dod_hist).1 + 7 + bit_len(zigzag(ms[1].wrapping_sub(ms[0]))) as u64
        } else {
            u64::MAX
        };
        let use_dod = dod_cost < delta_cost;
        w.write_bit(use_dod);
        write_with_length(w, zigzag(ms[0]));
        self.zigzags.clear();
        if use_dod {
            let mut delta = ms[1].wrapping_sub(ms[0]);
            write_with_length(w, zigzag(delta));
            for i in 2..ms.len() {
                let d = ms[i].wrapping_sub(ms[i - 1]);
                self.zigzags.push(zigzag(d.wrapping_sub(delta)));
                delta = d;
            }
        } else {
            for i in 1..ms.len() {
                self.zigzags.push(zigzag(ms[i].wrapping_sub(ms[i - 1])));
            }
        }
        write_block(w, &self.zigzags);
    }
}

/// `m` with `(m as f64) / 10^e` bit-identical to `v`, if there is one.
#[inline]
fn mantissa(v: f64, e: usize) -> Option<i64> {
    let scaled = v * POW10[e];
    // Also refuses NaN and ±Inf (they compare as not `Less`/`Equal`).
    if !matches!(
        scaled.abs().partial_cmp(&MAX_MANTISSA),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    ) {
        return None;
    }
    let m = scaled.round() as i64;
    ((m as f64 / POW10[e]).to_bits() == v.to_bits()).then_some(m)
}

fn write_with_length(w: &mut BitWriter<'_>, z: u64) {
    let len = bit_len(z);
    w.write(len as u64, 7);
    w.write(z, len);
}

fn read_with_length(r: &mut BitReader<'_>) -> Result<u64, CodecError> {
    let len = r.read(7)? as u32;
    if len > 64 {
        return Err(CodecError("bad integer length"));
    }
    Ok(r.read(len)?)
}

/// Widths `[b1, b2, b3]` minimising the block's size, and that size in bits.
fn choose_buckets(hist: &[u32; 65]) -> ([u32; 3], u64) {
    let b3 = (0..=64).rev().find(|&l| hist[l] > 0).unwrap_or(0);
    // below[x]: values with 1 ≤ length ≤ x.
    let mut below = [0u64; 65];
    for l in 1..=64 {
        below[l] = below[l - 1] + hist[l] as u64;
    }
    let nonzero = below[64];
    let mut best = ([0, 0, b3 as u32], u64::MAX);
    for b1 in 0..=b3 {
        for b2 in b1..=b3 {
            let cost = below[b1] * (2 + b1 as u64)
                + (below[b2] - below[b1]) * (3 + b2 as u64)
                + (nonzero - below[b2]) * (3 + b3 as u64);
            if cost < best.1 {
                best = ([b1 as u32, b2 as u32, b3 as u32], cost);
            }
        }
    }
    if nonzero == 0 {
        return (best.0, 1);
    }
    (best.0, best.1 + hist[0] as u64 + 22)
}

fn write_block(w: &mut BitWriter<'_>, zs: &[u64]) {
    if zs.is_empty() {
        return;
    }
    let mut hist = [0u32; 65];
    for &z in zs {
        hist[bit_len(z) as usize] += 1;
    }
    if hist[0] as usize == zs.len() {
        // Regular timestamps, constant values: one bit for the whole block.
        w.write_bit(true);
        return;
    }
    w.write_bit(false);
    let ([b1, b2, b3], _) = choose_buckets(&hist);
    w.write(b1 as u64, 7);
    w.write(b2 as u64, 7);
    w.write(b3 as u64, 7);
    for &z in zs {
        let len = bit_len(z);
        if z == 0 {
            w.write_bit(false);
        } else if len <= b1 {
            w.write(0b10, 2);
            w.write(z, b1);
        } else if len <= b2 {
            w.write(0b110, 3);
            w.write(z, b2);
        } else {
            w.write(0b111, 3);
            w.write(z, b3);
        }
    }
}

struct BlockReader {
    all_zero: bool,
    widths: [u32; 3],
}

impl BlockReader {
    fn new(r: &mut BitReader<'_>) -> Result<Self, CodecError> {
        if r.read_bit()? {
            return Ok(BlockReader {
                all_zero: true,
                widths: [0; 3],
            });
        }
        let mut widths = [0; 3];
        for width in &mut widths {
            *width = r.read(7)? as u32;
            if *width > 64 {
                return Err(CodecError("bad bucket width"));
            }
        }
        Ok(BlockReader {
            all_zero: false,
            widths,
        })
    }

    // Always: it is the inner loop of every decode.
    #[inline(always)]
    fn next(&self, r: &mut BitReader<'_>) -> Result<u64, CodecError> {
        if self.all_zero {
            return Ok(0);
        }
        // The prefix (0, 10, 110, 111) in one look where 3 bits remain.
        let (prefix, seen) = r.peek(3);
        if seen == 3 {
            return Ok(match prefix {
                0b000..=0b011 => {
                    r.consume(1);
                    0
                }
                0b100 | 0b101 => {
                    r.consume(2);
                    r.read(self.widths[0])?
                }
                0b110 => {
                    r.consume(3);
                    r.read(self.widths[1])?
                }
                _ => {
                    r.consume(3);
                    r.read(self.widths[2])?
                }
            });
        }
        if !r.read_bit()? {
            return Ok(0);
        }
        if !r.read_bit()? {
            return Ok(r.read(self.widths[0])?);
        }
        if !r.read_bit()? {
            return Ok(r.read(self.widths[1])?);
        }
        Ok(r.read(self.widths[2])?)
    }
}

fn write_xor(w: &mut BitWriter<'_>, samples: &[Sample]) {
    let mut prev = samples[0].v.to_bits();
    w.write(prev, 64);
    // No window yet: the first non-repeat writes its own.
    let mut leading = u32::MAX;
    let mut trailing = 0;
    for s in &samples[1..] {
        let bits = s.v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.write_bit(false);
            continue;
        }
        w.write_bit(true);
        let lz = x.leading_zeros().min(31);
        let tz = x.trailing_zeros();
        if leading != u32::MAX && lz >= leading && tz >= trailing {
            w.write_bit(false);
            w.write(x >> trailing, 64 - leading - trailing);
        } else {
            leading = lz;
            trailing = tz;
            let significant = 64 - lz - tz;
            w.write_bit(true);
            w.write(lz as u64, 5);
            // 64 significant bits are written as 0: a length of 0 cannot occur.
            w.write((significant & 63) as u64, 6);
            w.write(x >> tz, significant);
        }
    }
}

/// Appends the chunk's samples to `out`. `mint` is the chunk's first
/// timestamp (its key).
pub(crate) fn decode(mint: i64, bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), CodecError> {
    let (h, body) = parse_header(mint, bytes)?;
    let n = h.count as usize;
    // Refuse absurd counts before reserving memory for them.
    if n > MAX_SAMPLES {
        return Err(CodecError("sample count exceeds the chunk limit"));
    }
    let encoding = bytes[0];
    if encoding != ENCODING_XOR && encoding != ENCODING_DECIMAL {
        return Err(CodecError("unknown encoding"));
    }
    let start = out.len();
    out.reserve(n);
    let mut r = BitReader::new(&bytes[body..]);
    out.push(Sample { t: mint, v: 0.0 });
    if n >= 2 {
        let mut delta = unzigzag(read_with_length(&mut r)?);
        let mut t = mint.wrapping_add(delta);
        out.push(Sample { t, v: 0.0 });
        if n >= 3 {
            let block = BlockReader::new(&mut r)?;
            for _ in 2..n {
                delta = delta.wrapping_add(unzigzag(block.next(&mut r)?));
                t = t.wrapping_add(delta);
                out.push(Sample { t, v: 0.0 });
            }
        }
    }
    let samples = &mut out[start..];
    if samples[n - 1].t != h.maxt {
        return Err(CodecError("last timestamp disagrees with the header"));
    }
    if encoding == ENCODING_XOR {
        read_xor(&mut r, samples)?;
    } else {
        read_decimal(&mut r, samples)?;
    }
    Ok(())
}

fn read_xor(r: &mut BitReader<'_>, samples: &mut [Sample]) -> Result<(), CodecError> {
    let mut bits = r.read(64)?;
    samples[0].v = f64::from_bits(bits);
    let (mut leading, mut trailing) = (0u32, 0u32);
    let mut have_window = false;
    for s in &mut samples[1..] {
        if r.read_bit()? {
            if r.read_bit()? {
                leading = r.read(5)? as u32;
                let mut significant = r.read(6)? as u32;
                if significant == 0 {
                    significant = 64;
                }
                if leading + significant > 64 {
                    return Err(CodecError("bad xor window"));
                }
                trailing = 64 - leading - significant;
                have_window = true;
            } else if !have_window {
                return Err(CodecError("xor window reused before it was set"));
            }
            let significant = 64 - leading - trailing;
            bits ^= r.read(significant)? << trailing;
        }
        s.v = f64::from_bits(bits);
    }
    Ok(())
}

fn read_decimal(r: &mut BitReader<'_>, samples: &mut [Sample]) -> Result<(), CodecError> {
    let e = r.read(4)? as usize;
    if e > MAX_DECIMAL_EXPONENT {
        return Err(CodecError("bad decimal exponent"));
    }
    let scale = POW10[e];
    let use_dod = r.read_bit()?;
    let mut m = unzigzag(read_with_length(r)?);
    samples[0].v = m as f64 / scale;
    if samples.len() < 2 {
        return Ok(());
    }
    if use_dod {
        let mut delta = unzigzag(read_with_length(r)?);
        m = m.wrapping_add(delta);
        samples[1].v = m as f64 / scale;
        if samples.len() >= 3 {
            let block = BlockReader::new(r)?;
            for s in &mut samples[2..] {
                delta = delta.wrapping_add(unzigzag(block.next(r)?));
                m = m.wrapping_add(delta);
                s.v = m as f64 / scale;
            }
        }
    } else {
        let block = BlockReader::new(r)?;
        for s in &mut samples[1..] {
            m = m.wrapping_add(unzigzag(block.next(r)?));
            s.v = m as f64 / scale;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{STALE_NAN_BITS, stale_nan};

    fn round_trip(samples: &[Sample]) -> Vec<u8> {
        let mut enc = Encoder::default();
        let mut bytes = Vec::new();
        enc.encode(samples, &mut bytes);
        let mut out = Vec::new();
        decode(samples[0].t, &bytes, &mut out).unwrap();
        assert_eq!(out.len(), samples.len());
        for (a, b) in samples.iter().zip(&out) {
            assert_eq!(a.t, b.t);
            assert_eq!(
                a.v.to_bits(),
                b.v.to_bits(),
                "value {} came back as {}",
                a.v,
                b.v
            );
        }
        let h = header(samples[0].t, &bytes).unwrap();
        assert_eq!(h.count as usize, samples.len());
        assert_eq!(h.maxt, samples[samples.len() - 1].t);
        bytes
    }

    fn regular(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample {
                t: 1_700_000_000_000 + i as i64 * 15_000,
                v,
            })
            .collect()
    }

    #[test]
    fn special_floats_keep_their_exact_bits() {
        // NaN payloads matter: the staleness marker is one particular NaN.
        let values = [
            1.0,
            f64::NAN,
            stale_nan(),
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            stale_nan(),
            1.0,
        ];
        round_trip(&regular(&values));
        let bytes = round_trip(&regular(&[stale_nan()]));
        let mut out = Vec::new();
        decode(1_700_000_000_000, &bytes, &mut out).unwrap();
        assert_eq!(out[0].v.to_bits(), STALE_NAN_BITS);
    }

    #[test]
    fn negative_zero_is_not_turned_into_zero_by_the_decimal_encoding() {
        round_trip(&regular(&[0.0, -0.0, 0.0]));
        round_trip(&regular(&[1.5, -0.0]));
    }

    #[test]
    fn huge_and_irregular_time_deltas_round_trip() {
        let ts = [
            i64::MIN,
            -1,
            0,
            1,
            i64::MAX,
            i64::MIN + 1,
            0,
            0,
            17,
            i64::MAX - 3,
        ];
        let samples: Vec<Sample> = ts.iter().map(|&t| Sample { t, v: t as f64 }).collect();
        round_trip(&samples);
        // Out-of-range single samples.
        round_trip(&[Sample {
            t: i64::MIN,
            v: 1.0,
        }]);
        round_trip(&[
            Sample {
                t: i64::MAX,
                v: 1.0,
            },
            Sample {
                t: i64::MIN,
                v: 2.0,
            },
        ]);
        // Jitter of a few ms and multi-day gaps in one chunk.
        let mut t = 1_000;
        let mut samples = Vec::new();
        for i in 0..300i64 {
            t += 15_000 + (i * 7919 % 11) - 5 + if i % 97 == 0 { 86_400_000 * 3 } else { 0 };
            samples.push(Sample { t, v: i as f64 });
        }
        round_trip(&samples);
    }

    #[test]
    fn decimal_values_compress_and_round_trip() {
        // A gauge with two decimals, as an exporter prints it.
        let mut k: i64 = 4217;
        let mut values = Vec::new();
        for i in 0..120 {
            k += (i * 37 % 21) - 10;
            values.push(k as f64 / 100.0);
        }
        let bytes = round_trip(&regular(&values));
        assert_eq!(bytes[0], ENCODING_DECIMAL);
        assert!(
            bytes.len() < 120 * 2,
            "2-decimal random walk took {} bytes",
            bytes.len()
        );
        // A counter.
        let values: Vec<f64> = (0..120)
            .map(|i| (1_000_000 + i * 150 + (i * 13 % 7)) as f64)
            .collect();
        round_trip(&regular(&values));
        // A constant costs about two bits a sample.
        let bytes = round_trip(&regular(&[3.0; 120]));
        assert!(bytes.len() < 40, "constant took {} bytes", bytes.len());
        // Mixed exponents, negatives, the largest exact integers.
        round_trip(&regular(&[
            0.1,
            0.25,
            -3.125,
            1e15,
            -9007199254740992.0,
            9007199254740992.0,
            0.000000000000001,
        ]));
    }

    #[test]
    fn noisy_floats_fall_back_to_xor() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let values: Vec<f64> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                50.0 + (x >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let bytes = round_trip(&regular(&values));
        assert_eq!(bytes[0], ENCODING_XOR);
        // Completely random bit patterns, NaNs included.
        let values: Vec<f64> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                f64::from_bits(x)
            })
            .collect();
        round_trip(&regular(&values));
    }

    #[test]
    fn corrupt_chunks_are_errors_not_panics() {
        let mut enc = Encoder::default();
        let mut bytes = Vec::new();
        let samples = regular(&[1.0, 2.5, 3.0, f64::NAN, 7.25]);
        enc.encode(&samples, &mut bytes);
        let mut out = Vec::new();
        for len in 0..bytes.len() {
            let _ = decode(0, &bytes[..len], &mut out);
        }
        for i in 0..bytes.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                out.clear();
                let _ = decode(samples[0].t, &b, &mut out);
            }
        }
        // A count far beyond the data is refused before allocating.
        let mut huge = vec![ENCODING_XOR];
        put_uvarint(&mut huge, u32::MAX as u64);
        put_uvarint(&mut huge, 0);
        assert!(decode(0, &huge, &mut out).is_err());
        assert!(decode(0, &[], &mut out).is_err());
        assert!(decode(0, &[9, 1, 0, 0, 0, 0, 0, 0, 0, 0], &mut out).is_err());
    }
}
