//! The `lawmesh` command line. Every command takes `--json` for a stable, documented shape
//! (see the README); without it, output is for people.

use crate::clock::Clock;
use crate::control::{self, ControlError};
use crate::dir;
use crate::node::{self, NodeConfig};
use crate::ops::{ActionRequest, Request};
use clap::{Parser, Subcommand};
use lawmesh_sync::ids::Channel;
use lawmesh_sync::roster::Roster;
use libp2p::Multiaddr;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// lawmesh: offline-first legal-service orders for a district's kiosks, offices, firms and
/// centres.
#[derive(Parser, Debug)]
#[command(name = "lawmesh", version)]
pub struct Cli {
    /// Print results as JSON (stable shapes, documented in the README).
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create an authority key and a node directory (key + signed roster) for every site.
    Provision {
        /// `huiyang` for the shipped roster, or a roster TOML file.
        #[arg(long, default_value = "huiyang")]
        roster: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// List the roster's sites: ids, kinds, names, areas, paired firms, escalation chains.
    Sites {
        /// `huiyang` or a roster TOML file.
        #[arg(long, default_value = "huiyang")]
        roster: String,
    },
    /// Run a node until SIGINT/SIGTERM.
    Run {
        /// The node's directory (from `provision`).
        #[arg(long)]
        dir: PathBuf,
        /// Listen address (repeatable).
        #[arg(long, default_value = "/ip4/0.0.0.0/tcp/0")]
        listen: Vec<Multiaddr>,
        /// Peer to dial and keep dialling (repeatable).
        #[arg(long)]
        peer: Vec<Multiaddr>,
        /// Turn off LAN discovery (mDNS).
        #[arg(long)]
        no_mdns: bool,
    },
    /// Orders: take a request, list, show, act.
    #[command(subcommand)]
    Order(OrderCmd),
    /// Connected peers, books held, changes not yet acknowledged by any peer.
    Status {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// The Huiyang mesh on loopback: a compressed day with outages, escalations and a
    /// partition, then checks that every replica converged and no order was lost.
    Demo(crate::demo::DemoArgs),
}

/// Order commands.
#[derive(Subcommand, Debug)]
pub enum OrderCmd {
    /// Take a resident's request; returns only once it is durable, and prints its id.
    New {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// consultation | mediation | notary | tax | veterans
        #[arg(long)]
        channel: Channel,
        /// Case type (a specialty of the roster: family, labour, land, …).
        #[arg(long)]
        case_type: String,
        /// Resident's name.
        #[arg(long)]
        name: String,
        /// Resident's phone.
        #[arg(long)]
        phone: String,
        /// The resident's account of the matter.
        #[arg(long)]
        text: String,
        /// The resident waits at the kiosk.
        #[arg(long)]
        live: bool,
    },
    /// The orders this node holds: open and recent ones, or with --all every one.
    List {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Include settled orders of past periods (read from the store for this).
        #[arg(long)]
        all: bool,
    },
    /// One order.
    Show(OrderArg),
    /// Take the order (接单).
    Accept(OrderArg),
    /// Pass it on to the next tier.
    Decline {
        #[command(flatten)]
        /// Which order.
        order: OrderArg,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Assign a lawyer (派单).
    Dispatch {
        #[command(flatten)]
        /// Which order.
        order: OrderArg,
        /// Lawyer id.
        #[arg(long)]
        lawyer: String,
    },
    /// Close the case.
    Close {
        #[command(flatten)]
        /// Which order.
        order: OrderArg,
        /// The outcome.
        #[arg(long)]
        outcome: String,
    },
    /// The resident confirms the service.
    Confirm(OrderArg),
    /// Write in the order's conversation.
    Message {
        #[command(flatten)]
        /// Which order.
        order: OrderArg,
        /// Text.
        #[arg(long)]
        text: String,
    },
}

/// A node directory and an order id.
#[derive(clap::Args, Debug)]
pub struct OrderArg {
    /// The node's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Order id (or a unique prefix).
    pub id: String,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LAWMESH_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if matches!(cli.command, Cmd::Run { .. }) {
            "info"
        } else {
            "warn"
        })
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                println!("{}", json!({"ok": false, "error": e}));
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn load_roster(spec: &str) -> Result<Roster, String> {
    if spec == "huiyang" {
        Roster::huiyang().map_err(|e| e.to_string())
    } else {
        let text = std::fs::read_to_string(spec).map_err(|e| format!("{spec}: {e}"))?;
        Roster::from_toml(&text).map_err(|e| format!("{spec}: {e}"))
    }
}

fn print(json_out: bool, value: &Value, human: impl FnOnce(&Value) -> String) {
    if json_out {
        println!("{value}");
    } else {
        println!("{}", human(value));
    }
}

/// Run one command.
pub async fn run(cli: Cli) -> Result<(), String> {
    let j = cli.json;
    match cli.command {
        Cmd::Provision { roster, out } => {
            let base = load_roster(&roster)?;
            let made = dir::provision(&base, &out, &mut rand::rngs::StdRng::from_entropy())
                .map_err(|e| e.to_string())?;
            let v = serde_json::to_value(&made).map_err(|e| e.to_string())?;
            print(j, &v, |_| {
                format!(
                    "provisioned {} nodes in {} (roster v{}, authority {})",
                    made.nodes.len(),
                    made.out,
                    made.roster_version,
                    made.authority
                )
            });
            Ok(())
        }
        Cmd::Sites { roster } => {
            let r = load_roster(&roster)?;
            let sites: Vec<Value> = r
                .sites()
                .iter()
                .map(|s| {
                    let chains: serde_json::Map<String, Value> = match &s.area {
                        Some(a) => Channel::ALL
                            .iter()
                            .filter_map(|c| {
                                r.chain(a, *c).map(|t| {
                                    (
                                        c.to_string(),
                                        json!(t
                                            .iter()
                                            .map(|x| x.site.as_str())
                                            .collect::<Vec<_>>()),
                                    )
                                })
                            })
                            .collect(),
                        None => serde_json::Map::new(),
                    };
                    json!({
                        "id": s.id, "kind": s.kind.as_str(), "name": s.name, "pinyin": s.pinyin,
                        "area": s.area, "paired_firm": r.paired_firm(&s.id), "chains": chains,
                    })
                })
                .collect();
            let v = json!({"roster_version": r.version(), "sites": sites});
            print(j, &v, |v| {
                let mut out = String::new();
                for s in v["sites"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "{:<20} {:<16} {} ({}){}{}\n",
                        s["id"].as_str().unwrap_or(""),
                        s["kind"].as_str().unwrap_or(""),
                        s["name"].as_str().unwrap_or(""),
                        s["pinyin"].as_str().unwrap_or(""),
                        s["paired_firm"]
                            .as_str()
                            .map(|f| format!(" → {f}"))
                            .unwrap_or_default(),
                        s["chains"]["consultation"]
                            .as_array()
                            .map(|c| format!(
                                "  chain: {}",
                                c.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(" → ")
                            ))
                            .unwrap_or_default(),
                    ));
                }
                out.trim_end().to_owned()
            });
            Ok(())
        }
        Cmd::Run {
            dir,
            listen,
            peer,
            no_mdns,
        } => run_node(&dir, listen, peer, !no_mdns, j).await,
        Cmd::Order(cmd) => order(cmd, j).await,
        Cmd::Status { dir } => {
            let v = request(&dir, Request::Status).await?;
            print(j, &v, |v| {
                format!(
                    "{} ({}): {} peers, {} books, {} orders, {} books with changes no peer has acknowledged",
                    v["site"].as_str().unwrap_or("?"),
                    if v["running"] == json!(false) { "not running" } else { "running" },
                    v["peers"].as_array().map_or(0, Vec::len),
                    v["books"],
                    v["orders"],
                    v["unacknowledged_books"]
                )
            });
            Ok(())
        }
        Cmd::Demo(args) => crate::demo::run(args, j).await,
    }
}

async fn run_node(
    dir: &Path,
    listen: Vec<Multiaddr>,
    peers: Vec<Multiaddr>,
    mdns: bool,
    j: bool,
) -> Result<(), String> {
    let config = NodeConfig {
        dir: dir.to_owned(),
        listen,
        peers,
        mdns,
        clock: Clock::wall(),
        control: true,
    };
    let node = node::start(config).await.map_err(|e| e.to_string())?;
    let v = json!({
        "site": node.site, "peer_id": node.peer_id.to_string(),
        "listen": node.listen_addrs.iter().map(|a| format!("{a}/p2p/{}", node.peer_id)).collect::<Vec<_>>(),
        "startup_ms": node.startup.as_millis() as u64,
    });
    print(j, &v, |v| {
        format!(
            "lawmesh node {} running as {}\nlistening on:\n  {}",
            v["site"].as_str().unwrap_or(""),
            v["peer_id"].as_str().unwrap_or(""),
            v["listen"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    });
    let mut task = node.task;
    tokio::select! {
        () = wait_for_signal() => {
            node.client.shutdown().await;
            let _ = (&mut task).await;
            let _ = std::fs::remove_file(dir.join("control.json"));
            Ok(())
        }
        ended = &mut task => {
            // The loop is gone: stop serving, so the CLI works on the store directly.
            let _ = std::fs::remove_file(dir.join("control.json"));
            Err(match ended {
                Err(e) => format!("the node's event loop failed: {e}"),
                Ok(()) => "the node's event loop stopped".into(),
            })
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Send a request to the node running for `dir`, or carry it out on the store directly when
/// no node runs.
pub async fn request(dir: &Path, req: Request) -> Result<Value, String> {
    match control::call(dir, &req).await {
        Ok(v) => Ok(v),
        Err(ControlError::NotRunning) => {
            let dir = dir.to_owned();
            tokio::task::spawn_blocking(move || crate::direct::execute(&dir, req))
                .await
                .map_err(|e| e.to_string())?
        }
        Err(e) => Err(e.to_string()),
    }
}

async fn order(cmd: OrderCmd, j: bool) -> Result<(), String> {
    let act = |o: OrderArg, action| (o.dir, Request::Act { id: o.id, action });
    let (dir, req) = match cmd {
        OrderCmd::New {
            dir,
            channel,
            case_type,
            name,
            phone,
            text,
            live,
        } => (
            dir,
            Request::NewOrder {
                channel,
                case_type,
                name,
                phone,
                text,
                live,
            },
        ),
        OrderCmd::List { dir, all } => (dir, if all { Request::ListAll } else { Request::List }),
        OrderCmd::Show(o) => (o.dir, Request::Show { id: o.id }),
        OrderCmd::Accept(o) => act(o, ActionRequest::Accept),
        OrderCmd::Decline { order, reason } => act(order, ActionRequest::Decline { reason }),
        OrderCmd::Dispatch { order, lawyer } => act(order, ActionRequest::Dispatch { lawyer }),
        OrderCmd::Close { order, outcome } => act(order, ActionRequest::Close { outcome }),
        OrderCmd::Confirm(o) => act(o, ActionRequest::Confirm),
        OrderCmd::Message { order, text } => act(order, ActionRequest::Message { text }),
    };
    let is_new = matches!(req, Request::NewOrder { .. });
    let is_list = matches!(req, Request::List | Request::ListAll);
    let v = request(&dir, req).await?;
    print(j, &v, |v| {
        if is_new {
            v["id"].as_str().unwrap_or("").to_owned()
        } else if is_list {
            v["orders"]
                .as_array()
                .into_iter()
                .flatten()
                .map(order_line)
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            order_line(v)
        }
    });
    Ok(())
}

fn order_line(o: &Value) -> String {
    let s = |k: &str| o[k].as_str().unwrap_or("").to_owned();
    let who = if let Some(w) = o["winner"]["site"].as_str() {
        format!("taken by {w}")
    } else if let Some(c) = o["on_call"]["site"].as_str() {
        format!("on call: {c}")
    } else {
        String::new()
    };
    format!(
        "{}  {:<10} {:<12} {:<10} {:<7} {:<18} {}{}",
        &s("id")[..8.min(s("id").len())],
        s("status"),
        s("channel"),
        s("case_type"),
        if o["live"] == json!(true) {
            "live"
        } else {
            "queued"
        },
        s("origin"),
        who,
        o["lawyer"]
            .as_str()
            .map(|l| format!(", lawyer {l}"))
            .unwrap_or_default()
    )
}
