//! Bit-level writer and reader used for the small side information (frequency tables).
//!
//! Tables are a few hundred bytes per stream, so clarity beats speed here: the reader is fully
//! bounds-checked and reports truncation instead of reading past the end.

use crate::error::{Error, Result};

/// Writes bits LSB-first into a growing byte vector.
#[derive(Default)]
pub struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the low `n` bits of `v` (n <= 32).
    pub fn put(&mut self, v: u32, n: u32) {
        debug_assert!(n <= 32);
        if n == 0 {
            return;
        }
        self.acc |= ((v as u64) & ((1u64 << n) - 1)) << self.nbits;
        self.nbits += n;
        while self.nbits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }

    /// Exp-Golomb code of order 0 for an unsigned value: small values take few bits.
    pub fn put_exp_golomb(&mut self, v: u32) {
        let v1 = v as u64 + 1;
        let len = 63 - v1.leading_zeros(); // number of bits after the leading one
        self.put(0, len); // `len` zeros announce the length
                          // then the value itself, MSB (the leading one) first is not needed for LSB-first IO:
                          // write the leading one followed by the low `len` bits.
        self.put(1, 1);
        self.put((v1 & ((1u64 << len) - 1)) as u32, len);
    }

    /// Signed values are mapped 0, -1, 1, -2, 2, ... onto 0, 1, 2, 3, 4, ...
    pub fn put_signed(&mut self, v: i32) {
        let z = ((v << 1) ^ (v >> 31)) as u32;
        self.put_exp_golomb(z);
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Bounds-checked LSB-first bit reader over a byte slice.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize, // next byte to load
    acc: u64,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0, acc: 0, nbits: 0 }
    }

    /// Tops the accumulator up to at least 57 bits, or to the end of the data.
    #[inline]
    fn refill(&mut self) {
        while self.nbits <= 56 {
            let Some(&b) = self.data.get(self.pos) else {
                break;
            };
            self.pos += 1;
            self.acc |= (b as u64) << self.nbits;
            self.nbits += 8;
        }
    }

    pub fn get(&mut self, n: u32) -> Result<u32> {
        debug_assert!(n <= 32);
        if self.nbits < n {
            self.refill();
            if self.nbits < n {
                return Err(Error::CorruptModel);
            }
        }
        let v = if n == 0 { 0 } else { (self.acc & ((1u64 << n) - 1)) as u32 };
        self.acc >>= n;
        self.nbits -= n;
        Ok(v)
    }

    pub fn get_exp_golomb(&mut self) -> Result<u32> {
        // LSB-first layout: `len` zeros, a one, then the low `len` bits of value + 1. Tables are
        // parsed for every frame decoded, so the common short codes take one step.
        if self.nbits < 33 {
            self.refill();
        }
        let avail = if self.nbits == 64 { self.acc } else { self.acc & ((1u64 << self.nbits) - 1) };
        let len = avail.trailing_zeros();
        if len < 32 && 2 * len < self.nbits {
            let v1 = ((self.acc >> (len + 1)) & ((1u64 << len) - 1)) | (1u64 << len);
            self.acc >>= 2 * len + 1;
            self.nbits -= 2 * len + 1;
            return u32::try_from(v1 - 1).map_err(|_| Error::CorruptModel);
        }
        // Long codes (values of 2^28 and more) and the end of the data: bit by bit.
        let mut len = 0u32;
        while self.get(1)? == 0 {
            len += 1;
            if len > 32 {
                return Err(Error::CorruptModel);
            }
        }
        let rest =
            if len == 32 { (self.get(16)? as u64) | (self.get(16)? as u64) << 16 } else { self.get(len)? as u64 };
        u32::try_from(((1u64 << len) | rest) - 1).map_err(|_| Error::CorruptModel)
    }

    pub fn get_signed(&mut self) -> Result<i32> {
        let z = self.get_exp_golomb()?;
        Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
    }

    /// Bytes consumed so far, counting a partly read byte as consumed.
    /// Whether the bits left in the current byte (padding) are all zero.
    pub fn padding_is_zero(&self) -> bool {
        let partial = self.nbits % 8;
        partial == 0 || self.acc & ((1u64 << partial) - 1) == 0
    }

    pub fn bytes_consumed(&self) -> usize {
        self.pos - (self.nbits / 8) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_roundtrip() {
        let vals: Vec<i32> = vec![0, 1, -1, 2, -2, 100, -100, 65535, -65536, i32::MAX / 2, i32::MIN / 2];
        let mut w = BitWriter::new();
        for &v in &vals {
            w.put_signed(v);
            w.put(0b101, 3);
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for &v in &vals {
            assert_eq!(r.get_signed().unwrap(), v);
            assert_eq!(r.get(3).unwrap(), 0b101);
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut r = BitReader::new(&[0u8]);
        assert!(r.get_exp_golomb().is_err());
    }
}
