//! A mesh of real nodes in one process, on loopback: each node with its own sled directory and
//! libp2p socket. Used by `lawmesh demo`, the end-to-end tests and the benchmarks.

use crate::clock::Clock;
use crate::dir;
use crate::node::{self, Node, NodeConfig};
use crate::ops::Request;
use lawmesh_sync::ids::{BookId, NodeKey, SiteId};
use lawmesh_sync::roster::{Roster, SiteKind};
use libp2p::Multiaddr;
use rand::SeedableRng;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// One node of the mesh.
#[derive(Debug)]
pub struct MeshNode {
    /// The running node.
    pub node: Node,
    /// Its key.
    pub key: NodeKey,
    /// Its dialable address, with `/p2p/<peer id>`.
    pub addr: Multiaddr,
    /// Its directory.
    pub dir: PathBuf,
}

/// Nodes on loopback.
#[derive(Debug)]
pub struct Mesh {
    /// Holds the node directories (removed on drop).
    pub root: tempfile::TempDir,
    /// The clock every node reads.
    pub clock: Clock,
    /// The roster, with every node key registered.
    pub roster: Roster,
    /// The nodes by site.
    pub nodes: BTreeMap<SiteId, MeshNode>,
    /// Links asked for (a dials b).
    pub links: BTreeSet<(SiteId, SiteId)>,
}

impl Mesh {
    /// Provision `base` in a fresh temporary directory and start a node for each of `sites`
    /// (all sites if `None`) on 127.0.0.1.
    pub async fn start(
        base: &Roster,
        sites: Option<&[&str]>,
        clock: Clock,
        seed: u64,
    ) -> Result<Mesh, String> {
        let root = tempfile::Builder::new()
            .prefix("lawmesh-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        dir::provision(base, root.path(), &mut rng).map_err(|e| e.to_string())?;
        let roster = crate::dir::NodeDir::open(&root.path().join(base.sites()[0].id.as_str()))
            .and_then(|d| d.roster())
            .map_err(|e| e.to_string())?;
        let wanted: Vec<SiteId> = match sites {
            Some(s) => s.iter().map(|x| SiteId::from(*x)).collect(),
            None => roster.sites().iter().map(|s| s.id.clone()).collect(),
        };
        let mut nodes = BTreeMap::new();
        for site in wanted {
            let node = start_node(root.path().join(site.as_str()), clock.clone()).await?;
            nodes.insert(site, node);
        }
        Ok(Mesh {
            root,
            clock,
            roster,
            nodes,
            links: BTreeSet::new(),
        })
    }

    /// Restart a node from its directory (after [`Mesh::stop`]).
    pub async fn restart(&mut self, site: &str) -> Result<(), String> {
        // sled lets go of its lock file a moment after the last handle is dropped.
        let mut tries = 0;
        let node = loop {
            match start_node(self.root.path().join(site), self.clock.clone()).await {
                Ok(node) => break node,
                Err(e) if e.contains("could not acquire lock") && tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.nodes.insert(SiteId::from(site), node);
        let links: Vec<(SiteId, SiteId)> = self
            .links
            .iter()
            .filter(|(a, b)| a.as_str() == site || b.as_str() == site)
            .cloned()
            .collect();
        for (a, b) in links {
            self.dial(a.as_str(), b.as_str()).await;
        }
        Ok(())
    }

    /// Stop a node (cleanly).
    pub async fn stop(&mut self, site: &str) {
        if let Some(n) = self.nodes.remove(&SiteId::from(site)) {
            n.node.client.shutdown().await;
            // The loop has answered; wait until it is gone and its store closed.
            let _ = n.node.task.await;
        }
    }

    /// The node of a site.
    pub fn node(&self, site: &str) -> Option<&MeshNode> {
        self.nodes.get(&SiteId::from(site))
    }

    /// Ask a site's node.
    pub async fn request(&self, site: &str, req: Request) -> Result<Value, String> {
        let n = self.node(site).ok_or_else(|| format!("no node {site}"))?;
        n.node.client.request(req).await
    }

    async fn dial(&self, a: &str, b: &str) {
        if let (Some(na), Some(nb)) = (self.node(a), self.node(b)) {
            na.node.client.dial(nb.addr.clone()).await;
        }
    }

    /// `a` dials `b` (and will again after a restart).
    pub async fn link(&mut self, a: &str, b: &str) {
        self.links.insert((SiteId::from(a), SiteId::from(b)));
        self.dial(a, b).await;
    }

    /// Cut the link between `a` and `b` (both sides refuse each other until healed).
    pub async fn cut(&self, a: &str, b: &str) {
        if let (Some(na), Some(nb)) = (self.node(a), self.node(b)) {
            na.node.client.set_links(vec![nb.key], false).await;
            nb.node.client.set_links(vec![na.key], false).await;
        }
    }

    /// Restore a cut link and dial it again.
    pub async fn heal(&self, a: &str, b: &str) {
        if let (Some(na), Some(nb)) = (self.node(a), self.node(b)) {
            na.node.client.set_links(vec![nb.key], true).await;
            nb.node.client.set_links(vec![na.key], true).await;
        }
        if self.links.contains(&(SiteId::from(a), SiteId::from(b))) {
            self.dial(a, b).await;
        } else {
            self.dial(b, a).await;
        }
    }

    /// The links of the Huiyang mesh: villages to their office; offices to their paired firm
    /// and the district centre; firms, notary office, tax centre and veterans' home to the
    /// district centre; the district centre to the city centre.
    pub fn district_links(roster: &Roster) -> Vec<(SiteId, SiteId)> {
        let mut out = Vec::new();
        let district = roster
            .sites()
            .iter()
            .find(|s| s.kind == SiteKind::DistrictCentre)
            .map(|s| s.id.clone());
        let city = roster
            .sites()
            .iter()
            .find(|s| s.kind == SiteKind::CityCentre)
            .map(|s| s.id.clone());
        for s in roster.sites() {
            match s.kind {
                SiteKind::VillageKiosk => {
                    if let Some(desk) = s
                        .area
                        .as_ref()
                        .and_then(|a| roster.area(a))
                        .map(|a| a.desk.clone())
                    {
                        out.push((s.id.clone(), desk));
                    }
                }
                SiteKind::JudicialOffice => {
                    if let Some(f) = roster.paired_firm(&s.id) {
                        out.push((s.id.clone(), f.clone()));
                    }
                    out.extend(district.clone().map(|d| (s.id.clone(), d)));
                }
                SiteKind::Firm
                | SiteKind::NotaryOffice
                | SiteKind::TaxCentre
                | SiteKind::VeteransHome => {
                    out.extend(district.clone().map(|d| (s.id.clone(), d)));
                }
                SiteKind::DistrictCentre => out.extend(city.clone().map(|c| (s.id.clone(), c))),
                SiteKind::CityCentre => {}
            }
        }
        out
    }

    /// Wait until every link asked for has a sync stream up (or the timeout passes).
    pub async fn wait_linked(&self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut missing = Vec::new();
            for (a, b) in &self.links {
                let Some(na) = self.nodes.get(a) else {
                    continue;
                };
                if !self.nodes.contains_key(b) {
                    continue;
                }
                let status = na.node.client.request(Request::Status).await?;
                let up = status["peers"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["site"] == b.as_str()));
                if !up {
                    missing.push(format!("{a}→{b}"));
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("links not up: {}", missing.join(", ")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every node's books: site → book → heads hash.
    pub async fn books(&self) -> Result<BTreeMap<SiteId, BTreeMap<String, String>>, String> {
        let mut out = BTreeMap::new();
        for (site, n) in &self.nodes {
            let v = n.node.client.request(Request::Books).await?;
            let books = v["books"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| {
                    Some((
                        b["book"].as_str()?.to_owned(),
                        b["heads"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            out.insert(site.clone(), books);
        }
        Ok(out)
    }

    /// Differences left between running replicas: for every book any node holds, every running
    /// node entitled to it must hold it with the same heads. Empty when converged.
    pub async fn divergence(&self) -> Result<Vec<String>, String> {
        let all = self.books().await?;
        let mut books: BTreeSet<&String> = BTreeSet::new();
        for b in all.values() {
            books.extend(b.keys());
        }
        let mut problems = Vec::new();
        for book in books {
            let Ok(id) = book.parse::<BookId>() else {
                continue;
            };
            let mut seen: BTreeMap<&String, Vec<&SiteId>> = BTreeMap::new();
            for (site, held) in &all {
                if !self.roster.entitled(site, &id) {
                    if held.contains_key(book) {
                        problems.push(format!("{site} holds {book} without being entitled"));
                    }
                    continue;
                }
                match held.get(book) {
                    Some(h) => seen.entry(h).or_default().push(site),
                    None => problems.push(format!("{site} lacks {book}")),
                }
            }
            if seen.len() > 1 {
                problems.push(format!(
                    "{book} differs between {:?}",
                    seen.values().collect::<Vec<_>>()
                ));
            }
        }
        Ok(problems)
    }

    /// Wait until [`Mesh::divergence`] is empty, or return what is left at the timeout.
    pub async fn converge(&self, timeout: Duration) -> Result<(), Vec<String>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = self.divergence().await.map_err(|e| vec![e])?;
            if left.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(left);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop every node.
    pub async fn shutdown(self) {
        for n in self.nodes.values() {
            n.node.client.shutdown().await;
        }
    }
}

async fn start_node(dir: PathBuf, clock: Clock) -> Result<MeshNode, String> {
    let config = NodeConfig {
        dir: dir.clone(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().map_err(|e| format!("{e}"))?],
        peers: Vec::new(),
        mdns: false,
        clock,
        control: true,
    };
    let node = node::start(config).await.map_err(|e| e.to_string())?;
    let key = crate::dir::NodeDir::open(&dir)
        .map_err(|e| e.to_string())?
        .secret
        .public();
    let addr = node
        .listen_addrs
        .first()
        .cloned()
        .ok_or("node has no listen address")?
        .with(libp2p::multiaddr::Protocol::P2p(node.peer_id));
    Ok(MeshNode {
        node,
        key,
        addr,
        dir,
    })
}
