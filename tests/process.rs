//! The real binary under signals: SIGKILL mid-stream loses no acknowledged comment, and
//! SIGTERM closes every socket with 1001, keeps every acknowledged comment and exits
//! within the grace.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common::{API_KEY, SECRET, WAIT, WsClient, process::Proc};
use danmaku::{
    auth::{Keys, Signer},
    config::Config,
    model::Role,
};
use serde_json::{Value, json};

/// Posting tasks per test.
const POSTERS: usize = 8;
/// Acknowledged comments to reach before the signal.
const BEFORE_SIGNAL: usize = 200;

/// A signer with the test secret, for admin tokens (admins have no posting cooldown).
fn signer(dir: &std::path::Path) -> Signer {
    let mut cfg = Config::default();
    cfg.auth.secret = Some(SECRET.into());
    cfg.server.data_dir = dir.to_path_buf();
    Keys::load(&cfg).and_then(|k| k.signer()).expect("signer")
}

/// Every (poster, text) acknowledged with 201.
type Acked = Arc<Mutex<BTreeSet<(usize, String)>>>;

/// Starts `POSTERS` tasks posting to video `vid-{task}` until their first failure,
/// recording every text acknowledged with 201. Returns the shared record and the count.
fn start_posters(
    base: &str,
    signer: &Signer,
) -> (Acked, Arc<AtomicUsize>, Vec<tokio::task::JoinHandle<()>>) {
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let tasks = (0..POSTERS)
        .map(|t| {
            let token = signer
                .mint(
                    &format!("poster{t}"),
                    Role::Admin,
                    None,
                    Duration::from_secs(600),
                )
                .expect("mint");
            let (acked, count, http) = (acked.clone(), count.clone(), http.clone());
            let url = format!("{base}/api/videos/vid-{t}/danmaku");
            tokio::spawn(async move {
                for i in 0.. {
                    let text = format!("t{t}-{i}");
                    let sent = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"text": text, "time": i as f64 / 10.0}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => {
                            acked.lock().unwrap().insert((t, text));
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        // Refused during shutdown, or the process is gone.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    (acked, count, tasks)
}

/// Waits until `count` reaches `n`, failing after [`WAIT`].
async fn wait_count(count: &AtomicUsize, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while count.load(Ordering::Relaxed) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "posting stalled at {}",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every acknowledged text is in the history of its video on the restarted server.
async fn assert_all_stored(base: &str, acked: &BTreeSet<(usize, String)>) {
    let http = reqwest::Client::new();
    for t in 0..POSTERS {
        let body: Value = http
            .get(format!("{base}/api/videos/vid-{t}/danmaku?limit=10000"))
            .header("X-Api-Key", API_KEY)
            .send()
            .await
            .expect("history")
            .json()
            .await
            .expect("history JSON");
        let stored: BTreeSet<&str> = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|v| v["text"].as_str())
            .collect();
        let missing: Vec<_> = acked
            .iter()
            .filter(|(task, text)| *task == t && !stored.contains(text.as_str()))
            .collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_comment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut proc = Proc::start(dir.path(), &[]).await;
    let signer = signer(dir.path());
    let (acked, count, tasks) = start_posters(&proc.base, &signer);
    wait_count(&count, BEFORE_SIGNAL).await;
    proc.signal(libc::SIGKILL);
    let status = tokio::time::timeout(WAIT, proc.child.wait())
        .await
        .expect("the killed process exited")
        .expect("wait");
    assert!(!status.success(), "SIGKILL is not a clean exit: {status:?}");
    for t in tasks {
        t.await.expect("poster");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= BEFORE_SIGNAL);

    let restarted = Proc::start(dir.path(), &[]).await;
    assert_all_stored(&restarted.base, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1001_keeps_acked_comments_and_exits_in_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut proc = Proc::start(dir.path(), &[]).await;
    let signer = signer(dir.path());
    let mut clients = Vec::new();
    for i in 0..20 {
        let token = signer
            .mint(
                &format!("viewer{i}"),
                Role::Free,
                None,
                Duration::from_secs(600),
            )
            .expect("mint");
        let mut c = WsClient::connect(&format!("{}?access_token={token}", proc.ws_base)).await;
        let reply = c.subscribe(&format!("video:vid-{}", i % POSTERS)).await;
        assert_eq!(reply["ok"], true, "{reply}");
        clients.push(c);
    }
    // Viewers read their room's comments until the server closes them.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { c.closed_with().await }))
        .collect();
    let (acked, count, tasks) = start_posters(&proc.base, &signer);
    wait_count(&count, BEFORE_SIGNAL).await;
    let signalled = tokio::time::Instant::now();
    proc.signal(libc::SIGTERM);
    for r in readers {
        assert_eq!(r.await.expect("reader"), 1001);
    }
    let status = tokio::time::timeout(Duration::from_secs(5 + 3), proc.child.wait())
        .await
        .expect("the process outlived its shutdown grace")
        .expect("wait");
    assert!(status.success(), "SIGTERM exits cleanly: {status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(8));
    for t in tasks {
        t.await.expect("poster");
    }
    let acked = acked.lock().unwrap().clone();
    let restarted = Proc::start(dir.path(), &[]).await;
    assert_all_stored(&restarted.base, &acked).await;
}
