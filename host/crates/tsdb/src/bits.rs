//! Bit streams and varints: the primitives of the chunk and write-ahead
//! encodings. Bits are written most significant first.

/// Appends bits to a byte vector.
pub(crate) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Pending bits, right-aligned; fewer than 8 between calls.
    acc: u128,
    pending: u32,
}

impl<'a> BitWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            pending: 0,
        }
    }

    /// Writes the low `bits` bits of `value` (`bits` ≤ 64).
    #[inline]
    pub(crate) fn write(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 64);
        if bits == 0 {
            return;
        }
        let value = if bits == 64 {
            value
        } else {
            value & ((1u64 << bits) - 1)
        };
        self.acc = (self.acc << bits) | value as u128;
        self.pending += bits;
        while self.pending >= 8 {
            self.pending -= 8;
            self.out.push((self.acc >> self.pending) as u8);
        }
        self.acc &= (1u128 << self.pending) - 1;
    }

    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write(bit as u64, 1);
    }

    /// Pads the last byte with zero bits.
    pub(crate) fn finish(self) {
        if self.pending > 0 {
            self.out.push((self.acc << (8 - self.pending)) as u8);
        }
    }
}

/// Reads bits written by [`BitWriter`]; running past the end is an error,
/// never a panic, so corrupt input cannot crash a query.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    next_byte: usize,
    /// Buffered bits, left-aligned.
    buf: u64,
    avail: u32,
}

#[derive(Debug)]
pub(crate) struct EndOfData;

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            next_byte: 0,
            buf: 0,
            avail: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        // Eight bytes at once where there are eight: the bits past the last
        // whole byte taken are the stream's own next bits, so the byte-wise
        // loop below may OR them in again harmlessly.
        if let Some(word) = self.data.get(self.next_byte..self.next_byte + 8) {
            let word = u64::from_be_bytes(word.try_into().expect("eight bytes"));
            let take = (64 - self.avail) / 8;
            if take > 0 {
                self.buf |= word >> self.avail;
                self.avail += take * 8;
                self.next_byte += take as usize;
            }
            return;
        }
        while self.avail <= 56 && self.next_byte < self.data.len() {
            self.buf |= (self.data[self.next_byte] as u64) << (56 - self.avail);
            self.avail += 8;
            self.next_byte += 1;
        }
    }

    /// Reads `bits` bits (≤ 64).
    #[inline]
    pub(crate) fn read(&mut self, bits: u32) -> Result<u64, EndOfData> {
        debug_assert!(bits <= 64);
        if bits == 0 {
            return Ok(0);
        }
        if bits <= self.avail && bits <= 56 {
            let value = self.buf >> (64 - bits);
            self.buf <<= bits;
            self.avail -= bits;
            return Ok(value);
        }
        self.read_refilling(bits)
    }

    /// [`BitReader::read`] when the buffer runs short: kept out of line so
    /// the common case inlines into the decoders' loops.
    #[inline(never)]
    fn read_refilling(&mut self, bits: u32) -> Result<u64, EndOfData> {
        if bits > 56 {
            let high = self.read(bits - 32)?;
            let low = self.read(32)?;
            return Ok((high << 32) | low);
        }
        self.refill();
        if self.avail < bits {
            return Err(EndOfData);
        }
        let value = self.buf >> (64 - bits);
        self.buf <<= bits;
        self.avail -= bits;
        Ok(value)
    }

    /// The next `bits` (≤ 8) bits without consuming them, fewer at the
    /// end of the data (the rest read as 0).
    #[inline]
    pub(crate) fn peek(&mut self, bits: u32) -> (u64, u32) {
        if self.avail < bits {
            self.refill();
        }
        (self.buf >> (64 - bits), self.avail.min(bits))
    }

    /// Drops `bits` bits already seen with [`BitReader::peek`].
    #[inline]
    pub(crate) fn consume(&mut self, bits: u32) {
        debug_assert!(bits <= self.avail);
        self.buf <<= bits;
        self.avail -= bits;
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool, EndOfData> {
        Ok(self.read(1)? == 1)
    }
}

#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Number of significant bits of `z` (0 for 0).
#[inline]
pub(crate) fn bit_len(z: u64) -> u32 {
    64 - z.leading_zeros()
}

#[inline]
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it; `None` if truncated or overlong.
#[inline]
pub(crate) fn get_uvarint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *data.get(*pos)?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_every_width_including_64() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        for bits in 0..=64u32 {
            w.write(u64::MAX.wrapping_sub(bits as u64), bits);
            w.write_bit(bits % 2 == 0);
        }
        w.finish();
        let mut r = BitReader::new(&out);
        for bits in 0..=64u32 {
            let expect = if bits == 64 {
                u64::MAX - 64
            } else {
                (u64::MAX.wrapping_sub(bits as u64)) & ((1u64 << bits) - 1)
            };
            assert_eq!(r.read(bits).unwrap(), expect, "width {bits}");
            assert_eq!(r.read_bit().unwrap(), bits % 2 == 0);
        }
    }

    #[test]
    fn reading_past_the_end_is_an_error_not_a_panic() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read(8).unwrap(), 0xff);
        assert!(r.read(1).is_err());
        let mut r = BitReader::new(&[]);
        assert!(r.read(64).is_err());
    }

    #[test]
    fn varints_and_zigzag_cover_the_extremes() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
            let mut out = Vec::new();
            put_uvarint(&mut out, zigzag(v));
            let mut pos = 0;
            assert_eq!(get_uvarint(&out, &mut pos), Some(zigzag(v)));
            assert_eq!(pos, out.len());
        }
        // Truncated and overlong varints are refused.
        assert_eq!(get_uvarint(&[0x80], &mut 0), None);
        assert_eq!(get_uvarint(&[0xff; 11], &mut 0), None);
    }
}
