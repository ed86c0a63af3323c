//! End-to-end stories with real nodes: sled stores in temporary directories, libp2p sockets on
//! 127.0.0.1, and (for crash recovery) the real `lawmesh` command as a child process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use futures::StreamExt;
use lawmesh_node::clock::Clock;
use lawmesh_node::control;
use lawmesh_node::dir::NodeDir;
use lawmesh_node::mesh::Mesh;
use lawmesh_node::net;
use lawmesh_node::ops::{ActionRequest, Request};
use lawmesh_sync::ids::Channel;
use lawmesh_sync::keys::SecretKey;
use lawmesh_sync::roster::Roster;
use libp2p::swarm::SwarmEvent;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

fn request(case: &str, live: bool) -> Request {
    Request::NewOrder {
        channel: Channel::Consultation,
        case_type: case.into(),
        name: "王建华".into(),
        phone: "13900000000".into(),
        text: "土地承包合同纠纷".into(),
        live,
    }
}

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn order_ids(mesh: &Mesh, site: &str) -> BTreeSet<String> {
    let v = mesh.request(site, Request::List).await.unwrap();
    v["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn show(mesh: &Mesh, site: &str, id: &str) -> Value {
    mesh.request(site, Request::Show { id: id.into() })
        .await
        .unwrap_or(Value::Null)
}

const QIUCHANG: [&str; 3] = ["village-zhoutian", "office-qiuchang", "firm-hongtai"];

/// The 秋长 office and its paired firm, running and linked.
async fn office_and_paired_firm(seed: u64) -> Mesh {
    let mut mesh = Mesh::start(
        &Roster::huiyang().unwrap(),
        Some(&QIUCHANG[1..]),
        Clock::wall(),
        seed,
    )
    .await
    .unwrap();
    mesh.link("office-qiuchang", "firm-hongtai").await;
    mesh.wait_linked(Duration::from_secs(10)).await.unwrap();
    mesh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_village_queues_then_its_office_relays_everything_to_the_paired_firm() {
    let mut mesh = Mesh::start(
        &Roster::huiyang().unwrap(),
        Some(&QIUCHANG),
        Clock::wall(),
        1,
    )
    .await
    .unwrap();
    mesh.link("office-qiuchang", "firm-hongtai").await;
    mesh.wait_linked(Duration::from_secs(10)).await.unwrap();

    // The village kiosk has no link; the office keeps serving walk-ins at the same time.
    let mut ids = Vec::new();
    for case in ["land", "family", "labour"] {
        let v = mesh
            .request("village-zhoutian", request(case, false))
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let walk_in = mesh
        .request("office-qiuchang", request("contract", true))
        .await
        .unwrap();
    ids.push(walk_in["id"].as_str().unwrap().to_owned());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_firm = order_ids(&mesh, "firm-hongtai").await;
    assert!(
        at_firm.contains(&ids[3]),
        "the office's own order reached the firm"
    );
    assert!(
        !ids[..3].iter().any(|i| at_firm.contains(i)),
        "the offline village's orders cannot have"
    );

    // The village's LAN link comes back: its orders go through the office to the firm.
    mesh.link("village-zhoutian", "office-qiuchang").await;
    eventually(
        "the firm holds every order",
        Duration::from_secs(10),
        || async {
            let got = order_ids(&mesh, "firm-hongtai").await;
            ids.iter().all(|i| got.contains(i))
        },
    )
    .await;
    // Both were merged into one book for 秋长's consultations.
    let books = mesh.request("firm-hongtai", Request::Books).await.unwrap();
    assert_eq!(books["books"].as_array().unwrap().len(), 1);

    // The office sends the land case on; the firm picks it up and dispatches a land lawyer.
    mesh.request(
        "office-qiuchang",
        Request::Act {
            id: ids[0].clone(),
            action: ActionRequest::Decline {
                reason: "发单".into(),
            },
        },
    )
    .await
    .unwrap();
    eventually("the firm is on call", Duration::from_secs(10), || async {
        show(&mesh, "firm-hongtai", &ids[0]).await["on_call"]["site"] == "firm-hongtai"
    })
    .await;
    mesh.request(
        "firm-hongtai",
        Request::Act {
            id: ids[0].clone(),
            action: ActionRequest::Accept,
        },
    )
    .await
    .unwrap();
    mesh.request(
        "firm-hongtai",
        Request::Act {
            id: ids[0].clone(),
            action: ActionRequest::Dispatch {
                lawyer: "l013".into(),
            },
        },
    )
    .await
    .unwrap_or_else(|e| panic!("dispatch: {e}"));
    eventually(
        "the village sees the lawyer",
        Duration::from_secs(10),
        || async { show(&mesh, "village-zhoutian", &ids[0]).await["lawyer"] == "l013" },
    )
    .await;
    assert!(mesh.converge(Duration::from_secs(10)).await.is_ok());
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_accepts_across_a_partition_settle_on_one_winner_everywhere() {
    let sites = [
        "office-qiuchang",
        "firm-hongtai",
        "centre-district",
        "centre-city",
    ];
    // A fast clock so the firm's ten-minute live window passes in half a second.
    let clock = Clock::scaled(1_796_601_600_000, 1_200.0);
    let mut mesh = Mesh::start(&Roster::huiyang().unwrap(), Some(&sites), clock, 2)
        .await
        .unwrap();
    mesh.link("office-qiuchang", "firm-hongtai").await;
    mesh.link("office-qiuchang", "centre-district").await;
    mesh.link("firm-hongtai", "centre-district").await;
    mesh.link("centre-district", "centre-city").await;
    mesh.wait_linked(Duration::from_secs(10)).await.unwrap();
    let id = mesh
        .request("office-qiuchang", request("contract", true))
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    mesh.request(
        "office-qiuchang",
        Request::Act {
            id: id.clone(),
            action: ActionRequest::Decline {
                reason: "发单".into(),
            },
        },
    )
    .await
    .unwrap();
    eventually(
        "the district centre is on call",
        Duration::from_secs(10),
        || async {
            show(&mesh, "centre-district", &id).await["on_call"]["site"] == "centre-district"
        },
    )
    .await;
    mesh.cut("firm-hongtai", "office-qiuchang").await;
    mesh.cut("firm-hongtai", "centre-district").await;
    mesh.request(
        "firm-hongtai",
        Request::Act {
            id: id.clone(),
            action: ActionRequest::Accept,
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    mesh.request(
        "centre-district",
        Request::Act {
            id: id.clone(),
            action: ActionRequest::Accept,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        show(&mesh, "centre-district", &id).await["winner"]["site"],
        "centre-district"
    );
    mesh.heal("firm-hongtai", "office-qiuchang").await;
    mesh.heal("firm-hongtai", "centre-district").await;
    eventually(
        "every node agrees the firm took it",
        Duration::from_secs(10),
        || async {
            let mut all = true;
            for s in sites {
                let o = show(&mesh, s, &id).await;
                all &= o["winner"]["site"] == "firm-hongtai"
                    && o["overturned"]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|a| a["site"] == "centre-district"));
            }
            all
        },
    )
    .await;
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_outside_the_roster_is_disconnected_and_receives_no_book_bytes() {
    let mesh = office_and_paired_firm(3).await;
    mesh.request("office-qiuchang", request("land", true))
        .await
        .unwrap();

    let stranger = SecretKey::from_bytes([0x5a; 32]);
    let received = rogue_session(
        &stranger,
        mesh.node("office-qiuchang").unwrap().addr.clone(),
        None,
    )
    .await;
    assert_eq!(received.bytes, 0, "a stranger got sync bytes");
    assert!(
        received.disconnected,
        "the office closed the stranger's connection"
    );
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_close_that_connection_and_the_node_serves_on() {
    let mesh = office_and_paired_firm(4).await;
    // A registered key (an unpaired firm's node, not running) gone bad.
    let bad_dir = mesh.root.path().join("firm-danyuan");
    let bad_key = NodeDir::open(&bad_dir).unwrap().secret;
    let office = mesh.node("office-qiuchang").unwrap().addr.clone();

    let garbage = rogue_session(
        &bad_key,
        office.clone(),
        Some(Frame::Bytes(vec![1, 0, 0xff, 0xee, 0xdd])),
    )
    .await;
    assert!(
        garbage.disconnected,
        "a malformed message closes the connection"
    );
    let oversized = rogue_session(&bad_key, office, Some(Frame::ClaimLength(64 << 20))).await;
    assert!(
        oversized.disconnected,
        "an oversized frame closes the connection"
    );

    // Meanwhile the office still serves its paired firm.
    let id = mesh
        .request("office-qiuchang", request("family", true))
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(
        "the firm gets the new order",
        Duration::from_secs(10),
        || async { order_ids(&mesh, "firm-hongtai").await.contains(&id) },
    )
    .await;
    mesh.shutdown().await;
}

enum Frame {
    Bytes(Vec<u8>),
    ClaimLength(u32),
}

struct RogueResult {
    bytes: usize,
    disconnected: bool,
}

/// Dial `target` with `key`, optionally send one bad frame on the sync protocol, and report
/// what came back within two seconds.
async fn rogue_session(
    key: &SecretKey,
    target: libp2p::Multiaddr,
    send: Option<Frame>,
) -> RogueResult {
    let mut swarm = net::build_swarm(key, false).unwrap();
    let mut control = swarm.behaviour().stream.new_control();
    let mut incoming = control.accept(net::SYNC_PROTOCOL).unwrap();
    swarm.dial(target).unwrap();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                use futures::AsyncReadExt;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    let mut disconnected = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let ev = tokio::time::timeout_at(deadline, swarm.select_next_some()).await;
        match ev {
            Err(_) => break,
            Ok(SwarmEvent::ConnectionEstablished { peer_id, .. }) => {
                if let Some(frame) = &send {
                    let mut c = control.clone();
                    let frame = match frame {
                        Frame::Bytes(b) => {
                            let mut f = (b.len() as u32).to_be_bytes().to_vec();
                            f.extend(b);
                            f
                        }
                        Frame::ClaimLength(n) => n.to_be_bytes().to_vec(),
                    };
                    tokio::spawn(async move {
                        use futures::AsyncWriteExt;
                        if let Ok(mut s) = c.open_stream(peer_id, net::SYNC_PROTOCOL).await {
                            let _ = s.write_all(&frame).await;
                            let _ = s.flush().await;
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                    });
                }
            }
            Ok(SwarmEvent::ConnectionClosed {
                num_established: 0, ..
            }) => {
                disconnected = true;
                break;
            }
            Ok(_) => {}
        }
    }
    RogueResult {
        bytes: received.load(std::sync::atomic::Ordering::SeqCst),
        disconnected,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_is_a_clear_error_and_nothing_is_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    lawmesh_node::dir::provision(
        &Roster::huiyang().unwrap(),
        root.path(),
        &mut rand::thread_rng(),
    )
    .unwrap();
    let kiosk = root.path().join("village-zhoutian");
    // The disk under the store is gone: a file stands where the store should be.
    std::fs::write(kiosk.join("store"), b"not a store").unwrap();
    let out = run_cli(&[
        "order",
        "new",
        "--dir",
        kiosk.to_str().unwrap(),
        "--channel",
        "consultation",
        "--case-type",
        "land",
        "--name",
        "李",
        "--phone",
        "1",
        "--text",
        "t",
        "--json",
    ]);
    assert!(!out.status.success(), "the command must fail");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("nothing was acknowledged"),
        "{v}"
    );
    assert!(v.get("id").is_none());
}

fn cli() -> &'static str {
    env!("CARGO_BIN_EXE_lawmesh-under-test")
}

fn run_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(cli())
        .args(args)
        .output()
        .unwrap()
}

fn spawn_node(dir: &Path, peer: &libp2p::Multiaddr) -> std::process::Child {
    let _ = std::fs::remove_file(dir.join("control.json"));
    std::process::Command::new(cli())
        .args([
            "run",
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--peer",
            &peer.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_control(dir: &Path) {
    eventually(
        "the child node serves its control API",
        Duration::from_secs(20),
        || async { control::call(dir, &Request::Status).await.is_ok() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_in_a_burst_loses_no_acknowledged_order() {
    let mesh = office_and_paired_firm(5).await;
    let office = mesh.node("office-qiuchang").unwrap().addr.clone();
    let kiosk = mesh.root.path().join("village-zhoutian");
    let mut acknowledged: Vec<String> = Vec::new();

    let mut rng = rand::thread_rng();
    for round in 0..3 {
        let mut child = spawn_node(&kiosk, &office);
        wait_control(&kiosk).await;
        // A burst of residents; the node is killed at a random moment in the middle of it.
        let kill_after = Duration::from_millis(rand::Rng::gen_range(&mut rng, 20..250));
        let started = tokio::time::Instant::now();
        let mut killed = false;
        for _ in 0..200 {
            if !killed && started.elapsed() >= kill_after {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
            let kiosk = kiosk.clone();
            match control::call(&kiosk, &request("land", false)).await {
                Ok(v) => acknowledged.push(v["id"].as_str().unwrap().to_owned()),
                Err(_) if killed => break,
                Err(e) => panic!("round {round}: submission failed before the kill: {e}"),
            }
        }
        if !killed {
            child.kill().unwrap();
        }
        child.wait().unwrap();
    }
    assert!(!acknowledged.is_empty());

    // Restart the kiosk: every acknowledged order is there, and reaches the firm.
    let mut child = spawn_node(&kiosk, &office);
    wait_control(&kiosk).await;
    let listed = control::call(&kiosk, &Request::List).await.unwrap();
    let held: BTreeSet<String> = listed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &acknowledged {
        assert!(
            held.contains(id),
            "acknowledged order {id} lost after kill -9"
        );
    }
    eventually(
        "the firm holds every acknowledged order",
        Duration::from_secs(30),
        || async {
            let got = order_ids(&mesh, "firm-hongtai").await;
            acknowledged.iter().all(|i| got.contains(i))
        },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    mesh.shutdown().await;
}

/// Submit an order and return its id.
async fn new_order(mesh: &Mesh, site: &str, case: &str, live: bool) -> String {
    let v = mesh.request(site, request(case, live)).await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// Submit an order the disk refuses; the error must say so.
async fn refused_order(mesh: &Mesh, site: &str, case: &str) {
    let err = mesh
        .request(site, request(case, true))
        .await
        .expect_err("the disk failed, so the order is not acknowledged");
    assert!(err.contains("disk full"), "a clear error: {err}");
}

/// A write that fails (a full disk) is refused to the resident, and the orders acknowledged
/// before and after it survive a restart: the next write to the book first writes it whole,
/// because the new change depends on the one that never reached the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_loses_no_order_acknowledged_before_or_after_it() {
    let site = "village-zhoutian";
    let mut mesh = Mesh::start(&Roster::huiyang().unwrap(), Some(&[site]), Clock::wall(), 9)
        .await
        .unwrap();
    let before = new_order(&mesh, site, "land", true).await;
    mesh.node(site).unwrap().node.faults.fail_next(1);
    refused_order(&mesh, site, "land").await;
    let after = new_order(&mesh, site, "land", false).await;
    // The same when the write goes through and the flush fails.
    mesh.node(site).unwrap().node.faults.fail_next_flush(1);
    refused_order(&mesh, site, "family").await;
    let last = new_order(&mesh, site, "family", false).await;
    mesh.stop(site).await;
    mesh.restart(site)
        .await
        .expect("the store still loads after the failed write");
    let ids = order_ids(&mesh, site).await;
    assert!(ids.contains(&before), "acknowledged before the failure");
    assert!(ids.contains(&after), "acknowledged after the failure");
    assert!(ids.contains(&last), "acknowledged after the failed flush");
    // The refused orders reached the disk with the book's next whole write, cancelled, so
    // nobody serves them next to the ones the residents asked for again.
    let all = statuses(&mesh, site).await;
    let refused: Vec<&String> = all
        .iter()
        .filter(|(id, _)| ![&before, &after, &last].contains(id))
        .map(|(_, status)| status)
        .collect();
    assert!(!refused.is_empty(), "{all:?}");
    assert!(refused.iter().all(|s| *s == "cancelled"), "{all:?}");
    mesh.shutdown().await;
}

/// Every order a node holds (`ListAll`): id → status.
async fn statuses(mesh: &Mesh, site: &str) -> BTreeMap<String, String> {
    let all = mesh.request(site, Request::ListAll).await.unwrap();
    all["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap().to_owned();
            (s("id"), s("status"))
        })
        .collect()
}

/// After a restart a settled book stays cold: `order list` shows the open and recent orders,
/// `order list --all` (`ListAll`) reads the settled books too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_all_orders_reads_settled_books_that_stay_cold_after_a_restart() {
    let site = "office-qiuchang";
    let mut mesh = Mesh::start(
        &Roster::huiyang().unwrap(),
        Some(&[site]),
        Clock::wall(),
        11,
    )
    .await
    .unwrap();
    let done = new_order(&mesh, site, "land", true).await;
    settle(&mesh, site, &done).await;
    let open = mesh
        .request(
            site,
            Request::NewOrder {
                channel: Channel::Mediation,
                case_type: "family".into(),
                name: "陈".into(),
                phone: "1".into(),
                text: "邻里纠纷".into(),
                live: false,
            },
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    mesh.stop(site).await;
    mesh.restart(site).await.unwrap();
    let listed = order_ids(&mesh, site).await;
    assert!(listed.contains(&open), "the open order is listed");
    assert!(!listed.contains(&done), "the settled book stayed cold");
    let all = statuses(&mesh, site).await;
    assert_eq!(
        all.get(&open).map(String::as_str),
        Some("queued"),
        "{all:?}"
    );
    assert_eq!(
        all.get(&done).map(String::as_str),
        Some("confirmed"),
        "{all:?}"
    );
    // Reading them did not warm them.
    assert!(!order_ids(&mesh, site).await.contains(&done));
    mesh.shutdown().await;
}

/// Once nothing is due (every order settled, no peer owes an answer), a node sleeps: the wake-up
/// it had planned passes once and it does not wake again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_node_sleeps_once_nothing_is_due() {
    let clock = Clock::wall();
    let mut mesh = Mesh::start(
        &Roster::huiyang().unwrap(),
        Some(&QIUCHANG[1..]),
        clock.clone(),
        13,
    )
    .await
    .unwrap();
    mesh.link("office-qiuchang", "firm-hongtai").await;
    mesh.wait_linked(Duration::from_secs(10)).await.unwrap();
    let office = "office-qiuchang";
    let id = new_order(&mesh, office, "land", true).await;
    settle(&mesh, office, &id).await;
    eventually(
        "the firm holds the confirmed order",
        Duration::from_secs(10),
        || async { show(&mesh, "firm-hongtai", &id).await["status"] == "confirmed" },
    )
    .await;
    // Two days later: every wake-up planned while the order was open, or while a peer owed an
    // answer, has passed.
    clock.set(clock.now() + 2 * 24 * 3_600_000);
    for site in QIUCHANG[1..].iter() {
        ticks(&mesh, site).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for site in QIUCHANG[1..].iter() {
        let first = ticks(&mesh, site).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle = ticks(&mesh, site).await - first;
        assert!(idle <= 2, "idle {site} woke {idle} times in 300 ms");
    }
    mesh.shutdown().await;
}

/// A node's timer wake-ups so far.
async fn ticks(mesh: &Mesh, site: &str) -> u64 {
    let v = mesh.request(site, Request::Status).await.unwrap();
    v["ticks"].as_u64().unwrap()
}

/// A stored book that no longer loads does not stop the node: it is set aside (kept in the
/// store's quarantine, named in the status), the node takes requests, and it gets the book
/// afresh from the peer that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_book_is_quarantined_and_taken_afresh_from_a_peer() {
    let mut mesh = office_and_paired_firm(17).await;
    let office = "office-qiuchang";
    let id = new_order(&mesh, office, "land", true).await;
    eventually(
        "the firm holds the order",
        Duration::from_secs(10),
        || async { show(&mesh, "firm-hongtai", &id).await != Value::Null },
    )
    .await;
    let book: lawmesh_sync::ids::BookId = show(&mesh, office, &id).await["book"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let dir = NodeDir::open(&mesh.node(office).unwrap().dir).unwrap();
    mesh.stop(office).await;
    // Damage the book on disk: a chunk that is not automerge.
    {
        // sled lets go of its lock a moment after the node's last handle is dropped.
        let mut tries = 0;
        let store = loop {
            match lawmesh_node::store::Store::open(&dir.store_path()) {
                Ok(store) => break store,
                Err(e) if tries < 100 => {
                    assert!(e.to_string().contains("could not acquire lock"), "{e}");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        let chunk = lawmesh_sync::replica::Persist::BookChunk {
            book: book.clone(),
            bytes: b"not an automerge chunk".to_vec(),
        };
        store.write(&chunk).unwrap();
        store.flush_blocking().unwrap();
    }
    mesh.restart(office)
        .await
        .expect("the node starts despite the damaged book");
    let status = mesh.request(office, Request::Status).await.unwrap();
    assert_eq!(status["quarantined"], serde_json::json!([book.to_string()]));
    let next = new_order(&mesh, office, "family", false).await;
    eventually(
        "the office has the book again from the firm",
        Duration::from_secs(20),
        || async { show(&mesh, office, &id).await["id"] == id.as_str() },
    )
    .await;
    assert_eq!(show(&mesh, office, &next).await["id"], next.as_str());
    // The book taken afresh is stored cleanly: the next start reads it.
    mesh.stop(office).await;
    mesh.restart(office).await.unwrap();
    assert_eq!(show(&mesh, office, &id).await["id"], id.as_str());
    assert_eq!(show(&mesh, office, &next).await["id"], next.as_str());
    mesh.shutdown().await;
}

/// The office that took an order in hand accepts, closes and confirms it: settled.
async fn settle(mesh: &Mesh, site: &str, id: &str) {
    for action in [
        ActionRequest::Accept,
        ActionRequest::Close {
            outcome: "已提供法律意见".into(),
        },
        ActionRequest::Confirm,
    ] {
        let act = Request::Act {
            id: id.into(),
            action,
        };
        mesh.request(site, act).await.unwrap();
    }
}
