//! Subscribing and coming back: the `subscribe` exchange (with `since` when a viewer
//! resumes), the backoff between reconnect attempts, and the history refetch over REST
//! that fills the gap the server's replay window could not (`recovered: false`).

use std::time::Duration;

use serde_json::{Value, json};

use super::client::Client;

/// What the subscribe reply said. Why kept: the next resume sends its `epoch` back, and
/// `recovered` decides whether history must be refetched.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub epoch: String,
    /// The last `seq` published on the channel when the socket joined.
    pub seq: u64,
    /// Present only when the subscribe carried `since`.
    pub recovered: Option<bool>,
    /// Frames read with the reply (it may share a batched frame with events): the
    /// caller hands them to its event handler after setting its state from the reply.
    pub frames: Vec<Vec<u8>>,
}

/// Subscribes to `channel` (resuming after `since` = (seq, epoch) when given) and waits
/// for the server's reply.
pub async fn subscribe(
    ws: &mut Client,
    channel: &str,
    since: Option<(u64, &str)>,
) -> Result<Joined, String> {
    let mut op = json!({"op": "subscribe", "id": 1, "channel": channel});
    if let Some((seq, epoch)) = since {
        op["since"] = json!({"seq": seq, "epoch": epoch});
    }
    ws.send_text(&op.to_string())
        .await
        .map_err(|e| format!("viewer subscribe: {e}"))?;
    let mut outcome: Option<Result<Joined, String>> = None;
    while outcome.is_none() {
        let mut on = |t: &[u8]| {
            if let Some(Ok(j)) = &mut outcome {
                // Frames after the reply's: events, the caller's to count.
                j.frames.push(t.to_vec());
                return;
            }
            // The reply may share a batched frame (a JSON array) with events.
            let frames = match serde_json::from_slice::<Value>(t).unwrap_or_default() {
                Value::Array(items) => items,
                v => vec![v],
            };
            if let Some(v) = frames.iter().find(|v| v["type"] == "reply") {
                outcome = Some(if v["ok"] == true {
                    Ok(Joined {
                        epoch: v["epoch"].as_str().unwrap_or_default().to_string(),
                        seq: v["seq"].as_u64().unwrap_or(0),
                        recovered: v["recovered"].as_bool(),
                        frames: vec![t.to_vec()],
                    })
                } else {
                    Err(format!("subscribe refused: {v}"))
                });
            }
        };
        let open = tokio::time::timeout(Duration::from_secs(30), ws.read_some(&mut on))
            .await
            .map_err(|_| "subscribe reply timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if !open && outcome.is_none() {
            return Err("closed before subscribe reply".into());
        }
    }
    outcome.unwrap_or_else(|| Err("no subscribe reply".into()))
}

/// The wait before reconnect attempt `attempt` (0-based): 50 ms doubling up to 3 s,
/// with jitter in its upper half. Why jitter: thousands of viewers of a killed node
/// must not come back in one thundering wave.
pub fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_millis(50u64 << attempt.min(6)).min(Duration::from_secs(3));
    cap.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

/// Fetches the stored comments of `video` from `base` (as `token`'s role sees them) and
/// hands the raw body of each page to `on_page`. Pages by `after_id` while a page is full.
pub async fn refetch_history(
    http: &reqwest::Client,
    base: &str,
    video: &str,
    token: Option<&str>,
    on_page: &mut impl FnMut(&[u8]),
) -> Result<(), String> {
    const LIMIT: u64 = 10_000;
    let mut after: Option<i64> = None;
    loop {
        let mut url = format!("{base}/api/videos/{video}/danmaku?limit={LIMIT}");
        if let Some(a) = after {
            url.push_str(&format!("&after_id={a}"));
        }
        let mut req = http.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("history: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("history: HTTP {}", resp.status()));
        }
        let body = resp.bytes().await.map_err(|e| format!("history: {e}"))?;
        on_page(&body);
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let items = v["items"].as_array().map(Vec::as_slice).unwrap_or_default();
        if (items.len() as u64) < LIMIT {
            return Ok(());
        }
        after = items.iter().filter_map(|i| i["id"].as_i64()).max();
        if after.is_none() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        for a in 0..20 {
            let d = backoff(a);
            let cap = Duration::from_millis(50u64 << a.min(6)).min(Duration::from_secs(3));
            assert!(d >= cap / 2 && d <= cap, "{a}: {d:?}");
        }
    }
}
