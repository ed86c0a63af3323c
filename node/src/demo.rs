//! `lawmesh demo`: the Huiyang mesh on loopback, playing a compressed day.
//!
//! Every site of the Huiyang roster is a real node (own sled directory, own libp2p socket on
//! 127.0.0.1). Staff at every site are played by small agents that react to their node's
//! events the way people at the kiosks would: offices triage and send orders on (发单), firms
//! accept and dispatch by specialty, centres take what reaches them, residents confirm. On top
//! of that ordinary day, the script stages what the mesh is for:
//!
//! - 08:05–12:00 秋长's uplink is cut: 周田 village and the 秋长 office keep taking requests,
//!   which flow to the paired firm first when the link returns;
//! - 08:00–13:00 the firm paired with 新圩 does not answer: live requests pass to the district
//!   centre, and one the district cannot take passes on to the city centre;
//! - 13:40–14:30 the firm paired with 淡水 is partitioned off; it and the district centre both
//!   accept the same live order; after healing every node agrees on one winner and the
//!   district's screen says who took it.
//!
//! Then it heals everything, waits for the replicas to converge, and checks that every replica
//! entitled to a book holds the same book and that no order was lost.

use crate::clock::Clock;
use crate::mesh::Mesh;
use crate::node::Event;
use crate::ops::{ActionRequest, Request};
use lawmesh_sync::ids::{Channel, LawyerId, SiteId};
use lawmesh_sync::roster::{Roster, SiteKind};
use lawmesh_sync::suggest;
use lawmesh_sync::time::{Date, Millis};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Demo options.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Seed for the residents' requests and the staff's reaction times.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// How many times faster than real time the day runs (1200: 08:00–18:00 in 30 s).
    #[arg(long, default_value_t = 1200.0)]
    pub speed: f64,
    /// Residents who come to kiosks across the district besides the staged stories.
    #[arg(long, default_value_t = 40)]
    pub residents: usize,
}

const MIN: Millis = 60_000;
/// 2026-12-07 08:00 in Beijing, a Monday.
const DAY_START: Millis = 1_796_601_600_000;
const DAY_END: Millis = DAY_START + 10 * 60 * MIN;

fn at(h: u64, m: u64) -> Millis {
    DAY_START + ((h - 8) * 60 + m) * MIN
}

fn hhmm(ms: Millis) -> String {
    let local = (ms + 8 * 3_600_000) % 86_400_000;
    format!("{:02}:{:02}", local / 3_600_000, local % 3_600_000 / 60_000)
}

/// Shared between the script, the staff agents and the timeline.
struct Story {
    roster: Roster,
    clock: Clock,
    /// Sites whose staff do not answer.
    absent: Mutex<HashSet<SiteId>>,
    /// Orders the script plays by hand at a site (its agent leaves them alone).
    scripted: Mutex<HashSet<(SiteId, String)>>,
    /// What each agent has already done: (site, order, step).
    done: Mutex<HashSet<(SiteId, String, &'static str)>>,
    /// Every order created, with its origin.
    created: Mutex<Vec<(String, SiteId)>>,
    lines: Mutex<Vec<String>>,
    json: bool,
    rng: Mutex<rand::rngs::StdRng>,
}

impl Story {
    fn say(&self, text: String) {
        let line = format!("{}  {}", hhmm(self.clock.now()), text);
        if !self.json {
            println!("{line}");
        }
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }
    fn name(&self, site: &str) -> String {
        self.roster
            .site(&SiteId::from(site))
            .map_or_else(|| site.to_owned(), |s| s.name.clone())
    }
    fn delay(&self, lo: u64, hi: u64) -> Millis {
        self.rng.lock().map_or(lo, |mut r| r.gen_range(lo..=hi)) * MIN
    }
    fn first_time(&self, site: &SiteId, order: &str, step: &'static str) -> bool {
        self.done
            .lock()
            .is_ok_and(|mut d| d.insert((site.clone(), order.to_owned(), step)))
    }
    fn is_scripted(&self, site: &SiteId, order: &str) -> bool {
        self.scripted
            .lock()
            .is_ok_and(|s| s.contains(&(site.clone(), order.to_owned())))
    }
}

async fn sleep_until_ms(clock: &Clock, ms: Millis) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(clock.instant_for(ms))).await;
}

/// Run the demo.
pub async fn run(args: DemoArgs, json: bool) -> Result<(), String> {
    let wall = Instant::now();
    let base = Roster::huiyang().map_err(|e| e.to_string())?;
    let clock = Clock::scaled(DAY_START - 5 * MIN, args.speed);
    if !json {
        println!(
            "lawmesh demo — 惠阳区 Huiyang, one day compressed {}×, seed {}",
            args.speed, args.seed
        );
        println!(
            "starting {} nodes on 127.0.0.1 (each with its own sled store and libp2p socket)…",
            base.sites().len()
        );
    }
    let mut mesh = Mesh::start(&base, None, clock.clone(), args.seed).await?;
    for (a, b) in Mesh::district_links(&mesh.roster) {
        mesh.link(a.as_str(), b.as_str()).await;
    }
    mesh.wait_linked(Duration::from_secs(20)).await?;
    clock.set(DAY_START);
    let story = Arc::new(Story {
        roster: mesh.roster.clone(),
        clock: clock.clone(),
        absent: Mutex::new(HashSet::new()),
        scripted: Mutex::new(HashSet::new()),
        done: Mutex::new(HashSet::new()),
        created: Mutex::new(Vec::new()),
        lines: Mutex::new(Vec::new()),
        json,
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(args.seed)),
    });
    if !json {
        println!(
            "{} links up after {:.1} s; the day begins.\n",
            mesh.links.len(),
            wall.elapsed().as_secs_f64()
        );
    }

    let mut tasks = Vec::new();
    for (site, n) in &mesh.nodes {
        let events = n.node.events.resubscribe();
        tasks.push(tokio::spawn(staff(
            story.clone(),
            site.clone(),
            n.node.client.clone(),
            events,
        )));
    }
    let district = mesh.node("centre-district").ok_or("no district centre")?;
    tasks.push(tokio::spawn(timeline(
        story.clone(),
        district.node.client.clone(),
        district.node.events.resubscribe(),
    )));

    let qiuchang_firm = mesh
        .roster
        .paired_firm(&"office-qiuchang".into())
        .cloned()
        .ok_or("秋长 has no paired firm")?;
    let xinxu_firm = mesh
        .roster
        .paired_firm(&"office-xinxu".into())
        .cloned()
        .ok_or("新圩 has no paired firm")?;
    let danshui_firm = mesh
        .roster
        .paired_firm(&"office-danshui".into())
        .cloned()
        .ok_or("淡水 has no paired firm")?;
    if let Ok(mut a) = story.absent.lock() {
        a.insert(xinxu_firm.clone());
    }
    story.say(format!(
        "{} ({xinxu_firm}) has nobody at its post this morning",
        story.name(xinxu_firm.as_str())
    ));

    // Residents across the district (seeded), besides the staged stories.
    let mut plan: Vec<(Millis, SiteId, Channel, String, bool)> = Vec::new();
    {
        let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x5eed);
        let origins: Vec<&lawmesh_sync::roster::Site> = mesh
            .roster
            .sites()
            .iter()
            .filter(|s| s.area.is_some())
            .collect();
        let types: Vec<String> = mesh
            .roster
            .doc()
            .specialties
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        for _ in 0..args.residents {
            let site = origins[rng.gen_range(0..origins.len())];
            let channel = match site.kind {
                SiteKind::NotaryOffice => Channel::Notary,
                SiteKind::TaxCentre => Channel::Tax,
                SiteKind::VeteransHome => Channel::Veterans,
                _ if rng.gen_bool(0.2) => Channel::Mediation,
                _ => Channel::Consultation,
            };
            let case = match channel {
                Channel::Notary => "notary".to_owned(),
                Channel::Tax => "tax".to_owned(),
                Channel::Veterans => "veterans".to_owned(),
                _ => types[rng.gen_range(0..types.len())].clone(),
            };
            let when = at(8, 30) + rng.gen_range(0..(9 * 60)) * MIN;
            plan.push((when, site.id.clone(), channel, case, rng.gen_bool(0.3)));
        }
    }
    let resident_task = {
        let story = story.clone();
        let clients: BTreeMap<SiteId, crate::node::Client> = mesh
            .nodes
            .iter()
            .map(|(s, n)| (s.clone(), n.node.client.clone()))
            .collect();
        let mut plan = plan.clone();
        plan.sort_by_key(|p| p.0);
        tokio::spawn(async move {
            for (when, site, channel, case, live) in plan {
                sleep_until_ms(&story.clock, when).await;
                if let Some(c) = clients.get(&site) {
                    let _ = new_order(&story, c, &site, channel, &case, live).await;
                }
            }
        })
    };

    // ---- the staged stories ------------------------------------------------------------------
    let client = |s: &str| {
        mesh.node(s)
            .map(|n| n.node.client.clone())
            .ok_or_else(|| format!("no node {s}"))
    };
    sleep_until_ms(&clock, at(8, 5)).await;
    mesh.cut("office-qiuchang", qiuchang_firm.as_str()).await;
    mesh.cut("office-qiuchang", "centre-district").await;
    story.say("✂ 秋长司法所's uplink is cut (the village LAN to 周田 still works)".into());

    let zhoutian = client("village-zhoutian")?;
    let qiuchang = client("office-qiuchang")?;
    let mut offline_orders = Vec::new();
    for (h, m, case) in [(8, 20, "land"), (9, 10, "family"), (10, 30, "labour")] {
        sleep_until_ms(&clock, at(h, m)).await;
        if let Ok(id) = new_order(
            &story,
            &zhoutian,
            &"village-zhoutian".into(),
            Channel::Consultation,
            case,
            false,
        )
        .await
        {
            if let Ok(mut s) = story.scripted.lock() {
                s.insert(("office-qiuchang".into(), id.clone()));
            }
            offline_orders.push(id);
        }
    }
    sleep_until_ms(&clock, at(10, 40)).await;
    for id in &offline_orders {
        match act(&qiuchang, id, ActionRequest::Decline { reason: "需要律师 (发单)".into() }).await {
            Ok(_) => story.say(format!("{}: 秋长司法所 sends it to its paired firm (发单) — offline, the firm cannot see it yet", &id[..8])),
            Err(e) => story.say(format!("{}: 秋长司法所 could not send it on: {e}", &id[..8])),
        }
    }

    // 新圩: the paired firm is absent; a live request passes to the district centre.
    let xinxu = client("office-xinxu")?;
    sleep_until_ms(&clock, at(10, 45)).await;
    let _ = new_order(
        &story,
        &xinxu,
        &"office-xinxu".into(),
        Channel::Consultation,
        "family",
        true,
    )
    .await;

    // 新圩: one live request the district centre cannot take either.
    sleep_until_ms(&clock, at(11, 0)).await;
    if let Ok(id) = new_order(
        &story,
        &xinxu,
        &"office-xinxu".into(),
        Channel::Consultation,
        "labour",
        true,
    )
    .await
    {
        if let Ok(mut s) = story.scripted.lock() {
            s.insert(("centre-district".into(), id.clone()));
        }
        story.say(format!(
            "   (the district centre's line is busy for {})",
            &id[..8]
        ));
    }

    sleep_until_ms(&clock, at(12, 0)).await;
    mesh.heal("office-qiuchang", qiuchang_firm.as_str()).await;
    mesh.heal("office-qiuchang", "centre-district").await;
    story.say(format!(
        "⚡ 秋长司法所's uplink is back: {} queued orders flow out",
        offline_orders.len()
    ));

    sleep_until_ms(&clock, at(13, 0)).await;
    if let Ok(mut a) = story.absent.lock() {
        a.remove(&xinxu_firm);
    }
    story.say(format!(
        "{} is back at its post",
        story.name(xinxu_firm.as_str())
    ));

    // 淡水: a live order both the partitioned firm and the district centre accept.
    let danshui = client("office-danshui")?;
    sleep_until_ms(&clock, at(13, 20)).await;
    let contested = new_order(
        &story,
        &danshui,
        &"office-danshui".into(),
        Channel::Consultation,
        "contract",
        true,
    )
    .await?;
    if let Ok(mut s) = story.scripted.lock() {
        for site in [
            "office-danshui",
            danshui_firm.as_str(),
            "centre-district",
            "centre-city",
        ] {
            s.insert((SiteId::from(site), contested.clone()));
        }
    }
    sleep_until_ms(&clock, at(13, 21)).await;
    let _ = act(
        &danshui,
        &contested,
        ActionRequest::Decline {
            reason: "需要律师 (发单)".into(),
        },
    )
    .await;
    story.say(format!(
        "{}: 淡水司法所 sends it to {} — whose line is busy",
        &contested[..8],
        story.name(danshui_firm.as_str())
    ));
    sleep_until_ms(&clock, at(13, 28)).await;
    for office in ["centre-district", "office-danshui", "office-sanhe"] {
        mesh.cut(danshui_firm.as_str(), office).await;
    }
    story.say(format!(
        "✂ {} is partitioned from the mesh",
        story.name(danshui_firm.as_str())
    ));
    sleep_until_ms(&clock, at(13, 34)).await;
    let firm_client = client(danshui_firm.as_str())?;
    match act(&firm_client, &contested, ActionRequest::Accept).await {
        Ok(_) => story.say(format!(
            "{}: {} accepts it at last, cut off — it cannot know its window passed and the district centre is on call",
            &contested[..8],
            story.name(danshui_firm.as_str())
        )),
        Err(e) => story.say(format!("{}: the firm could not accept: {e}", &contested[..8])),
    }
    sleep_until_ms(&clock, at(13, 36)).await;
    let district_client = client("centre-district")?;
    match act(&district_client, &contested, ActionRequest::Accept).await {
        Ok(_) => story.say(format!(
            "{}: 惠阳区公共法律服务中心, on call, accepts it too on its side of the partition",
            &contested[..8]
        )),
        Err(e) => story.say(format!(
            "{}: the district could not accept: {e}",
            &contested[..8]
        )),
    }
    sleep_until_ms(&clock, at(14, 30)).await;
    for office in ["centre-district", "office-danshui", "office-sanhe"] {
        mesh.heal(danshui_firm.as_str(), office).await;
    }
    story.say(format!(
        "⚡ {} rejoins the mesh",
        story.name(danshui_firm.as_str())
    ));
    if let Ok(mut s) = story.scripted.lock() {
        s.remove(&(danshui_firm.clone(), contested.clone()));
        s.remove(&(SiteId::from("office-danshui"), contested.clone()));
    }

    sleep_until_ms(&clock, DAY_END).await;
    resident_task.abort();
    story.say("the day ends: every link is up; waiting for the replicas to settle…".into());
    let settle = Instant::now();
    let converged = mesh.converge(Duration::from_secs(30)).await;
    let settle_s = settle.elapsed().as_secs_f64();
    for t in &tasks {
        t.abort();
    }

    // ---- closing figures and checks ------------------------------------------------------------
    let now = clock.now();
    let listed = mesh.request("centre-district", Request::List).await?;
    let orders: Vec<Value> = listed["orders"].as_array().cloned().unwrap_or_default();
    let created = story.created.lock().map(|c| c.clone()).unwrap_or_default();
    let held: BTreeSet<String> = orders
        .iter()
        .filter_map(|o| o["id"].as_str().map(str::to_owned))
        .collect();
    let mut lost = Vec::new();
    for (id, origin) in &created {
        if !held.contains(id) {
            lost.push(format!("{id} from {origin} is not at the district centre"));
            continue;
        }
        for s in ["centre-city", origin.as_str()] {
            if mesh
                .request(s, Request::Show { id: id.clone() })
                .await
                .is_err()
            {
                lost.push(format!("{id} from {origin} is missing at {s}"));
            }
        }
    }
    let mut by_tier: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_channel: BTreeMap<String, usize> = BTreeMap::new();
    let mut waits = Vec::new();
    let mut overturned = 0;
    for o in &orders {
        *by_channel
            .entry(o["channel"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        if let Some(w) = o["winner"].as_object() {
            let tier = w.get("tier").and_then(Value::as_u64).unwrap_or(0);
            let label = match tier {
                0 => "tier 0 (office / desk)",
                1 => "tier 1 (paired firm, or centre for special channels)",
                2 => "tier 2",
                _ => "tier 3 (city centre)",
            };
            *by_tier.entry(label.to_owned()).or_default() += 1;
            if let (Some(a), Some(c)) = (
                w.get("at_ms").and_then(Value::as_u64),
                o["created_ms"].as_u64(),
            ) {
                waits.push(a.saturating_sub(c));
            }
        }
        overturned += o["overturned"].as_array().map_or(0, Vec::len);
    }
    waits.sort_unstable();
    let median_wait = waits.get(waits.len() / 2).map(|w| w / MIN);
    let open = orders
        .iter()
        .filter(|o| matches!(o["status"].as_str(), Some("on_call" | "queued" | "overdue")))
        .count();
    let divergence = converged.as_ref().err().cloned().unwrap_or_default();
    let ok = divergence.is_empty() && lost.is_empty();
    let summary = json!({
        "ok": ok,
        "seed": args.seed,
        "speed": args.speed,
        "nodes": mesh.nodes.len(),
        "orders_created": created.len(),
        "orders_at_district": orders.len(),
        "by_channel": by_channel,
        "accepted_by_tier": by_tier,
        "still_open": open,
        "overturned_accepts": overturned,
        "median_minutes_to_accept": median_wait,
        "converged": divergence.is_empty(),
        "divergence": divergence,
        "lost": lost,
        "settle_seconds": settle_s,
        "wall_seconds": wall.elapsed().as_secs_f64(),
        "virtual_end": hhmm(now),
    });
    if json {
        println!("{summary}");
    } else {
        println!("\n── closing figures ─────────────────────────────────────────────");
        println!(
            "orders created: {} ({} held at the district centre)",
            created.len(),
            orders.len()
        );
        for (c, n) in &by_channel {
            println!("  {c:<13} {n}");
        }
        println!("accepted, by the tier that took them:");
        for (t, n) in &by_tier {
            println!("  {t:<52} {n}");
        }
        println!("still waiting for someone at day's end: {open}");
        println!("overturned accepts (a site accepted, another had taken it first): {overturned}");
        if let Some(m) = median_wait {
            println!("median time from request to acceptance: {m} min");
        }
        println!("── checks ───────────────────────────────────────────────────────");
        if divergence.is_empty() {
            println!("✔ every replica converged: each of the {} nodes holds exactly the books it is entitled to, identical to its peers' ({settle_s:.1} s to settle)", mesh.nodes.len());
        } else {
            println!("✘ replicas did not converge:");
            for d in &divergence {
                println!("    {d}");
            }
        }
        if lost.is_empty() {
            println!("✔ no order lost: all {} orders are at their origin, the district and the city centre", created.len());
        } else {
            println!("✘ orders lost:");
            for l in &lost {
                println!("    {l}");
            }
        }
        println!("finished in {:.1} s", wall.elapsed().as_secs_f64());
    }
    mesh.shutdown().await;
    if ok {
        Ok(())
    } else {
        Err("the demo's end checks failed (see above)".into())
    }
}

async fn new_order(
    story: &Story,
    client: &crate::node::Client,
    site: &SiteId,
    channel: Channel,
    case: &str,
    live: bool,
) -> Result<String, String> {
    let req = Request::NewOrder {
        channel,
        case_type: case.to_owned(),
        name: "居民".into(),
        phone: "13800000000".into(),
        text: format!("{case} 咨询"),
        live,
    };
    match client.request(req).await {
        Ok(v) => {
            let id = v["id"].as_str().unwrap_or("").to_owned();
            if let Ok(mut c) = story.created.lock() {
                c.push((id.clone(), site.clone()));
            }
            story.say(format!(
                "{}: {} asks at {} — {} / {}{}",
                &id[..8.min(id.len())],
                "a resident",
                story.name(site.as_str()),
                channel,
                case,
                if live {
                    ", waiting at the kiosk"
                } else {
                    ", queued"
                }
            ));
            Ok(id)
        }
        Err(e) => {
            story.say(format!(
                "✘ {} could not take a request: {e}",
                story.name(site.as_str())
            ));
            Err(e)
        }
    }
}

async fn act(
    client: &crate::node::Client,
    id: &str,
    action: ActionRequest,
) -> Result<Value, String> {
    client
        .request(Request::Act {
            id: id.to_owned(),
            action,
        })
        .await
}

/// The next order whose state changed, as the node now shows it; `None` once the node stops.
async fn next_changed(
    client: &crate::node::Client,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
) -> Option<(String, Value)> {
    loop {
        let order = match events.recv().await {
            Ok(Event::OrderChanged { order, .. }) => order.to_string(),
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return None,
        };
        if let Ok(o) = client.request(Request::Show { id: order.clone() }).await {
            return Some((order, o));
        }
    }
}

/// A site's staff: react to what their node shows them.
async fn staff(
    story: Arc<Story>,
    site: SiteId,
    client: crate::node::Client,
    mut events: tokio::sync::broadcast::Receiver<Event>,
) {
    let kind = story.roster.site(&site).map(|s| s.kind);
    while let Some((order, o)) = next_changed(&client, &mut events).await {
        if story.is_scripted(&site, &order) || story.absent.lock().is_ok_and(|a| a.contains(&site))
        {
            continue;
        }
        let status = o["status"].as_str().unwrap_or("");
        let on_call_here = o["on_call"]["site"] == site.as_str();
        let mine = o["winner"]["site"] == site.as_str();
        let live = o["live"] == json!(true);
        let step: Option<(&'static str, Millis, ActionRequest)> =
            if matches!(status, "on_call" | "overdue") && on_call_here {
                if kind == Some(SiteKind::JudicialOffice) {
                    // Triage: simple matters the office answers itself; the rest go to the firm.
                    if !live && story.delay(0, 4) == 0 {
                        Some(("accept", story.delay(5, 20), ActionRequest::Accept))
                    } else {
                        let d = if live {
                            story.delay(1, 2)
                        } else {
                            story.delay(5, 30)
                        };
                        Some((
                            "send",
                            d,
                            ActionRequest::Decline {
                                reason: "需要律师专业意见 (发单)".into(),
                            },
                        ))
                    }
                } else {
                    let d = if live {
                        story.delay(1, 4)
                    } else {
                        story.delay(10, 60)
                    };
                    Some(("accept", d, ActionRequest::Accept))
                }
            } else if status == "accepted" && mine {
                pick_lawyer(&story, &site, &o).map(|l| {
                    (
                        "dispatch",
                        story.delay(1, 5),
                        ActionRequest::Dispatch {
                            lawyer: l.to_string(),
                        },
                    )
                })
            } else if status == "dispatched" && mine {
                Some((
                    "close",
                    story.delay(20, 90),
                    ActionRequest::Close {
                        outcome: "已提供法律意见".into(),
                    },
                ))
            } else if status == "closed" && o["origin"] == site.as_str() {
                Some(("confirm", story.delay(2, 15), ActionRequest::Confirm))
            } else {
                None
            };
        let Some((name, delay, action)) = step else {
            continue;
        };
        if !story.first_time(&site, &order, name) {
            continue;
        }
        let story = story.clone();
        let client = client.clone();
        let site = site.clone();
        tokio::spawn(async move {
            sleep_until_ms(&story.clock, story.clock.now() + delay).await;
            if story.is_scripted(&site, &order)
                || story.absent.lock().is_ok_and(|a| a.contains(&site))
            {
                if let Ok(mut d) = story.done.lock() {
                    d.remove(&(site.clone(), order.clone(), name));
                }
                return;
            }
            let _ = act(&client, &order, action).await;
        });
    }
}

fn pick_lawyer(story: &Story, site: &SiteId, o: &Value) -> Option<LawyerId> {
    let case = o["case_type"].as_str()?.into();
    let today = Date::at(story.clock.now(), story.roster.utc_offset_minutes());
    let duty = story.roster.duty_lawyers(site, today);
    if !duty.is_empty() {
        let id = o["id"].as_str()?.parse().ok()?;
        return suggest::duty_pick(&story.roster, &id, &case, &duty);
    }
    let list = suggest::suggest_lawyers(&story.roster, site, &case, today, &BTreeMap::new());
    list.first().map(|s| s.lawyer.clone())
}

/// Print what the district centre — the hub that sees every book — observes.
async fn timeline(
    story: Arc<Story>,
    client: crate::node::Client,
    mut events: tokio::sync::broadcast::Receiver<Event>,
) {
    let mut last: BTreeMap<String, (String, String, String, usize, String)> = BTreeMap::new();
    while let Some((order, o)) = next_changed(&client, &mut events).await {
        let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let status = s(&o["status"]);
        let on_call = s(&o["on_call"]["site"]);
        let winner = s(&o["winner"]["site"]);
        let overturned = o["overturned"].as_array().map_or(0, Vec::len);
        let lawyer = s(&o["lawyer"]);
        let short = &order[..8];
        let prev = last.get(&order).cloned();
        let (p_status, p_on_call, p_winner, p_over, p_lawyer) = prev.clone().unwrap_or_default();
        if prev.is_none() && o["origin"] != "centre-district" {
            story.say(format!(
                "{short}: reaches the district centre's books (from {})",
                story.name(o["origin"].as_str().unwrap_or(""))
            ));
        }
        if !on_call.is_empty() && on_call != p_on_call && winner.is_empty() {
            let tier = o["on_call"]["tier"].as_u64().unwrap_or(0);
            let verb = if tier == 0 {
                "on call at"
            } else {
                "⇢ escalates to"
            };
            story.say(format!(
                "{short}: {verb} {} (tier {tier})",
                story.name(&on_call)
            ));
        }
        if !winner.is_empty() && winner != p_winner {
            if !p_winner.is_empty() {
                story.say(format!(
                    "{short}: ⚠ OVERTURNED — {} had taken it first; {}'s accept loses",
                    story.name(&winner),
                    story.name(&p_winner)
                ));
            } else {
                story.say(format!(
                    "{short}: ✔ accepted by {} (tier {})",
                    story.name(&winner),
                    o["winner"]["tier"]
                ));
            }
        } else if overturned > p_over && !winner.is_empty() {
            for a in o["overturned"]
                .as_array()
                .into_iter()
                .flatten()
                .skip(p_over)
            {
                story.say(format!(
                    "{short}: ⚠ {} also accepted it; {} keeps it (earlier)",
                    story.name(a["site"].as_str().unwrap_or("")),
                    story.name(&winner)
                ));
            }
        }
        if !lawyer.is_empty() && lawyer != p_lawyer {
            let name = story
                .roster
                .lawyer(&LawyerId(lawyer.clone()))
                .map_or(lawyer.clone(), |l| l.name.clone());
            story.say(format!("{short}: dispatched to lawyer {name} ({lawyer})"));
        }
        if status == "confirmed" && p_status != "confirmed" {
            story.say(format!("{short}: closed and confirmed by the resident"));
        }
        if status == "overdue" && p_status != "overdue" {
            story.say(format!("{short}: ✘ overdue at the city centre"));
        }
        last.insert(order, (status, on_call, winner, overturned, lawyer));
    }
}
