//! Signed order events: the only thing an order book stores.
//!
//! An order is a set of events. Each is stamped with a hybrid-logical-clock time, names its
//! signer's key and carries an ed25519 signature over a canonical binary encoding. An event's id
//! is a hash of its signed bytes, so the same event written twice (a retry, a relay) is one
//! entry, and a change that would alter an event cannot keep its id.

use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::{CaseType, Channel, LawyerId, NodeKey, OrderId, SiteId};
use crate::keys::{self, SecretKey};
use crate::time::Stamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use thiserror::Error;

const DOMAIN: &[u8] = b"lawmesh event v1\0";
const FORMAT: u8 = 1;
/// Longest free text in an event (account of the matter, message, outcome), bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Longest short field (names, ids, phone), bytes.
pub const MAX_SHORT: usize = 256;
/// Longest encoded signed event, bytes.
pub const MAX_EVENT_BYTES: usize = 2 * MAX_TEXT + 8 * MAX_SHORT + 256;

/// What a resident asked for: the order's header, carried by its Created event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderHeader {
    /// The site where the resident asked.
    pub origin: SiteId,
    /// The channel.
    pub channel: Channel,
    /// Case type, i.e. the specialty needed.
    pub case_type: CaseType,
    /// Live (the resident waits at the kiosk) or queued.
    pub live: bool,
    /// Resident's name.
    pub name: String,
    /// Resident's phone.
    pub phone: String,
    /// The resident's account of the matter.
    pub text: String,
}

/// What happened to an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A resident's request was taken at the origin site (boxed: most events are small).
    Created(Box<OrderHeader>),
    /// The origin saw a peer take the order (发单 on the wire).
    Offered,
    /// A site of the chain received the order from a peer.
    Received,
    /// A site took the order (接单).
    Accepted,
    /// A site on call passed the order on.
    Declined {
        /// Why.
        reason: String,
    },
    /// The winning site gave the order back; it goes on call from the next tier.
    Released {
        /// Why.
        reason: String,
    },
    /// The winning site assigned a lawyer (派单).
    Dispatched {
        /// The lawyer.
        lawyer: LawyerId,
    },
    /// A message in the order's conversation.
    Message {
        /// The text.
        text: String,
    },
    /// A party joined a mediation.
    PartyJoined {
        /// Who.
        party: String,
    },
    /// The parties signed a mediation agreement.
    AgreementSigned {
        /// The agreement's summary.
        summary: String,
    },
    /// The winning site closed the case.
    Closed {
        /// The outcome.
        outcome: String,
    },
    /// The resident confirmed the service at the origin site.
    Confirmed,
    /// The resident withdrew the request at the origin site.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// Flagged for the joint meeting (联席会议).
    Flagged {
        /// Why.
        reason: String,
    },
}

impl EventKind {
    /// The kind's name, for logs and timelines.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Created(_) => "created",
            EventKind::Offered => "offered",
            EventKind::Received => "received",
            EventKind::Accepted => "accepted",
            EventKind::Declined { .. } => "declined",
            EventKind::Released { .. } => "released",
            EventKind::Dispatched { .. } => "dispatched",
            EventKind::Message { .. } => "message",
            EventKind::PartyJoined { .. } => "party_joined",
            EventKind::AgreementSigned { .. } => "agreement_signed",
            EventKind::Closed { .. } => "closed",
            EventKind::Confirmed => "confirmed",
            EventKind::Cancelled { .. } => "cancelled",
            EventKind::Flagged { .. } => "flagged",
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            EventKind::Created(h) => {
                w.u8(0)
                    .str(h.origin.as_str())
                    .u8(h.channel.tag())
                    .str(h.case_type.as_str())
                    .bool(h.live)
                    .str(&h.name)
                    .str(&h.phone)
                    .str(&h.text);
            }
            EventKind::Offered => {
                w.u8(1);
            }
            EventKind::Received => {
                w.u8(2);
            }
            EventKind::Accepted => {
                w.u8(3);
            }
            EventKind::Declined { reason } => {
                w.u8(4).str(reason);
            }
            EventKind::Released { reason } => {
                w.u8(5).str(reason);
            }
            EventKind::Dispatched { lawyer } => {
                w.u8(6).str(lawyer.as_str());
            }
            EventKind::Message { text } => {
                w.u8(7).str(text);
            }
            EventKind::PartyJoined { party } => {
                w.u8(8).str(party);
            }
            EventKind::AgreementSigned { summary } => {
                w.u8(9).str(summary);
            }
            EventKind::Closed { outcome } => {
                w.u8(10).str(outcome);
            }
            EventKind::Confirmed => {
                w.u8(11);
            }
            EventKind::Cancelled { reason } => {
                w.u8(12).str(reason);
            }
            EventKind::Flagged { reason } => {
                w.u8(13).str(reason);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let short = |r: &mut Reader<'_>, what| r.str(what, MAX_SHORT).map(str::to_owned);
        let text = |r: &mut Reader<'_>, what| r.str(what, MAX_TEXT).map(str::to_owned);
        Ok(match r.u8("event kind")? {
            0 => EventKind::Created(Box::new(OrderHeader {
                origin: SiteId(short(r, "origin")?),
                channel: Channel::from_tag(r.u8("channel")?)?,
                case_type: CaseType(short(r, "case type")?),
                live: r.bool("live")?,
                name: short(r, "name")?,
                phone: short(r, "phone")?,
                text: text(r, "account")?,
            })),
            1 => EventKind::Offered,
            2 => EventKind::Received,
            3 => EventKind::Accepted,
            4 => EventKind::Declined {
                reason: text(r, "reason")?,
            },
            5 => EventKind::Released {
                reason: text(r, "reason")?,
            },
            6 => EventKind::Dispatched {
                lawyer: LawyerId(short(r, "lawyer")?),
            },
            7 => EventKind::Message {
                text: text(r, "message")?,
            },
            8 => EventKind::PartyJoined {
                party: short(r, "party")?,
            },
            9 => EventKind::AgreementSigned {
                summary: text(r, "summary")?,
            },
            10 => EventKind::Closed {
                outcome: text(r, "outcome")?,
            },
            11 => EventKind::Confirmed,
            12 => EventKind::Cancelled {
                reason: text(r, "reason")?,
            },
            13 => EventKind::Flagged {
                reason: text(r, "reason")?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "event kind",
                    tag,
                })
            }
        })
    }
}

/// An unsigned event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The order it belongs to.
    pub order: OrderId,
    /// When, by the signer's hybrid logical clock.
    pub stamp: Stamp,
    /// The signing node's key.
    pub signer: NodeKey,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    fn canonical(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(FORMAT)
            .fixed(&self.order.0)
            .uvar(self.stamp.ms)
            .uvar(u64::from(self.stamp.counter))
            .fixed(&self.signer.0);
        self.kind.encode(&mut w);
        w.into_bytes()
    }

    /// Sign with the node's key. The signer field must be that key's public half.
    pub fn sign(self, key: &SecretKey) -> SignedEvent {
        debug_assert_eq!(self.signer, key.public());
        let mut bytes = self.canonical();
        let signature = key.sign(DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        SignedEvent {
            id: EventId::of(&bytes),
            event: self,
            bytes,
        }
    }
}

/// An event's id: the first 128 bits of SHA-256 over its signed bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub [u8; 16]);

impl EventId {
    fn of(signed: &[u8]) -> Self {
        let digest = Sha256::digest(signed);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        EventId(id)
    }
    /// The key under which the event is stored in its book.
    pub fn key(&self) -> String {
        crate::ids::hex(&self.0)
    }
}
impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", &self.key()[..8])
    }
}

/// Ids of events whose signatures were already checked, to share between replicas that run in
/// one process (the simulator runs a replica per site). It memoises a pure function: sharing it
/// changes no result, only how often the same bytes are verified. Bounded: beyond its capacity
/// it forgets the oldest ids (which are then simply verified again).
#[derive(Debug)]
pub struct VerifiedEvents {
    set: HashSet<EventId>,
    order: VecDeque<EventId>,
    cap: usize,
}

/// A [`VerifiedEvents`] shared between replicas.
pub type SharedVerified = Arc<Mutex<VerifiedEvents>>;

impl VerifiedEvents {
    /// A cache of at most `cap` ids, ready to share.
    pub fn shared(cap: usize) -> SharedVerified {
        Arc::new(Mutex::new(VerifiedEvents {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }))
    }

    fn insert(&mut self, id: EventId) {
        if self.set.insert(id) {
            self.order.push_back(id);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// Why stored or received event bytes were refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EventError {
    /// The bytes are not an event.
    #[error("event does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The signature does not verify under the signer key the event names.
    #[error("event signature does not verify for signer {0}: forged or corrupted")]
    BadSignature(NodeKey),
    /// The event is stored under a key that is not its id.
    #[error("event stored under key {stored} but its id is {actual}: rewritten")]
    WrongKey {
        /// Key in the book.
        stored: String,
        /// The event's real id.
        actual: String,
    },
}

/// An event with its signature, as stored in a book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEvent {
    /// The event.
    pub event: Event,
    /// Its id.
    pub id: EventId,
    bytes: Vec<u8>,
}

impl SignedEvent {
    /// The signed bytes (canonical encoding followed by the signature).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decode signed bytes and verify the signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedEvent, EventError> {
        Self::decode_inner(bytes, true)
    }

    fn decode_inner(bytes: &[u8], verify: bool) -> Result<SignedEvent, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(DecodeError::TooLong {
                what: "event",
                len: bytes.len(),
                limit: MAX_EVENT_BYTES,
            }
            .into());
        }
        let Some(body_len) = bytes.len().checked_sub(64) else {
            return Err(DecodeError::Truncated("event signature").into());
        };
        let (body, sig) = bytes.split_at(body_len);
        let mut r = Reader::new(body);
        let format = r.u8("event format")?;
        if format != FORMAT {
            return Err(DecodeError::Version(format).into());
        }
        let order = OrderId(r.fixed("order id")?);
        let ms = r.uvar("stamp ms")?;
        let counter = u32::try_from(r.uvar("stamp counter")?)
            .map_err(|_| DecodeError::Invalid("stamp counter"))?;
        let signer = NodeKey(r.fixed("signer")?);
        let kind = EventKind::decode(&mut r)?;
        r.finish()?;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig);
        if verify && !keys::verify(&signer, DOMAIN, body, &signature) {
            return Err(EventError::BadSignature(signer));
        }
        Ok(SignedEvent {
            event: Event {
                order,
                stamp: Stamp { ms, counter },
                signer,
                kind,
            },
            id: EventId::of(bytes),
            bytes: bytes.to_vec(),
        })
    }

    /// Like [`SignedEvent::decode_stored`] with verification, but skip the signature check for
    /// bytes whose id `verified` already holds (and remember the ones checked here).
    pub fn decode_verified(
        key: &str,
        bytes: &[u8],
        verified: &SharedVerified,
    ) -> Result<SignedEvent, EventError> {
        let id = EventId::of(bytes);
        let known = verified.lock().is_ok_and(|v| v.set.contains(&id));
        let ev = Self::decode_stored(key, bytes, !known)?;
        if !known {
            if let Ok(mut v) = verified.lock() {
                v.insert(id);
            }
        }
        Ok(ev)
    }

    /// Decode bytes found under `key` in a book, checking the key is the event's id. With
    /// `verify` false the signature is not checked again: for the node's own store, whose
    /// events were all verified when they arrived (the id, a hash over the signed bytes, is
    /// still checked, so a corrupted entry is still caught).
    pub fn decode_stored(key: &str, bytes: &[u8], verify: bool) -> Result<SignedEvent, EventError> {
        let ev = Self::decode_inner(bytes, verify)?;
        let actual = ev.id.key();
        if actual != key {
            return Err(EventError::WrongKey {
                stored: key.to_owned(),
                actual,
            });
        }
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(key: &SecretKey) -> Event {
        Event {
            order: OrderId([9; 16]),
            stamp: Stamp {
                ms: 1_790_000_000_000,
                counter: 2,
            },
            signer: key.public(),
            kind: EventKind::Created(Box::new(OrderHeader {
                origin: "village-zhoutian".into(),
                channel: Channel::Consultation,
                case_type: "land".into(),
                live: true,
                name: "李秀英".into(),
                phone: "13800000000".into(),
                text: "宅基地边界纠纷".into(),
            })),
        }
    }

    #[test]
    fn signed_events_round_trip_and_forgeries_are_caught() {
        let key = SecretKey::from_bytes([5; 32]);
        let signed = created(&key).sign(&key);
        let back = SignedEvent::decode_stored(&signed.id.key(), signed.bytes(), true).unwrap();
        assert_eq!(back, signed);

        let mut tampered = signed.bytes().to_vec();
        let last_text_byte = tampered.len() - 65;
        tampered[last_text_byte] ^= 0x01;
        assert!(matches!(
            SignedEvent::decode(&tampered),
            Err(EventError::BadSignature(_)) | Err(EventError::Decode(_))
        ));

        // Someone else's key in the signer field with our signature.
        let other = SecretKey::from_bytes([6; 32]);
        let mut ev = created(&key);
        ev.signer = other.public();
        let mut bytes = ev.canonical();
        bytes.extend_from_slice(&key.sign(DOMAIN, &ev.canonical()));
        assert_eq!(
            SignedEvent::decode(&bytes),
            Err(EventError::BadSignature(other.public()))
        );

        assert!(matches!(
            SignedEvent::decode_stored("00", signed.bytes(), true),
            Err(EventError::WrongKey { .. })
        ));
    }

    #[test]
    fn a_shared_verified_cache_never_lets_a_forgery_through_and_stays_bounded() {
        let key = SecretKey::from_bytes([5; 32]);
        let cache = VerifiedEvents::shared(2);
        let good = created(&key).sign(&key);
        assert!(SignedEvent::decode_verified(&good.id.key(), good.bytes(), &cache).is_ok());
        assert!(SignedEvent::decode_verified(&good.id.key(), good.bytes(), &cache).is_ok());
        // A forgery has other bytes, hence another id: the cache does not vouch for it.
        let mut forged = good.bytes().to_vec();
        let n = forged.len();
        forged[n - 1] ^= 1;
        let forged_id = EventId::of(&forged).key();
        assert!(matches!(
            SignedEvent::decode_verified(&forged_id, &forged, &cache),
            Err(EventError::BadSignature(_))
        ));
        for n in 0..5u64 {
            let mut ev = created(&key);
            ev.stamp.ms += n;
            let e = ev.sign(&key);
            SignedEvent::decode_verified(&e.id.key(), e.bytes(), &cache).unwrap();
        }
        assert!(cache.lock().unwrap().set.len() <= 2);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..200 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            assert!(SignedEvent::decode(&junk).is_err());
        }
    }
}
