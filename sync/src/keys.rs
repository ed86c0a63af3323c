//! ed25519 keys: a node signs its events with the same key that names it on the wire.

use crate::ids::NodeKey;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::fmt;

/// A node's (or the authority's) secret key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}

impl SecretKey {
    /// A key from 32 secret bytes (an ed25519 seed).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(SigningKey::from_bytes(&bytes))
    }
    /// A fresh key from the caller's RNG.
    pub fn generate(rng: &mut impl rand_core::RngCore) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_bytes(seed)
    }
    /// The 32 secret bytes, for storing in the node's directory.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The public key.
    pub fn public(&self) -> NodeKey {
        NodeKey(self.0.verifying_key().to_bytes())
    }
    /// Sign `msg` under a domain separation tag.
    pub(crate) fn sign(&self, domain: &[u8], msg: &[u8]) -> [u8; 64] {
        let mut buf = Vec::with_capacity(domain.len() + msg.len());
        buf.extend_from_slice(domain);
        buf.extend_from_slice(msg);
        self.0.sign(&buf).to_bytes()
    }
}

/// Does `sig` verify `msg` (under `domain`) for `key`? Malformed keys simply do not verify.
pub(crate) fn verify(key: &NodeKey, domain: &[u8], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    let mut buf = Vec::with_capacity(domain.len() + msg.len());
    buf.extend_from_slice(domain);
    buf.extend_from_slice(msg);
    vk.verify(&buf, &Signature::from_bytes(sig)).is_ok()
}
