//! Requests a kiosk, console or the CLI makes of a node, and how they are carried out on a
//! replica. Shared by the running node (through the control API) and by direct mode (no node
//! running: the CLI opens the store itself).

use lawmesh_sync::fold::{fold_book, OrderState};
use lawmesh_sync::ids::{Channel, LawyerId, OrderId, SiteId};
use lawmesh_sync::replica::{Action, Effects, NewOrder, Replica};
use lawmesh_sync::time::Millis;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A request to a node. JSON: `{"cmd": "new_order", ...}` etc.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Take a resident's request. Answered only once it is durable.
    NewOrder {
        /// Channel: consultation, mediation, notary, tax, veterans.
        channel: Channel,
        /// Case type (a specialty id of the roster).
        case_type: String,
        /// Resident's name.
        name: String,
        /// Resident's phone.
        phone: String,
        /// The account of the matter.
        text: String,
        /// The resident waits at the kiosk.
        #[serde(default)]
        live: bool,
    },
    /// The orders of the books this node holds in memory: open ones and recent ones.
    List,
    /// Every order this node holds, settled past books included (they are read from the store
    /// for this, and stay cold).
    ListAll,
    /// One order.
    Show {
        /// Order id (full hex, or a unique prefix).
        id: String,
    },
    /// Act on an order.
    Act {
        /// Order id (full hex, or a unique prefix).
        id: String,
        /// What to do.
        action: ActionRequest,
    },
    /// Peers, books, unacknowledged changes.
    Status,
    /// Every book held, with a hash of its heads (equal hashes mean equal books).
    Books,
}

/// An action, as requested.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionRequest {
    /// Take the order.
    Accept,
    /// Pass it on.
    Decline {
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Give it back.
    Release {
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Assign a lawyer.
    Dispatch {
        /// Lawyer id.
        lawyer: String,
    },
    /// Close the case.
    Close {
        /// The outcome.
        outcome: String,
    },
    /// The resident confirms.
    Confirm,
    /// Write a message.
    Message {
        /// Text.
        text: String,
    },
    /// The resident withdraws.
    Cancel {
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Flag for the joint meeting.
    Flag {
        /// Why.
        #[serde(default)]
        reason: String,
    },
}

impl From<ActionRequest> for Action {
    fn from(a: ActionRequest) -> Action {
        match a {
            ActionRequest::Accept => Action::Accept,
            ActionRequest::Decline { reason } => Action::Decline(reason),
            ActionRequest::Release { reason } => Action::Release(reason),
            ActionRequest::Dispatch { lawyer } => Action::Dispatch(LawyerId(lawyer)),
            ActionRequest::Close { outcome } => Action::Close(outcome),
            ActionRequest::Confirm => Action::Confirm,
            ActionRequest::Message { text } => Action::Message(text),
            ActionRequest::Cancel { reason } => Action::Cancel(reason),
            ActionRequest::Flag { reason } => Action::Flag(reason),
        }
    }
}

/// Find an order by full id or unique hex prefix.
pub fn resolve(replica: &Replica, now: Millis, id: &str) -> Result<OrderId, String> {
    if let Ok(full) = id.parse::<OrderId>() {
        return Ok(full);
    }
    let id = id.to_ascii_lowercase();
    let matches: Vec<OrderId> = replica
        .orders(now)
        .into_iter()
        .map(|s| s.id)
        .filter(|o| o.to_string().starts_with(&id))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("no order {id} here")),
        _ => Err(format!(
            "order prefix {id} is ambiguous ({} orders)",
            matches.len()
        )),
    }
}

/// The JSON shape of an order (documented in the README).
pub fn order_json(s: &OrderState) -> Value {
    json!({
        "id": s.id.to_string(),
        "book": s.book.to_string(),
        "status": s.status.as_str(),
        "channel": s.header.channel,
        "case_type": s.header.case_type,
        "live": s.header.live,
        "origin": s.header.origin,
        "name": s.header.name,
        "phone": s.header.phone,
        "text": s.header.text,
        "created_ms": s.created.ms,
        "offered_at_ms": s.offered_at,
        "chain": s.chain,
        "on_call": s.on_call.as_ref().map(|c| json!({"tier": c.tier, "site": c.site, "since_ms": c.since, "until_ms": c.until})),
        "winner": s.winner.as_ref().map(|w| json!({"site": w.site, "tier": w.tier, "at_ms": w.at.ms})),
        "overturned": s.overturned.iter().map(|a| json!({"site": a.site, "tier": a.tier, "at_ms": a.at.ms})).collect::<Vec<_>>(),
        "lawyer": s.lawyer,
        "outcome": s.outcome,
        "messages": s.messages,
        "flagged": s.flagged,
    })
}

/// Carry out a request that changes or reads orders. `Status` is answered by the caller, which
/// knows the network side.
pub fn execute(
    replica: &mut Replica,
    now: Millis,
    rng: &mut impl rand::RngCore,
    req: Request,
) -> Result<(Value, Effects), String> {
    match req {
        Request::NewOrder {
            channel,
            case_type,
            name,
            phone,
            text,
            live,
        } => {
            let (id, fx) = replica
                .create_order(
                    now,
                    rng,
                    NewOrder {
                        channel,
                        case_type: case_type.as_str().into(),
                        live,
                        name,
                        phone,
                        text,
                    },
                )
                .map_err(|e| e.to_string())?;
            let book = replica.book_of(&id).map(|b| b.to_string());
            Ok((
                json!({"id": id.to_string(), "book": book, "durable": true}),
                fx,
            ))
        }
        Request::List | Request::ListAll => {
            let mut orders = replica.orders(now);
            let mut unreadable = Vec::new();
            if matches!(req, Request::ListAll) {
                for (id, _, _) in replica.book_hashes() {
                    match replica.read_cold(&id) {
                        Some(Ok(book)) => orders.extend(fold_book(&book, replica.roster(), now)),
                        Some(Err(e)) => {
                            unreadable.push(json!({"book": id, "error": e.to_string()}))
                        }
                        None => {}
                    }
                }
            }
            orders.sort_by_key(|s| (s.created, s.id));
            let mut v = json!({"orders": orders.iter().map(order_json).collect::<Vec<_>>()});
            if !unreadable.is_empty() {
                v["unreadable"] = json!(unreadable);
            }
            Ok((v, Effects::default()))
        }
        Request::Show { id } => {
            let id = resolve(replica, now, &id)?;
            let s = replica
                .order(&id, now)
                .ok_or_else(|| format!("no order {id} here"))?;
            Ok((order_json(&s), Effects::default()))
        }
        Request::Act { id, action } => {
            let id = resolve(replica, now, &id)?;
            let fx = replica
                .act(now, id, action.into())
                .map_err(|e| e.to_string())?;
            let s = replica
                .order(&id, now)
                .ok_or_else(|| format!("no order {id} here"))?;
            Ok((order_json(&s), fx))
        }
        Request::Books => {
            let books: Vec<Value> = replica
                .book_hashes()
                .into_iter()
                .map(|(id, hash, orders)| json!({"book": id.to_string(), "heads": lawmesh_sync::ids::hex(&hash), "orders": orders}))
                .collect();
            Ok((json!({"books": books}), Effects::default()))
        }
        Request::Status => Err("status is answered by the node".into()),
    }
}

/// The common part of a status answer.
pub fn status_json(replica: &Replica, site: &SiteId) -> Value {
    json!({
        "site": site,
        "key": replica.key().to_string(),
        "roster_version": replica.roster().version(),
        "books": replica.book_hashes().len(),
        "books_in_memory": replica.books().count(),
        "orders": replica.book_hashes().iter().map(|b| b.2).sum::<usize>(),
        "unacknowledged_books": replica.unacknowledged_books(),
    })
}

/// Why a refused new order is cancelled (see [`withdraw`]).
pub const WITHDRAWN: &str =
    "not stored: the node's disk refused the write; the resident was told to ask again";

/// A new order whose write failed was refused to the resident, who may ask again; but it is
/// in the replica's memory and parts of it may reach the disk later. Cancel it at once, so that
/// whatever reaches the disk (and the mesh) says cancelled and nobody serves it twice. Returns
/// the order's book and the cancel's effects. The cancel's change depends on the refused one,
/// so the caller writes the book whole before it.
pub fn withdraw(
    replica: &mut Replica,
    now: Millis,
    refused: &Value,
) -> Option<(lawmesh_sync::ids::BookId, Effects)> {
    let id: OrderId = refused["id"].as_str()?.parse().ok()?;
    let book = replica.book_of(&id)?.clone();
    match replica.act(now, id, Action::Cancel(WITHDRAWN.into())) {
        Ok(fx) => Some((book, fx)),
        Err(e) => {
            tracing::error!(order = %id, error = %e, "refused order could not be cancelled");
            None
        }
    }
}
