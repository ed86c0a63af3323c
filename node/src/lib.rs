//! # lawmesh-node: the node that runs at every kiosk, office, firm and centre
//!
//! It carries out what the sync core ([`lawmesh_sync`]) decides: a sled [`store`], a libp2p
//! swarm ([`net`]), a tokio event loop ([`node`]), the loopback [`control`] API, the `lawmesh`
//! command line ([`cli`]) and the Huiyang [`demo`].

pub mod cli;
pub mod clock;
pub mod control;
pub mod demo;
pub mod dir;
pub mod direct;
pub mod mesh;
pub mod net;
pub mod node;
pub mod ops;
pub mod restore;
pub mod store;
