//! Direct mode: when no node runs for a directory, the CLI opens the store itself, so a kiosk
//! whose daemon is down still takes requests. The order is written and flushed before the
//! command returns; the node sends it on when it next runs.

use crate::clock::Clock;
use crate::dir::NodeDir;
use crate::ops::{self, Request};
use crate::store::{Store, StoreError};
use rand::SeedableRng;
use serde_json::{json, Value};
use std::path::Path;

/// Carry out a request on the node directory's store.
pub fn execute(dir: &Path, req: Request) -> Result<Value, String> {
    let nd = NodeDir::open(dir).map_err(|e| e.to_string())?;
    let store = Store::open(&nd.store_path()).map_err(|e| e.to_string())?;
    let mut rng = rand::rngs::StdRng::from_entropy();
    let now = Clock::wall().now();
    let mut replica = crate::restore::restore(&nd, &store, now, &mut rng)
        .map_err(|e| e.to_string())?
        .replica;
    if req == Request::Status {
        let mut status = ops::status_json(&replica, replica.site());
        status["running"] = json!(false);
        status["peers"] = json!([]);
        status["store_bytes"] = json!(store.size_on_disk());
        status["quarantined"] = json!(store.quarantined());
        return Ok(status);
    }
    let new_order = matches!(req, Request::NewOrder { .. });
    let (value, fx) = ops::execute(&mut replica, now, &mut rng, req)?;
    if let Err(e) = persist(&store, &fx) {
        // What was written may still reach the disk (sled flushes again when it closes).
        if new_order {
            if let Some((book, mut cancel)) = ops::withdraw(&mut replica, now, &value) {
                if let Some(whole) = replica.compact(&book) {
                    cancel.persist.insert(0, whole);
                }
                let _ = persist(&store, &cancel);
            }
            return Err(e.to_string());
        }
        return Err(format!(
            "{e}; the action may still have been stored: look at the order before repeating it"
        ));
    }
    Ok(value)
}

fn persist(store: &Store, fx: &lawmesh_sync::replica::Effects) -> Result<(), StoreError> {
    for p in &fx.persist {
        store.write(p)?;
    }
    store.flush_blocking()
}
