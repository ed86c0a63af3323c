//! The running node: a tokio event loop around the sync replica, in the Client / EventLoop /
//! Event shape.
//!
//! - [`Client`] (cloneable) sends [`Command`]s over a channel, each with a oneshot reply.
//! - [`EventLoop::run`] owns the replica, the sled store and the libp2p swarm and `select!`s
//!   over swarm events, commands, frames from peers and the replica's wake-up time. It carries
//!   out the replica's effects: persist and flush first, then send.
//! - [`Event`]s (a broadcast channel) tell screens and the demo what changed.

use crate::clock::Clock;
use crate::dir::NodeDir;
use crate::net::{self, Behaviour, BehaviourEvent, SYNC_PROTOCOL};
use crate::ops::{self, Request};
use crate::store::{Store, StoreError};
use futures::StreamExt;
use lawmesh_sync::ids::{BookId, NodeKey, OrderId, SiteId};
use lawmesh_sync::replica::{Effects, Persist, Replica};
use lawmesh_sync::time::Millis;
use libp2p::swarm::{dial_opts::DialOpts, ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use rand::SeedableRng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Frames queued per peer before the peer counts as too slow and is disconnected.
pub const PEER_QUEUE: usize = 4_096;
/// Bytes queued for one peer before it counts as too slow and is disconnected.
pub const PEER_QUEUE_BYTES: usize = 64 << 20;
/// Bytes read from peers and not yet handled, all peers together (readers wait beyond it).
pub const INBOUND_BYTES: usize = 64 << 20;
/// Longest wait between redials of a configured peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A dialled connection that stays up this long counts as working: its backoff starts over.
const CONNECTION_LASTED: Duration = Duration::from_secs(10);
/// Books with more stored chunks than this are compacted into one snapshot.
pub const COMPACT_AFTER_CHUNKS: usize = 256;

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's directory (see [`crate::dir`]).
    pub dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial and keep dialling.
    pub peers: Vec<Multiaddr>,
    /// LAN discovery.
    pub mdns: bool,
    /// The clock.
    pub clock: Clock,
    /// Serve the loopback control API and write `control.json`.
    pub control: bool,
}

/// Why a node could not start.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The node directory.
    #[error(transparent)]
    Dir(#[from] crate::dir::DirError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored book does not load.
    #[error("stored book {book} does not load: {why}")]
    Book {
        /// The book.
        book: BookId,
        /// Why.
        why: String,
    },
    /// The network.
    #[error("network: {0}")]
    Net(String),
    /// The replica.
    #[error("{0}")]
    Replica(String),
}

/// What changed, for screens, the demo and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An order's state may have changed.
    OrderChanged {
        /// Its book.
        book: BookId,
        /// The order.
        order: OrderId,
    },
    /// A peer's sync stream is up.
    PeerConnected {
        /// Its site.
        site: SiteId,
    },
    /// A peer went away.
    PeerDisconnected {
        /// Its site.
        site: SiteId,
    },
    /// A peer was refused (not in the roster, or misbehaved).
    Refused {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
}

/// A command to the event loop.
#[derive(Debug)]
pub enum Command {
    /// A request from a kiosk, console or the CLI.
    Request(Request, oneshot::Sender<Result<Value, String>>),
    /// Cut (or restore) the links to these peers, as a pulled cable would (demo and tests).
    SetLinks {
        /// The peers.
        peers: Vec<NodeKey>,
        /// Up or down.
        up: bool,
        /// Done.
        reply: oneshot::Sender<()>,
    },
    /// Add a peer to dial and keep dialling (with backoff), and dial it now.
    Dial(Multiaddr),
    /// Stop.
    Shutdown(oneshot::Sender<()>),
}

/// A handle on a running node.
#[derive(Clone, Debug)]
pub struct Client {
    tx: mpsc::Sender<Command>,
}

impl Client {
    /// Send a request and wait for the answer.
    pub async fn request(&self, req: Request) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Request(req, tx))
            .await
            .map_err(|_| "node stopped".to_owned())?;
        rx.await.map_err(|_| "node stopped".to_owned())?
    }

    /// Cut or restore links to these peers.
    pub async fn set_links(&self, peers: Vec<NodeKey>, up: bool) {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Command::SetLinks { peers, up, reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Dial an address.
    pub async fn dial(&self, addr: Multiaddr) {
        let _ = self.tx.send(Command::Dial(addr)).await;
    }

    /// Stop the node and wait until it has.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// A started node.
#[derive(Debug)]
pub struct Node {
    /// Its client.
    pub client: Client,
    /// Its events.
    pub events: broadcast::Receiver<Event>,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its site.
    pub site: SiteId,
    /// Where it listens.
    pub listen_addrs: Vec<Multiaddr>,
    /// The loop's task.
    pub task: tokio::task::JoinHandle<()>,
    /// How long start-up took (open store, load books, listen).
    pub startup: Duration,
    /// Its store's fault injector, for tests of a failing disk.
    pub faults: crate::store::Faults,
}

/// The writer task of a connected peer.
struct Writer {
    /// Its generation: a failure report from an older writer is ignored.
    gen: u64,
    tx: mpsc::Sender<Vec<u8>>,
    /// Bytes queued and not yet written.
    queued: Arc<AtomicUsize>,
}

enum Inbound {
    /// A frame, holding its share of the inbound byte budget until it is handled.
    Frame(PeerId, Vec<u8>, tokio::sync::OwnedSemaphorePermit),
    /// A stream broke: a writer (with its generation) or a reader that met a protocol
    /// violation (`None`).
    StreamFailed(PeerId, Option<u64>, String),
}

struct DialTarget {
    addr: Multiaddr,
    peer: Option<PeerId>,
    connection: Option<ConnectionId>,
    backoff: Duration,
    next_at: Instant,
    /// When the current connection came up: a connection that lasts resets the backoff, one
    /// the peer drops at once (it refuses us, say) doubles it.
    up_since: Option<Instant>,
}

/// The first wait before redialling a peer.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

impl DialTarget {
    /// A peer to dial now.
    fn new(addr: Multiaddr) -> DialTarget {
        DialTarget {
            peer: peer_of_addr(&addr),
            addr,
            connection: None,
            backoff: FIRST_BACKOFF,
            next_at: Instant::now(),
            up_since: None,
        }
    }

    /// The dial or the connection ended: try again after the backoff, which starts over if the
    /// connection had lasted and doubles (up to [`MAX_BACKOFF`]) if not.
    fn retry_later(&mut self, lasted: bool) {
        self.connection = None;
        if lasted {
            self.backoff = FIRST_BACKOFF;
        }
        self.next_at = Instant::now() + self.backoff;
        if !lasted {
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// The event loop.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    replica: Replica,
    store: Store,
    clock: Clock,
    rng: rand::rngs::StdRng,
    commands: mpsc::Receiver<Command>,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound: mpsc::Receiver<Inbound>,
    /// The writer task of each connected peer, with its generation.
    writers: HashMap<PeerId, Writer>,
    writer_gen: u64,
    control: libp2p_stream::Control,
    blocked: HashSet<PeerId>,
    dials: Vec<DialTarget>,
    events: broadcast::Sender<Event>,
    wake_at: Option<Millis>,
    chunk_counts: BTreeMap<BookId, usize>,
    /// Books whose last write or flush failed: on disk only up to an earlier point. The next
    /// write to one of them is preceded by a whole snapshot, since new changes depend on what
    /// is missing.
    unsaved: BTreeSet<BookId>,
    /// Timer wake-ups so far (reported in the status).
    ticks: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

/// Open the node's directory and store, load its books, listen, and start its event loop.
pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
    let started = Instant::now();
    let dir = NodeDir::open(&config.dir)?;
    let store = Store::open(&dir.store_path())?;
    let mut rng = rand::rngs::StdRng::from_entropy();
    let restored = crate::restore::restore(&dir, &store, config.clock.now(), &mut rng)?;
    if restored.marked {
        store.flush().await?;
    }
    let replica = restored.replica;
    let site = replica.site().clone();
    let faults = store.faults();

    let mut swarm = net::build_swarm(&dir.secret, config.mdns).map_err(NodeError::Net)?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Net(format!("listen on {addr}: {e}")))?;
    }
    let mut listen_addrs = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while listen_addrs.len() < config.listen.len() {
        match tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
            Ok(SwarmEvent::NewListenAddr { address, .. }) => listen_addrs.push(address),
            Ok(SwarmEvent::ListenerError { error, .. }) => {
                return Err(NodeError::Net(format!("listener: {error}")))
            }
            Ok(_) => {}
            Err(_) => return Err(NodeError::Net("no listen address within 5 s".into())),
        }
    }
    let peer_id = *swarm.local_peer_id();
    let mut control = swarm.behaviour().stream.new_control();
    let incoming = control
        .accept(SYNC_PROTOCOL)
        .map_err(|_| NodeError::Net("sync protocol registered twice".into()))?;

    let (cmd_tx, cmd_rx) = mpsc::channel(1_024);
    let (inbound_tx, inbound_rx) = mpsc::channel(PEER_QUEUE);
    let (events_tx, events_rx) = broadcast::channel(16_384);
    let client = Client { tx: cmd_tx };

    spawn_acceptor(incoming, inbound_tx.clone());
    if config.control {
        crate::control::serve(&config.dir, client.clone(), std::process::id())
            .await
            .map_err(|e| NodeError::Net(format!("control API: {e}")))?;
    }
    let dials = config.peers.iter().cloned().map(DialTarget::new).collect();
    let mut el = EventLoop {
        swarm,
        replica,
        store,
        clock: config.clock,
        rng,
        commands: cmd_rx,
        inbound_tx,
        inbound: inbound_rx,
        writers: HashMap::new(),
        writer_gen: 0,
        control,
        blocked: HashSet::new(),
        dials,
        events: events_tx,
        wake_at: None,
        chunk_counts: restored.chunk_counts,
        unsaved: BTreeSet::new(),
        ticks: 0,
        bytes_sent: 0,
        bytes_received: 0,
    };
    let startup = started.elapsed();
    tracing::info!(site = %site, peer_id = %peer_id, books = el.replica.books().count(), startup_ms = startup.as_millis() as u64, "node started");
    let now = el.clock.now();
    let fx = el.replica.tick(now);
    el.wake_at = fx.wake_at;
    let task = tokio::spawn(el.run());
    Ok(Node {
        client,
        events: events_rx,
        peer_id,
        site,
        listen_addrs,
        task,
        startup,
        faults,
    })
}

fn peer_of_addr(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

fn spawn_acceptor(mut incoming: libp2p_stream::IncomingStreams, tx: mpsc::Sender<Inbound>) {
    // Bytes read from all peers and not yet handled: readers wait when it is spent.
    let budget = Arc::new(tokio::sync::Semaphore::new(INBOUND_BYTES));
    tokio::spawn(async move {
        while let Some((peer, mut stream)) = incoming.next().await {
            let tx = tx.clone();
            let budget = budget.clone();
            tokio::spawn(async move {
                loop {
                    match net::read_frame_within(&mut stream, &budget).await {
                        Ok(Some((frame, permit))) => {
                            if tx.send(Inbound::Frame(peer, frame, permit)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => return,
                        // A protocol violation closes the connection. Any other error is the
                        // stream going away (perhaps an old connection's, after the peer came
                        // back on a new one): nothing to close.
                        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                            let _ = tx
                                .send(Inbound::StreamFailed(peer, None, e.to_string()))
                                .await;
                            return;
                        }
                        Err(e) => {
                            tracing::debug!(peer = %peer, error = %e, "sync stream ended");
                            return;
                        }
                    }
                }
            });
        }
    });
}

impl EventLoop {
    /// Run until shut down.
    pub async fn run(mut self) {
        let mut redial = tokio::time::interval(Duration::from_millis(200));
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self
                .wake_at
                .map(|ms| tokio::time::Instant::from_std(self.clock.instant_for(ms)))
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3_600));
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev).await,
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown(done)) => {
                        // Books behind on disk after a failed write are written whole first.
                        let flushed = match self.write_behind() {
                            Ok(_) => self.store.flush().await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = flushed {
                            tracing::error!(error = %e, "last flush before stopping failed");
                        }
                        let _ = done.send(());
                        tracing::info!(site = %self.replica.site(), "node stopped");
                        return;
                    }
                    Some(cmd) => self.on_command(cmd).await,
                    None => return,
                },
                Some(inb) = self.inbound.recv() => self.on_inbound(inb).await,
                _ = tokio::time::sleep_until(wake) => {
                    self.ticks += 1;
                    let fx = self.replica.tick(self.clock.now());
                    // The tick says when to wake next, or that nothing is due: then sleep.
                    self.wake_at = fx.wake_at;
                    self.apply(fx).await.ok();
                }
                _ = redial.tick() => self.redial(),
            }
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Request(Request::Status, reply) => {
                let mut status = ops::status_json(&self.replica, self.replica.site());
                let peers: Vec<Value> = self
                    .replica
                    .peers()
                    .map(|(k, site)| json!({"site": site, "key": k.to_string(), "peer_id": net::peer_id(k).map(|p| p.to_string())}))
                    .collect();
                status["peers"] = json!(peers);
                status["peer_id"] = json!(self.swarm.local_peer_id().to_string());
                status["listen"] = json!(self
                    .swarm
                    .listeners()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>());
                status["store_bytes"] = json!(self.store.size_on_disk());
                status["quarantined"] = json!(self.store.quarantined());
                status["bytes_sent"] = json!(self.bytes_sent);
                status["bytes_received"] = json!(self.bytes_received);
                status["ticks"] = json!(self.ticks);
                let _ = reply.send(Ok(status));
            }
            Command::Request(req, reply) => {
                let now = self.clock.now();
                let new_order = matches!(req, Request::NewOrder { .. });
                let answer = match ops::execute(&mut self.replica, now, &mut self.rng, req) {
                    Ok((value, fx)) => match self.apply(fx).await {
                        Ok(()) => Ok(value),
                        Err(e) if new_order => {
                            self.withdraw(&value).await;
                            Err(e.to_string())
                        }
                        Err(e) => Err(format!(
                            "{e}; the action is kept in this node's memory and is written with \
                             the book's next write: look at the order before repeating it"
                        )),
                    },
                    Err(e) => Err(e),
                };
                let _ = reply.send(answer);
            }
            Command::SetLinks { peers, up, reply } => {
                for key in peers {
                    let Some(pid) = net::peer_id(&key) else {
                        continue;
                    };
                    if up {
                        self.blocked.remove(&pid);
                    } else {
                        self.blocked.insert(pid);
                        let _ = self.swarm.disconnect_peer_id(pid);
                    }
                }
                let _ = reply.send(());
            }
            Command::Dial(addr) => match self.dials.iter_mut().find(|d| d.addr == addr) {
                Some(d) => d.next_at = Instant::now(),
                None => self.dials.push(DialTarget::new(addr)),
            },
            Command::Shutdown(_) => {}
        }
    }

    async fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                for d in self
                    .dials
                    .iter_mut()
                    .filter(|d| d.connection == Some(connection_id))
                {
                    d.peer = Some(peer_id);
                    d.up_since = Some(Instant::now());
                }
                let key = net::node_key(&peer_id);
                let site = key.and_then(|k| self.replica.roster().site_of_key(&k).cloned());
                let (Some(key), Some(site)) = (key, site) else {
                    tracing::warn!(peer = %peer_id, "connection from a key not in the roster: closed");
                    let _ = self.events.send(Event::Refused {
                        peer: peer_id.to_string(),
                        reason: "not in the roster".into(),
                    });
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                if self.blocked.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if num_established.get() == 1 || !self.writers.contains_key(&peer_id) {
                    self.open_writer(peer_id);
                    let fx = self.replica.connected(self.clock.now(), key);
                    tracing::info!(peer = %peer_id, site = %site, "peer connected");
                    let _ = self.events.send(Event::PeerConnected { site });
                    self.apply(fx).await.ok();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                for d in self
                    .dials
                    .iter_mut()
                    .filter(|d| d.connection == Some(connection_id))
                {
                    let lasted = d.up_since.take().map(|t| t.elapsed());
                    d.retry_later(lasted.is_some_and(|l| l >= CONNECTION_LASTED));
                }
                if num_established == 0 && self.writers.remove(&peer_id).is_some() {
                    if let Some(key) = net::node_key(&peer_id) {
                        let site = self.replica.roster().site_of_key(&key).cloned();
                        let fx = self.replica.disconnected(self.clock.now(), key);
                        self.apply(fx).await.ok();
                        if let Some(site) = site {
                            tracing::info!(peer = %peer_id, site = %site, "peer disconnected");
                            let _ = self.events.send(Event::PeerDisconnected { site });
                        }
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                for d in self
                    .dials
                    .iter_mut()
                    .filter(|d| d.connection == Some(connection_id))
                {
                    tracing::debug!(addr = %d.addr, %error, "dial failed");
                    d.retry_later(false);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(libp2p::mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    let known = net::node_key(&peer)
                        .is_some_and(|k| self.replica.roster().site_of_key(&k).is_some());
                    if known && !self.swarm.is_connected(&peer) && !self.blocked.contains(&peer) {
                        let _ = self
                            .swarm
                            .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
                    }
                }
            }
            _ => {}
        }
    }

    fn open_writer(&mut self, peer: PeerId) {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(PEER_QUEUE);
        self.writer_gen += 1;
        let gen = self.writer_gen;
        let queued = Arc::new(AtomicUsize::new(0));
        self.writers.insert(
            peer,
            Writer {
                gen,
                tx,
                queued: queued.clone(),
            },
        );
        let mut control = self.control.clone();
        let failed = self.inbound_tx.clone();
        tokio::spawn(async move {
            let mut stream = match control.open_stream(peer, SYNC_PROTOCOL).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = failed
                        .send(Inbound::StreamFailed(peer, Some(gen), e.to_string()))
                        .await;
                    return;
                }
            };
            while let Some(frame) = rx.recv().await {
                let written = net::write_frame(&mut stream, &frame).await;
                queued.fetch_sub(frame.len(), Ordering::Relaxed);
                if let Err(e) = written {
                    let _ = failed
                        .send(Inbound::StreamFailed(peer, Some(gen), e.to_string()))
                        .await;
                    return;
                }
            }
        });
    }

    async fn on_inbound(&mut self, inb: Inbound) {
        match inb {
            Inbound::Frame(peer, bytes, _permit) => {
                let Some(key) = net::node_key(&peer) else {
                    return;
                };
                if !self.writers.contains_key(&peer) {
                    return; // not (or no longer) an accepted peer
                }
                self.bytes_received += bytes.len() as u64;
                let now = self.clock.now();
                let fx = self.replica.receive(now, &mut self.rng, key, &bytes);
                self.apply(fx).await.ok();
            }
            Inbound::StreamFailed(peer, gen, why) => {
                let current = self.writers.get(&peer).map(|w| w.gen);
                if gen.is_some() && gen != current {
                    return; // an old connection's writer; the peer is back on a new one
                }
                tracing::warn!(peer = %peer, %why, "sync stream failed: closing the connection");
                let _ = self.events.send(Event::Refused {
                    peer: peer.to_string(),
                    reason: why,
                });
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }

    fn redial(&mut self) {
        let now = Instant::now();
        for d in &mut self.dials {
            let connected = d.peer.is_some_and(|p| self.swarm.is_connected(&p));
            let blocked = d.peer.is_some_and(|p| self.blocked.contains(&p));
            if connected || blocked || d.connection.is_some() || now < d.next_at {
                continue;
            }
            let opts = DialOpts::unknown_peer_id().address(d.addr.clone()).build();
            let id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => d.connection = Some(id),
                Err(e) => {
                    tracing::debug!(addr = %d.addr, %e, "dial refused");
                    d.retry_later(false);
                }
            }
        }
    }

    /// Cancel a refused new order (see [`ops::withdraw`]). Its book is already among the
    /// `unsaved`, so `apply` writes it whole first.
    async fn withdraw(&mut self, refused: &Value) {
        let Some((_, fx)) = ops::withdraw(&mut self.replica, self.clock.now(), refused) else {
            return;
        };
        if let Err(e) = self.apply(fx).await {
            tracing::warn!(error = %e, "refused order cancelled in memory; written with the book's next write");
        }
    }

    /// Carry out effects: persist and flush first; only then send, notify and acknowledge.
    async fn apply(&mut self, fx: Effects) -> Result<(), StoreError> {
        // The replica's timers changed whether or not the writes succeed.
        if fx.wake_at.is_some() {
            self.wake_at = fx.wake_at;
        }
        let books: BTreeSet<BookId> = fx
            .persist
            .iter()
            .filter_map(|p| match p {
                Persist::BookChunk { book, .. } | Persist::BookSnapshot { book, .. } => {
                    Some(book.clone())
                }
                _ => None,
            })
            .collect();
        if let Err(e) = self.persist(&fx).await {
            tracing::error!(error = %e, "store write failed; nothing sent or acknowledged");
            self.unsaved.extend(books);
            return Err(e);
        }
        self.unsaved.clear();
        self.after_persist(fx, books).await;
        Ok(())
    }

    /// Write and flush an effect's persist items. A book whose earlier write failed is written
    /// whole first.
    async fn persist(&mut self, fx: &Effects) -> Result<(), StoreError> {
        let mut must_flush = self.write_behind()?;
        for p in &fx.persist {
            must_flush |= self.store.write(p)?;
            match p {
                Persist::BookChunk { book, .. } => {
                    *self.chunk_counts.entry(book.clone()).or_default() += 1;
                }
                Persist::BookSnapshot { book, .. } => {
                    self.chunk_counts.insert(book.clone(), 1);
                }
                _ => {}
            }
        }
        if must_flush {
            self.store.flush().await?;
        }
        Ok(())
    }

    /// Write every book that is behind on disk after a failed write whole (a snapshot replaces
    /// its chunks), before anything else is written: changes written after it depend on what is
    /// missing, and any flush that succeeds must carry it. Returns whether anything was written.
    fn write_behind(&mut self) -> Result<bool, StoreError> {
        let behind: Vec<BookId> = self.unsaved.iter().cloned().collect();
        for book in &behind {
            if let Some(snapshot) = self.replica.compact(book) {
                self.store.write(&snapshot)?;
                self.chunk_counts.insert(book.clone(), 1);
            }
        }
        Ok(!behind.is_empty())
    }

    /// Once an effect's writes are durable: compact what grew, send, report, note the wake-up.
    async fn after_persist(&mut self, fx: Effects, books: BTreeSet<BookId>) {
        for book in books {
            if self
                .chunk_counts
                .get(&book)
                .is_none_or(|n| *n <= COMPACT_AFTER_CHUNKS)
            {
                continue;
            }
            if let Some(snapshot) = self.replica.compact(&book) {
                if self.store.write(&snapshot).is_ok() && self.store.flush().await.is_ok() {
                    self.chunk_counts.insert(book, 1);
                } else {
                    self.unsaved.insert(book);
                }
            }
        }
        for out in fx.send {
            let Some(pid) = net::peer_id(&out.to) else {
                continue;
            };
            if let Some(w) = self.writers.get(&pid) {
                let len = out.bytes.len();
                self.bytes_sent += len as u64;
                // Counted before the send (the writer may subtract as soon as it is queued),
                // taken back if it is not queued.
                let over = w.queued.fetch_add(len, Ordering::Relaxed) + len > PEER_QUEUE_BYTES;
                let queued = !over && w.tx.try_send(out.bytes).is_ok();
                if !queued {
                    w.queued.fetch_sub(len, Ordering::Relaxed);
                    tracing::warn!(peer = %pid, "peer not reading: closing the connection");
                    let _ = self.swarm.disconnect_peer_id(pid);
                }
            }
        }
        for r in fx.refused {
            tracing::warn!(peer = %r.peer, reason = %r.reason, "peer refused: closing the connection");
            let _ = self.events.send(Event::Refused {
                peer: r.peer.to_string(),
                reason: r.reason,
            });
            if let Some(pid) = net::peer_id(&r.peer) {
                let _ = self.swarm.disconnect_peer_id(pid);
            }
        }
        for (book, order) in fx.changed {
            let _ = self.events.send(Event::OrderChanged { book, order });
        }
    }
}
