//! A node's directory and provisioning.
//!
//! ```text
//! NODE_DIR/
//!   site            the site id (for people)
//!   node.key        the node's ed25519 secret, hex (mode 0600)
//!   authority.pub   the district authority's public key, hex
//!   roster.signed   the signed roster the node was provisioned with
//!   store/          the sled store
//!   control.json    written by a running node: loopback control port, token, pid
//! ```

use lawmesh_sync::ids::{hex, unhex, NodeKey, SiteId};
use lawmesh_sync::keys::SecretKey;
use lawmesh_sync::roster::signed::SignedRoster;
use lawmesh_sync::roster::{NodeEntry, Roster, RosterError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a node directory could not be read or written.
#[derive(Debug, Error)]
pub enum DirError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file's content is not what it should be.
    #[error("{path}: {what}")]
    Bad {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// The roster was refused.
    #[error("roster: {0}")]
    Roster(#[from] RosterError),
}

fn read(path: &Path) -> Result<Vec<u8>, DirError> {
    std::fs::read(path).map_err(|source| DirError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), DirError> {
    std::fs::write(path, bytes).map_err(|source| DirError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A node's identity as provisioned.
#[derive(Debug, Clone)]
pub struct NodeDir {
    /// The directory.
    pub path: PathBuf,
    /// The node's secret key.
    pub secret: SecretKey,
    /// The authority's public key.
    pub authority: NodeKey,
    /// The signed roster it was provisioned with.
    pub signed: SignedRoster,
}

impl NodeDir {
    /// Read a node directory.
    pub fn open(path: &Path) -> Result<NodeDir, DirError> {
        let bad = |p: &Path, what: &str| DirError::Bad {
            path: p.display().to_string(),
            what: what.into(),
        };
        let key_path = path.join("node.key");
        let key_text =
            String::from_utf8(read(&key_path)?).map_err(|_| bad(&key_path, "not text"))?;
        let secret =
            unhex::<32>(key_text.trim()).ok_or_else(|| bad(&key_path, "want 64 hex digits"))?;
        let auth_path = path.join("authority.pub");
        let auth_text =
            String::from_utf8(read(&auth_path)?).map_err(|_| bad(&auth_path, "not text"))?;
        let authority = NodeKey(
            unhex::<32>(auth_text.trim()).ok_or_else(|| bad(&auth_path, "want 64 hex digits"))?,
        );
        let roster_path = path.join("roster.signed");
        let signed = SignedRoster::decode(&read(&roster_path)?)
            .map_err(|e| bad(&roster_path, &e.to_string()))?;
        Ok(NodeDir {
            path: path.to_owned(),
            secret: SecretKey::from_bytes(secret),
            authority,
            signed,
        })
    }

    /// The roster it was provisioned with, checked against the authority.
    pub fn roster(&self) -> Result<Roster, DirError> {
        Ok(self.signed.open(&self.authority, None)?)
    }

    /// The sled store's directory.
    pub fn store_path(&self) -> PathBuf {
        self.path.join("store")
    }
}

/// What `lawmesh provision` made.
#[derive(Debug, Serialize)]
pub struct Provisioned {
    /// The output directory.
    pub out: String,
    /// The authority's public key (its secret is in `OUT/authority.key`).
    pub authority: String,
    /// The roster version written.
    pub roster_version: u64,
    /// One node directory per site.
    pub nodes: Vec<ProvisionedNode>,
}

/// One provisioned node.
#[derive(Debug, Serialize)]
pub struct ProvisionedNode {
    /// Site id.
    pub site: SiteId,
    /// Its directory.
    pub dir: String,
    /// Its public key.
    pub key: String,
}

/// Create an authority key and, for every site of `base`, a node directory with a fresh key and
/// the signed roster that registers every node key.
pub fn provision(
    base: &Roster,
    out: &Path,
    rng: &mut impl rand::RngCore,
) -> Result<Provisioned, DirError> {
    std::fs::create_dir_all(out).map_err(|source| DirError::Io {
        path: out.display().to_string(),
        source,
    })?;
    let authority = SecretKey::generate(rng);
    let mut secrets = Vec::new();
    let mut nodes = Vec::new();
    for site in base.sites() {
        let k = SecretKey::generate(rng);
        nodes.push(NodeEntry {
            key: k.public(),
            site: site.id.clone(),
        });
        secrets.push((site.id.clone(), k));
    }
    let version = base.version().max(1) + 1;
    let roster = base.with_nodes(nodes, version)?;
    let signed = SignedRoster::sign(&roster, &authority)?;
    let encoded = signed.encode();
    write(
        &out.join("authority.key"),
        hex(&authority.to_bytes()).as_bytes(),
    )?;
    restrict(&out.join("authority.key"));
    write(
        &out.join("authority.pub"),
        authority.public().to_string().as_bytes(),
    )?;
    write(&out.join("roster.signed"), &encoded)?;
    let mut made = Vec::new();
    for (site, k) in secrets {
        let dir = out.join(site.as_str());
        std::fs::create_dir_all(&dir).map_err(|source| DirError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        write(&dir.join("node.key"), hex(&k.to_bytes()).as_bytes())?;
        restrict(&dir.join("node.key"));
        write(
            &dir.join("authority.pub"),
            authority.public().to_string().as_bytes(),
        )?;
        write(&dir.join("roster.signed"), &encoded)?;
        write(&dir.join("site"), site.as_str().as_bytes())?;
        made.push(ProvisionedNode {
            site,
            dir: dir.display().to_string(),
            key: k.public().to_string(),
        });
    }
    Ok(Provisioned {
        out: out.display().to_string(),
        authority: authority.public().to_string(),
        roster_version: version,
        nodes: made,
    })
}

#[cfg(unix)]
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}
#[cfg(not(unix))]
fn restrict(_path: &Path) {}
