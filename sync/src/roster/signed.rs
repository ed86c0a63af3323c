//! Signed rosters: the district authority signs each version; nodes take only a newer version
//! whose signature verifies under the authority key they were provisioned with.

use super::{Roster, RosterDoc, RosterError};
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::NodeKey;
use crate::keys::{self, SecretKey};

const DOMAIN: &[u8] = b"lawmesh roster v1\0";
const FORMAT: u8 = 1;
/// The largest signed roster accepted, in bytes.
pub const MAX_ROSTER_BYTES: usize = 4 << 20;

/// A roster as it travels and is stored: the serialised document and the authority's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRoster {
    /// The signing authority's public key.
    pub authority: NodeKey,
    /// The roster document as JSON; the signature covers exactly these bytes.
    pub body: Vec<u8>,
    /// ed25519 signature over `body`.
    pub signature: [u8; 64],
}

impl SignedRoster {
    /// Sign a roster with the authority key.
    pub fn sign(roster: &Roster, authority: &SecretKey) -> Result<SignedRoster, RosterError> {
        let body =
            serde_json::to_vec(roster.doc()).map_err(|e| RosterError::Parse(e.to_string()))?;
        let signature = authority.sign(DOMAIN, &body);
        Ok(SignedRoster {
            authority: authority.public(),
            body,
            signature,
        })
    }

    /// Check the signature against the authority this node trusts, then parse and check the
    /// roster. `held` is the version already held, if any: only a newer one is taken.
    pub fn open(&self, trusted: &NodeKey, held: Option<u64>) -> Result<Roster, RosterError> {
        if &self.authority != trusted || !keys::verify(trusted, DOMAIN, &self.body, &self.signature)
        {
            return Err(RosterError::BadSignature);
        }
        let doc: RosterDoc =
            serde_json::from_slice(&self.body).map_err(|e| RosterError::Parse(e.to_string()))?;
        if let Some(held) = held {
            if doc.version <= held {
                return Err(RosterError::NotNewer {
                    offered: doc.version,
                    held,
                });
            }
        }
        Roster::new(doc)
    }

    /// Encode for storage or the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(FORMAT)
            .fixed(&self.authority.0)
            .fixed(&self.signature)
            .bytes(&self.body);
        w.into_bytes()
    }

    /// Decode; garbage is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<SignedRoster, DecodeError> {
        let mut r = Reader::new(bytes);
        let format = r.u8("roster format")?;
        if format != FORMAT {
            return Err(DecodeError::Version(format));
        }
        let authority = NodeKey(r.fixed("roster authority")?);
        let signature = r.fixed("roster signature")?;
        let body = r.bytes("roster body", MAX_ROSTER_BYTES)?.to_vec();
        r.finish()?;
        Ok(SignedRoster {
            authority,
            body,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::NodeEntry;

    fn keys() -> (SecretKey, SecretKey) {
        (
            SecretKey::from_bytes([1; 32]),
            SecretKey::from_bytes([2; 32]),
        )
    }

    #[test]
    fn a_signed_roster_round_trips_and_opens() {
        let (authority, node) = keys();
        let roster = Roster::huiyang()
            .unwrap()
            .with_nodes(
                vec![NodeEntry {
                    key: node.public(),
                    site: "office-qiuchang".into(),
                }],
                2,
            )
            .unwrap();
        let signed = SignedRoster::sign(&roster, &authority).unwrap();
        let back = SignedRoster::decode(&signed.encode()).unwrap();
        let opened = back.open(&authority.public(), Some(1)).unwrap();
        assert_eq!(
            opened.site_of_key(&node.public()).map(|s| s.as_str()),
            Some("office-qiuchang")
        );
    }

    #[test]
    fn a_bad_signature_or_an_old_version_is_refused() {
        let (authority, impostor) = keys();
        let roster = Roster::huiyang().unwrap();
        let mut signed = SignedRoster::sign(&roster, &authority).unwrap();
        assert_eq!(
            signed.open(&authority.public(), Some(1)),
            Err(RosterError::NotNewer {
                offered: 1,
                held: 1
            })
        );
        let forged = SignedRoster::sign(&roster, &impostor).unwrap();
        assert_eq!(
            forged.open(&authority.public(), None),
            Err(RosterError::BadSignature)
        );
        signed.body[10] ^= 1;
        assert_eq!(
            signed.open(&authority.public(), None),
            Err(RosterError::BadSignature)
        );
        assert!(SignedRoster::decode(&[1, 2, 3]).is_err());
    }
}
