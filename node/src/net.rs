//! The libp2p side: transport, behaviour, keys and message framing.
//!
//! TCP + Noise + Yamux, identify, ping, optional mDNS, and the lawmesh sync protocol as a
//! libp2p stream (`/lawmesh/sync/1`): each side opens one stream per peer and writes
//! length-prefixed frames on it, in order. A frame longer than
//! [`lawmesh_sync::wire::MAX_MESSAGE_BYTES`] is refused before it is read.

use futures::{AsyncReadExt, AsyncWriteExt};
use lawmesh_sync::ids::NodeKey;
use lawmesh_sync::keys::SecretKey;
use lawmesh_sync::wire::MAX_MESSAGE_BYTES;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{identify, identity, mdns, noise, ping, tcp, yamux, PeerId, StreamProtocol, Swarm};
use std::time::Duration;

/// The sync protocol's name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/lawmesh/sync/1");

pub use behaviour::{Behaviour, BehaviourEvent};

#[allow(missing_docs)] // the derive generates an undocumented event enum
mod behaviour {
    use libp2p::swarm::behaviour::toggle::Toggle;
    use libp2p::swarm::NetworkBehaviour;
    use libp2p::{identify, mdns, ping};

    /// The node's network behaviour.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Raw streams for the sync protocol.
        pub stream: libp2p_stream::Behaviour,
        /// Identify (addresses and protocols).
        pub identify: identify::Behaviour,
        /// Liveness.
        pub ping: ping::Behaviour,
        /// LAN discovery, when enabled.
        pub mdns: Toggle<mdns::tokio::Behaviour>,
    }
}

/// The libp2p keypair for a node's key (the same ed25519 key names it on the wire and in books).
pub fn keypair(secret: &SecretKey) -> Result<identity::Keypair, identity::DecodingError> {
    identity::Keypair::ed25519_from_bytes(secret.to_bytes())
}

/// The peer id of a node key.
pub fn peer_id(key: &NodeKey) -> Option<PeerId> {
    let pk = identity::ed25519::PublicKey::try_from_bytes(&key.0).ok()?;
    Some(PeerId::from_public_key(&identity::PublicKey::from(pk)))
}

/// The node key behind a peer id, if it is an ed25519 identity.
pub fn node_key(peer: &PeerId) -> Option<NodeKey> {
    let mh: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if mh.code() != 0 {
        return None; // not an identity multihash: not an ed25519 key
    }
    let pk = identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
    Some(NodeKey(pk.try_into_ed25519().ok()?.to_bytes()))
}

/// Build the swarm.
pub fn build_swarm(secret: &SecretKey, mdns_on: bool) -> Result<Swarm<Behaviour>, String> {
    let keypair = keypair(secret).map_err(|e| format!("node key: {e}"))?;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| format!("transport: {e}"))?
        .with_behaviour(|key| {
            let mdns = if mdns_on {
                mdns::tokio::Behaviour::new(mdns::Config::default(), key.public().to_peer_id()).ok()
            } else {
                None
            };
            Behaviour {
                stream: libp2p_stream::Behaviour::new(),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/lawmesh/1.0.0".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
                mdns: Toggle::from(mdns),
            }
        })
        .map_err(|e| format!("behaviour: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3_600)))
        .build();
    Ok(swarm)
}

/// Write one frame: u32 big-endian length, then the bytes.
pub async fn write_frame<W: futures::AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(bytes).await?;
    w.flush().await
}

/// Read one frame; `Ok(None)` at a clean end of stream. A length over the limit is an error
/// before any of the body is read. The body grows as its bytes arrive (a peer that announces
/// 16 MiB and stalls holds only what it sent), and the complete frame then takes its size from
/// `budget`, so that all the frames read and not yet handled stay within the budget. The permit
/// comes with the frame; the budget is given back when it is dropped.
pub async fn read_frame_within<R: futures::AsyncRead + Unpin>(
    r: &mut R,
    budget: &std::sync::Arc<tokio::sync::Semaphore>,
) -> std::io::Result<Option<(Vec<u8>, tokio::sync::OwnedSemaphorePermit)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len as usize > MAX_MESSAGE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {MAX_MESSAGE_BYTES}"),
        ));
    }
    let mut buf = Vec::new();
    let got = r.take(u64::from(len)).read_to_end(&mut buf).await?;
    if got < len as usize {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("frame cut off after {got} of {len} bytes"),
        ));
    }
    let permit = budget
        .clone()
        .acquire_many_owned(len.max(1))
        .await
        .map_err(|_| std::io::Error::other("node stopping"))?;
    Ok(Some((buf, permit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn frames_wait_for_the_inbound_byte_budget() {
        let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(10));
        let mut data = Vec::new();
        for b in [1u8, 2] {
            data.extend(8u32.to_be_bytes());
            data.extend([b; 8]);
        }
        let mut r = futures::io::Cursor::new(data);
        let (first, held) = futures::executor::block_on(read_frame_within(&mut r, &budget))
            .unwrap()
            .unwrap();
        assert_eq!(first, vec![1; 8]);
        assert_eq!(budget.available_permits(), 2);
        let mut second = Box::pin(read_frame_within(&mut r, &budget));
        assert!(
            second.as_mut().now_or_never().is_none(),
            "the second frame waits while the first is held"
        );
        drop(held);
        let (frame, _held) = futures::executor::block_on(second).unwrap().unwrap();
        assert_eq!(frame, vec![2; 8]);
        assert!(
            futures::executor::block_on(read_frame_within(&mut r, &budget))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn node_keys_and_peer_ids_map_both_ways() {
        let secret = SecretKey::from_bytes([3; 32]);
        let pid = peer_id(&secret.public()).unwrap();
        assert_eq!(node_key(&pid), Some(secret.public()));
        assert_eq!(keypair(&secret).unwrap().public().to_peer_id(), pid);
    }
}
