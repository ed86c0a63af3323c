//! Benchmarks of the node on loopback (`cargo bench -p lawmesh-node`); results and conditions
//! in BENCHMARKS.md.
//!
//! 1. kiosk submit → visible at the paired firm through the office (two hops), p50/p99;
//! 2. reconnect after an outage with k = 10, 100, 1,000 queued orders: time and bytes;
//! 3. durable submit latency against a bare sled insert + flush in the same run;
//! 4. start-up time and resident memory of `lawmesh run` with 100,000 stored orders.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use lawmesh_node::clock::Clock;
use lawmesh_node::mesh::Mesh;
use lawmesh_node::node::Event;
use lawmesh_node::ops::Request;
use lawmesh_node::store::Store;
use lawmesh_sync::ids::Channel;
use lawmesh_sync::replica::{NewOrder, Replica};
use lawmesh_sync::roster::Roster;
use rand::SeedableRng;
use std::time::{Duration, Instant};

fn order(case: &str) -> Request {
    Request::NewOrder {
        channel: Channel::Consultation,
        case_type: case.into(),
        name: "王建华".into(),
        phone: "13900000000".into(),
        text: "土地承包合同到期后村委会不续签，想咨询如何维权。".into(),
        live: false,
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

async fn two_hops(n: usize) {
    let sites = ["village-zhoutian", "office-qiuchang", "firm-hongtai"];
    let mut mesh = Mesh::start(&Roster::huiyang().unwrap(), Some(&sites), Clock::wall(), 1)
        .await
        .unwrap();
    mesh.link("village-zhoutian", "office-qiuchang").await;
    mesh.link("office-qiuchang", "firm-hongtai").await;
    mesh.wait_linked(Duration::from_secs(10)).await.unwrap();
    let mut firm_events = mesh.node("firm-hongtai").unwrap().node.events.resubscribe();
    let mut lat = Vec::new();
    let mut submit = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let v = mesh
            .request("village-zhoutian", order("land"))
            .await
            .unwrap();
        submit.push(t.elapsed());
        let id = v["id"].as_str().unwrap().to_owned();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), firm_events.recv())
                .await
                .unwrap()
            {
                Ok(Event::OrderChanged { order, .. }) if order.to_string() == id => break,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    submit.sort();
    println!(
        "kiosk submit → visible at the paired firm via the office (2 hops), {n} orders one after another: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (durable submit alone: p50 {:.1} ms)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        pct(&submit, 0.5)
    );
    mesh.shutdown().await;
}

async fn reconnect(k: usize) {
    let sites = ["village-zhoutian", "office-qiuchang", "firm-hongtai"];
    let mut mesh = Mesh::start(&Roster::huiyang().unwrap(), Some(&sites), Clock::wall(), 2)
        .await
        .unwrap();
    mesh.link("village-zhoutian", "office-qiuchang").await;
    mesh.link("office-qiuchang", "firm-hongtai").await;
    mesh.wait_linked(Duration::from_secs(10)).await.unwrap();
    // 500 orders already shared, then the village's link drops and k residents come.
    for _ in 0..500 {
        mesh.request("office-qiuchang", order("family"))
            .await
            .unwrap();
    }
    mesh.converge(Duration::from_secs(30)).await.unwrap();
    mesh.cut("village-zhoutian", "office-qiuchang").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..k {
        mesh.request("village-zhoutian", order("land"))
            .await
            .unwrap();
    }
    let stat = |v: &serde_json::Value, key: &str| v[key].as_u64().unwrap_or(0);
    let before = mesh
        .request("village-zhoutian", Request::Status)
        .await
        .unwrap();
    let t = Instant::now();
    mesh.heal("village-zhoutian", "office-qiuchang").await;
    let want = 500 + k;
    loop {
        let v = mesh.request("firm-hongtai", Request::Status).await.unwrap();
        if v["orders"].as_u64() == Some(want as u64) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "reconnect did not complete"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = t.elapsed();
    mesh.converge(Duration::from_secs(30)).await.unwrap();
    let after = mesh
        .request("village-zhoutian", Request::Status)
        .await
        .unwrap();
    let sent = stat(&after, "bytes_sent") - stat(&before, "bytes_sent");
    let recv = stat(&after, "bytes_received") - stat(&before, "bytes_received");
    println!(
        "reconnect after an outage with k={k:>5} queued orders (500 already shared): all at the firm in {:.0} ms; \
         village sent {sent} B ({:.0} B/order), received {recv} B",
        elapsed.as_secs_f64() * 1e3,
        sent as f64 / k as f64
    );
    mesh.shutdown().await;
}

async fn durable_vs_sled(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path().join("bare"))
        .flush_every_ms(None)
        .open()
        .unwrap();
    let value = vec![7u8; 400];
    let mut bare = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        db.insert((i as u64).to_be_bytes(), value.as_slice())
            .unwrap();
        db.flush_async().await.unwrap();
        bare.push(t.elapsed());
    }
    let mesh = Mesh::start(
        &Roster::huiyang().unwrap(),
        Some(&["village-zhoutian"]),
        Clock::wall(),
        3,
    )
    .await
    .unwrap();
    let mut ours = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        mesh.request("village-zhoutian", order("land"))
            .await
            .unwrap();
        ours.push(t.elapsed());
    }
    bare.sort();
    ours.sort();
    println!(
        "durable submit ({n} orders, no peers): p50 {:.2} ms, p99 {:.2} ms; bare sled insert+flush_async of 400 B in the same run: \
         p50 {:.2} ms, p99 {:.2} ms; ratio of p50s {:.2}×",
        pct(&ours, 0.5),
        pct(&ours, 0.99),
        pct(&bare, 0.5),
        pct(&bare, 0.99),
        pct(&ours, 0.5) / pct(&bare, 0.5)
    );
    mesh.shutdown().await;

    // Where the time goes: the core's create_order alone, and the store's write + flush alone.
    let root = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    lawmesh_node::dir::provision(&Roster::huiyang().unwrap(), root.path(), &mut rng).unwrap();
    let nd = lawmesh_node::dir::NodeDir::open(&root.path().join("village-zhoutian")).unwrap();
    let mut replica = Replica::new(
        nd.secret.clone(),
        nd.authority,
        nd.roster().unwrap(),
        None,
        &mut rng,
    )
    .unwrap();
    let store = Store::open(&nd.store_path()).unwrap();
    let (mut core, mut disk) = (Vec::new(), Vec::new());
    for i in 0..n {
        let req = NewOrder {
            channel: Channel::Consultation,
            case_type: "land".into(),
            live: false,
            name: "王建华".into(),
            phone: "13900000000".into(),
            text: "土地承包合同到期后村委会不续签，想咨询如何维权。".into(),
        };
        let t = Instant::now();
        let (_, fx) = replica
            .create_order(1_796_601_600_000 + i as u64, &mut rng, req)
            .unwrap();
        core.push(t.elapsed());
        let t = Instant::now();
        for p in &fx.persist {
            store.write(p).unwrap();
        }
        store.flush().await.unwrap();
        disk.push(t.elapsed());
    }
    core.sort();
    disk.sort();
    println!(
        "  of which: the core's create_order p50 {:.3} ms; the store's write + flush p50 {:.3} ms",
        pct(&core, 0.5),
        pct(&disk, 0.5)
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            total += if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

fn startup_with_stored_orders(n: usize) {
    let root = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    lawmesh_node::dir::provision(&Roster::huiyang().unwrap(), root.path(), &mut rng).unwrap();
    let office = root.path().join("office-qiuchang");
    let nd = lawmesh_node::dir::NodeDir::open(&office).unwrap();
    let roster = nd.roster().unwrap();
    let mut replica = Replica::new(
        nd.secret.clone(),
        nd.authority,
        roster,
        Some(nd.signed.clone()),
        &mut rng,
    )
    .unwrap();
    // Orders over 20 months and 2 channels: 40 books of 2,500.
    let start = 1_796_601_600_000u64;
    let t = Instant::now();
    for i in 0..n {
        let month = (i * 20 / n) as u64;
        let now = start + month * 31 * 86_400_000 + i as u64;
        let channel = [Channel::Consultation, Channel::Mediation][i % 2];
        let case = match channel {
            Channel::Notary => "notary",
            Channel::Tax => "tax",
            Channel::Veterans => "veterans",
            _ => "land",
        };
        let req = NewOrder {
            channel,
            case_type: case.into(),
            live: false,
            name: "王建华".into(),
            phone: "13900000000".into(),
            text: "土地承包合同到期后村委会不续签，想咨询如何维权。".into(),
        };
        let (id, _fx) = replica.create_order(now, &mut rng, req).unwrap();
        // History as a district keeps it: orders of past months were served and confirmed
        // (the office answered them itself); the current month's are still open.
        if month < 19 {
            use lawmesh_sync::replica::Action;
            let _ = replica.act(now + 1, id, Action::Accept).unwrap();
            let _ = replica
                .act(now + 2, id, Action::Close("已解答".into()))
                .unwrap();
            let _ = replica.act(now + 3, id, Action::Confirm).unwrap();
        }
    }
    let store = Store::open(&nd.store_path()).unwrap();
    let books: Vec<_> = replica.books().map(|b| b.id().clone()).collect();
    for b in &books {
        let snap = replica.compact(b).unwrap();
        store.write(&snap).unwrap();
    }
    store.flush_blocking().unwrap();
    drop(store);
    let gen = t.elapsed();

    let exe = env!("CARGO_BIN_EXE_lawmesh");
    let start_once = || {
        let mut child = std::process::Command::new(exe)
            .args([
                "run",
                "--dir",
                office.to_str().unwrap(),
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--no-mdns",
                "--json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wall = Instant::now();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let to_ready = wall.elapsed();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let rss = rss_kib(child.id()) * 1024;
        // SIGTERM: a clean stop, as an operator's restart would be.
        let _ = std::process::Command::new("kill")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
        (v["startup_ms"].as_u64().unwrap_or(0), to_ready, rss)
    };
    let (first_ms, _, first_rss) = start_once();
    let (ms, to_ready, rss) = start_once();
    let disk = dir_size(&nd.store_path());
    println!(
        "start-up with {n} stored orders (95% settled in past months) in {} books ({} B on disk, generated in {:.1} s): \
         first start {} ms (reads every book, marks the settled ones; RSS {} B); every later start {} ms to load and \
         listen, {:.0} ms from exec to ready; RSS {} B = {:.2}× the on-disk size",
        books.len(),
        disk,
        gen.as_secs_f64(),
        first_ms,
        first_rss,
        ms,
        to_ready.as_secs_f64() * 1e3,
        rss,
        rss as f64 / disk as f64
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("lawmesh-node benchmarks (release build, loopback)");
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if run("two_hops") {
        rt.block_on(two_hops(300));
    }
    if run("reconnect") {
        for k in [10, 100, 1_000] {
            rt.block_on(reconnect(k));
        }
    }
    if run("durable") {
        rt.block_on(durable_vs_sled(300));
    }
    if run("startup") {
        startup_with_stored_orders(100_000);
    }
}
