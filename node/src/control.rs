//! The loopback control API: how the CLI (and a kiosk screen) talk to a running node.
//!
//! The node listens on 127.0.0.1 on a free port and writes `NODE_DIR/control.json`:
//! `{"port": P, "token": "…", "pid": N}` (mode 0600). A client connects, writes one JSON line
//! `{"token": "…", "request": {"cmd": …}}` and reads one JSON line back:
//! `{"ok": true, "result": …}` or `{"ok": false, "error": "…"}`. A wrong token gets an error and
//! the connection is closed; nothing is done.

use crate::node::Client;
use crate::ops::Request;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest request line accepted.
pub const MAX_REQUEST: usize = 1 << 20;

/// What a running node writes into its directory.
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlFile {
    /// Loopback port.
    pub port: u16,
    /// Shared secret for requests.
    pub token: String,
    /// The node's process id.
    pub pid: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    token: String,
    request: Request,
}

/// Why a control call failed.
#[derive(Debug, Error)]
pub enum ControlError {
    /// No node is running for that directory (no control file, or nobody listening).
    #[error("no node running for this directory")]
    NotRunning,
    /// The node answered with an error.
    #[error("{0}")]
    Refused(String),
    /// The exchange broke off.
    #[error("control connection: {0}")]
    Io(String),
}

/// Start serving; writes `control.json`.
pub async fn serve(dir: &Path, client: Client, pid: u32) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let mut raw = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let token = lawmesh_sync::ids::hex(&raw);
    let file = ControlFile {
        port,
        token: token.clone(),
        pid,
    };
    let path = dir.join("control.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&file).map_err(std::io::Error::other)?,
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            let client = client.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let _ = handle(conn, client, &token).await;
            });
        }
    });
    Ok(())
}

async fn handle(conn: TcpStream, client: Client, token: &str) -> std::io::Result<()> {
    let (r, mut w) = conn.into_split();
    let mut reader = BufReader::new(r).take(MAX_REQUEST as u64);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let answer = match serde_json::from_str::<Envelope>(&line) {
        Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
        Ok(env) if env.token != token => json!({"ok": false, "error": "wrong control token"}),
        Ok(env) => match client.request(env.request).await {
            Ok(result) => json!({"ok": true, "result": result}),
            Err(error) => json!({"ok": false, "error": error}),
        },
    };
    let mut out = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    out.push(b'\n');
    w.write_all(&out).await?;
    w.shutdown().await
}

/// Call the node running for `dir`.
pub async fn call(dir: &Path, request: &Request) -> Result<Value, ControlError> {
    let Ok(bytes) = std::fs::read(dir.join("control.json")) else {
        return Err(ControlError::NotRunning);
    };
    let file: ControlFile = serde_json::from_slice(&bytes).map_err(|_| ControlError::NotRunning)?;
    let Ok(conn) = TcpStream::connect(("127.0.0.1", file.port)).await else {
        return Err(ControlError::NotRunning);
    };
    let (r, mut w) = conn.into_split();
    let env = json!({"token": file.token, "request": request});
    let mut out = serde_json::to_vec(&env).map_err(|e| ControlError::Io(e.to_string()))?;
    out.push(b'\n');
    w.write_all(&out)
        .await
        .map_err(|e| ControlError::Io(e.to_string()))?;
    let mut reader = BufReader::new(r);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .await
        .map_err(|e| ControlError::Io(e.to_string()))?;
    if line.is_empty() {
        return Err(ControlError::Io(
            "the node closed the connection without answering".into(),
        ));
    }
    let v: Value = serde_json::from_str(&line).map_err(|e| ControlError::Io(e.to_string()))?;
    if v["ok"] == json!(true) {
        Ok(v["result"].clone())
    } else {
        Err(ControlError::Refused(
            v["error"].as_str().unwrap_or("error").to_owned(),
        ))
    }
}
