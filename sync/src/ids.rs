//! Identifiers: sites, areas, lawyers, node keys, orders, channels and books.

use crate::codec::{DecodeError, Reader, Writer};
use crate::time::{Date, Millis};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A site of the roster: a kiosk, office, firm or centre (`office-qiuchang`).
    SiteId
);
string_id!(
    /// An origin area: a township with its villages, or a stand-alone desk (`qiuchang`, `notary`).
    AreaId
);
string_id!(
    /// A lawyer of the roster (`l017`).
    LawyerId
);
string_id!(
    /// A case type, which is also the specialty a lawyer needs for it (`family`, `labour`).
    CaseType
);

/// A node's ed25519 public key: its name on the wire and on every event it signs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeKey(#[serde(with = "hex_array")] pub [u8; 32]);

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", &hex(&self.0)[..12])
    }
}
impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}
impl FromStr for NodeKey {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(NodeKey(
            unhex(s).ok_or(DecodeError::Invalid("node key hex"))?,
        ))
    }
}

/// An order's id: 128 random bits chosen by the creating node, so a retried submission is the
/// same order, never a second one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(pub [u8; 16]);

impl OrderId {
    /// A fresh id from the caller's RNG.
    pub fn random(rng: &mut impl rand_core::RngCore) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        OrderId(b)
    }
    /// A short form for people: the first 8 hex digits.
    pub fn short(&self) -> String {
        hex(&self.0[..4])
    }
}
impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderId({})", self.short())
    }
}
impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}
impl FromStr for OrderId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(OrderId(
            unhex(s).ok_or(DecodeError::Invalid("order id hex"))?,
        ))
    }
}
impl Serialize for OrderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
impl<'de> Deserialize<'de> for OrderId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The service channel an order came in on; each has its own escalation chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Legal consultation (法律咨询), the main flow of 所所对接.
    Consultation,
    /// The special mediation channel (调解专项通道), multi-party and online.
    Mediation,
    /// Notarisation needs (公证).
    Notary,
    /// Tax legal service (税务公共法律服务).
    Tax,
    /// Veterans' legal service (退役军人法律服务).
    Veterans,
}

impl Channel {
    /// All channels, in a fixed order.
    pub const ALL: [Channel; 5] = [
        Channel::Consultation,
        Channel::Mediation,
        Channel::Notary,
        Channel::Tax,
        Channel::Veterans,
    ];
    /// The channel's name as used in ids, files and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Consultation => "consultation",
            Channel::Mediation => "mediation",
            Channel::Notary => "notary",
            Channel::Tax => "tax",
            Channel::Veterans => "veterans",
        }
    }
    pub(crate) fn tag(self) -> u8 {
        match self {
            Channel::Consultation => 0,
            Channel::Mediation => 1,
            Channel::Notary => 2,
            Channel::Tax => 3,
            Channel::Veterans => 4,
        }
    }
    pub(crate) fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        Channel::ALL
            .get(usize::from(tag))
            .copied()
            .ok_or(DecodeError::UnknownTag {
                what: "channel",
                tag,
            })
    }
}
impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl FromStr for Channel {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DecodeError::Invalid("channel name"))
    }
}

/// How long one book covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// A calendar month (the default).
    #[default]
    Month,
    /// An ISO week, for busy areas.
    Week,
}

impl PeriodKind {
    /// The period label (`2026-12` or `2026-w49`) containing local time `ms`.
    pub fn label(self, ms: Millis, utc_offset_minutes: i32) -> String {
        let date = Date::at(ms, utc_offset_minutes);
        match self {
            PeriodKind::Month => format!("{:04}-{:02}", date.year, date.month),
            PeriodKind::Week => {
                let (y, w) = date.iso_week();
                format!("{y:04}-w{w:02}")
            }
        }
    }
}

/// One order book: the orders of one origin area on one channel in one period.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BookId {
    /// The origin area.
    pub area: AreaId,
    /// The channel.
    pub channel: Channel,
    /// The period label, e.g. `2026-12` or `2026-w49`.
    pub period: String,
}

impl BookId {
    pub(crate) const MAX_PART: usize = 64;

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.str(self.area.as_str())
            .u8(self.channel.tag())
            .str(&self.period);
    }
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let area = AreaId(r.str("book area", Self::MAX_PART)?.to_owned());
        let channel = Channel::from_tag(r.u8("book channel")?)?;
        let period = r.str("book period", Self::MAX_PART)?.to_owned();
        Ok(BookId {
            area,
            channel,
            period,
        })
    }
}
impl fmt::Display for BookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.area, self.channel, self.period)
    }
}
impl FromStr for BookId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut it = s.splitn(3, '/');
        let (Some(area), Some(channel), Some(period)) = (it.next(), it.next(), it.next()) else {
            return Err(DecodeError::Invalid("book id (want area/channel/period)"));
        };
        Ok(BookId {
            area: AreaId(area.to_owned()),
            channel: channel.parse()?,
            period: period.to_owned(),
        })
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Parse exactly `N` bytes of hex.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(s[2 * i])? << 4 | nib(s[2 * i + 1])?;
    }
    Some(out)
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};
    pub(super) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(v))
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        super::unhex(&s).ok_or_else(|| serde::de::Error::custom("want 64 hex digits"))
    }
}
