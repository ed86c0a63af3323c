//! A small, strict binary codec: the canonical encoding of signed events and the wire format.
//!
//! Everything that crosses a trust boundary is decoded here, so every read is bounded and
//! every failure is a [`DecodeError`], never a panic.

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the value did: truncated or not ours at all.
    #[error("input ended early while reading {0}")]
    Truncated(&'static str),
    /// A length field claims more than the limit for that field.
    #[error("{what} is {len} bytes, more than the limit of {limit}")]
    TooLong {
        /// The field being read.
        what: &'static str,
        /// The claimed length.
        len: usize,
        /// The limit for that field.
        limit: usize,
    },
    /// A tag byte names no known variant.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// What was being read.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A text field is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// Bytes were left over after the value: the encoding is not canonical.
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
    /// A version this build does not speak.
    #[error("unsupported version {0}")]
    Version(u8),
    /// A value is well-formed but not allowed (e.g. an unknown channel name).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Appends values to a byte buffer.
#[derive(Default, Debug)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    /// LEB128 varint.
    pub(crate) fn uvar(&mut self, mut v: u64) -> &mut Self {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return self;
            }
            self.buf.push(byte | 0x80);
        }
    }
    pub(crate) fn fixed(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.uvar(bytes.len() as u64);
        self.fixed(bytes)
    }
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
}

/// Reads values from a byte slice, every read bounded.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let (&first, rest) = self
            .rest
            .split_first()
            .ok_or(DecodeError::Truncated(what))?;
        self.rest = rest;
        Ok(first)
    }
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::UnknownTag { what, tag }),
        }
    }
    pub(crate) fn uvar(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Invalid(what))
    }
    pub(crate) fn fixed<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        if self.rest.len() < N {
            return Err(DecodeError::Truncated(what));
        }
        let (head, rest) = self.rest.split_at(N);
        self.rest = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
    pub(crate) fn bytes(
        &mut self,
        what: &'static str,
        limit: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = self.uvar(what)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > limit {
            return Err(DecodeError::TooLong { what, len, limit });
        }
        if self.rest.len() < len {
            return Err(DecodeError::Truncated(what));
        }
        let (head, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(head)
    }
    pub(crate) fn str(&mut self, what: &'static str, limit: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes(what, limit)?).map_err(|_| DecodeError::NotUtf8(what))
    }
    /// A count of items to follow, bounded by `limit`.
    pub(crate) fn count(&mut self, what: &'static str, limit: usize) -> Result<usize, DecodeError> {
        let n = self.uvar(what)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > limit {
            return Err(DecodeError::TooLong {
                what,
                len: n,
                limit,
            });
        }
        Ok(n)
    }
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing(self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_truncation_is_an_error() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut w = Writer::new();
            w.uvar(v);
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.uvar("v"), Ok(v));
            r.finish().unwrap();
            let mut r = Reader::new(&bytes[..bytes.len() - 1]);
            assert!(r.uvar("v").is_err());
        }
    }

    #[test]
    fn length_limits_are_enforced_before_allocation() {
        let mut w = Writer::new();
        w.bytes(&[7u8; 100]);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert!(matches!(
            r.bytes("x", 10),
            Err(DecodeError::TooLong { len: 100, .. })
        ));
    }
}
