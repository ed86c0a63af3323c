//! The lawmesh sync protocol's messages and their versioned, bounded encoding.
//!
//! Every message starts with the protocol version byte, then a tag. Decoding bounds every
//! length before it allocates and refuses trailing bytes; garbage is a [`DecodeError`].

use crate::book::HeadsHash;
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::BookId;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// The largest message accepted or produced, in bytes. A book's first sync to an empty peer is
/// a whole compressed document; at ~200 B per event this holds books far beyond the few thousand
/// orders a period is sized for.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// The most books one summary may list.
pub const MAX_SUMMARY_BOOKS: usize = 100_000;

/// A message between two replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Sent on connect and when a resync is due: the sender's roster version and, for every book
    /// both sides may hold that the sender has, a hash of its heads.
    Summary {
        /// The sender's roster version.
        roster_version: u64,
        /// Book → heads hash.
        books: Vec<(BookId, HeadsHash)>,
    },
    /// One automerge sync message for one book.
    Sync {
        /// The book.
        book: BookId,
        /// The encoded `automerge::sync::Message`.
        data: Vec<u8>,
    },
    /// A signed roster, sent to a peer whose summary shows an older version.
    Roster(Vec<u8>),
}

impl Message {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        match self {
            Message::Summary {
                roster_version,
                books,
            } => {
                w.u8(0).uvar(*roster_version).uvar(books.len() as u64);
                for (book, hash) in books {
                    book.encode(&mut w);
                    w.fixed(hash);
                }
            }
            Message::Sync { book, data } => {
                w.u8(1);
                book.encode(&mut w);
                w.bytes(data);
            }
            Message::Roster(bytes) => {
                w.u8(2).bytes(bytes);
            }
        }
        w.into_bytes()
    }

    /// Decode, refusing anything malformed, oversized or from another protocol version.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLong {
                what: "message",
                len: bytes.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("protocol version")?;
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::Version(version));
        }
        let msg = match r.u8("message tag")? {
            0 => {
                let roster_version = r.uvar("roster version")?;
                let n = r.count("summary books", MAX_SUMMARY_BOOKS)?;
                let mut books = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let book = BookId::decode(&mut r)?;
                    books.push((book, r.fixed("heads hash")?));
                }
                Message::Summary {
                    roster_version,
                    books,
                }
            }
            1 => {
                let book = BookId::decode(&mut r)?;
                let data = r.bytes("sync data", MAX_MESSAGE_BYTES)?.to_vec();
                Message::Sync { book, data }
            }
            2 => Message::Roster(r.bytes("roster", MAX_MESSAGE_BYTES)?.to_vec()),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "message",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Channel;
    use proptest::prelude::*;

    fn book() -> BookId {
        BookId {
            area: "qiuchang".into(),
            channel: Channel::Mediation,
            period: "2026-12".into(),
        }
    }

    #[test]
    fn messages_round_trip() {
        for m in [
            Message::Summary {
                roster_version: 7,
                books: vec![(book(), [3; 32])],
            },
            Message::Sync {
                book: book(),
                data: vec![0x42, 1, 2, 3],
            },
            Message::Roster(vec![9; 100]),
        ] {
            assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn other_versions_and_trailing_bytes_are_refused() {
        let mut bytes = Message::Roster(vec![1]).encode();
        bytes.push(0);
        assert_eq!(Message::decode(&bytes), Err(DecodeError::Trailing(1)));
        bytes[0] = 9;
        assert_eq!(Message::decode(&bytes), Err(DecodeError::Version(9)));
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Message::decode(&bytes);
            let mut prefixed = vec![PROTOCOL_VERSION];
            prefixed.extend(&bytes);
            let _ = Message::decode(&prefixed);
        }
    }
}
