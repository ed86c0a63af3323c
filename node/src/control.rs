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
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest request line accepted.
pub const MAX_REQUEST: usize = 1 << 20;
/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for the node's answer (a listing of every settled book is the
/// slowest request).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

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
    write_private(
        &dir.join("control.json"),
        &serde_json::to_vec(&file).map_err(std::io::Error::other)?,
    )?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "control API: accept failed");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            let client = client.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let _ = handle(conn, client, &token).await;
                drop(slot);
            });
        }
    });
    Ok(())
}

/// Write `bytes` to `path` readable by the owner only from the start: a temporary file
/// created with mode 0600, then renamed over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    // A leftover from a crash keeps its old mode: start from a new file.
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

async fn handle(conn: TcpStream, client: Client, token: &str) -> std::io::Result<()> {
    let (r, mut w) = conn.into_split();
    let mut reader = BufReader::new(r).take(MAX_REQUEST as u64);
    let mut line = String::new();
    tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request line"))??;
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
    tokio::time::timeout(CALL_TIMEOUT, call_inner(dir, request))
        .await
        .map_err(|_| {
            ControlError::Io(format!(
                "no answer within {} s from the node named in control.json; the request may \
                 still be carried out: look (order list, order show) before repeating it",
                CALL_TIMEOUT.as_secs()
            ))
        })?
}

async fn call_inner(dir: &Path, request: &Request) -> Result<Value, ControlError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_file_is_private_from_the_start_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.json");
        write_private(&path, b"{\"port\": 1}").unwrap();
        write_private(&path, b"{\"port\": 2}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"port\": 2}");
        assert!(!path.with_extension("json.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
