//! Player formats: the DPlayer v3 API and bilibili XML export and import.

use danmaku::model::Role;
use serde_json::{Value, json};

use super::{history, post};
use crate::common::{API_KEY, TestApp, status_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dplayer_v3_reads_and_posts() {
    let app = TestApp::start().await;
    let alice = app.token("alice", Role::Member);
    let resp = app
        .http
        .post(app.url("/dplayer/v3/"))
        .bearer_auth(&alice)
        .json(&json!({"id": "dp", "author": "mallory", "token": "x", "time": 1.5, "text": "<b>hi</b> & 'you'", "color": 16711680, "type": 1}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 0);
    assert_eq!(
        body["data"]["user"]["name"], "alice",
        "author comes from the JWT"
    );
    let (status, list) = status_json(
        app.http
            .get(app.url("/dplayer/v3/?id=dp&max=10"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["code"], 0);
    assert_eq!(
        list["data"],
        json!([[
            1.5,
            1,
            16711680,
            "alice",
            "&lt;b&gt;hi&lt;&#x2F;b&gt; &amp; &#x27;you&#x27;"
        ]])
    );
    let (_, list) = status_json(
        app.http
            .get(app.url("/dplayer/v3/?id=dp&limit=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // Errors are {code: 1, msg} with the rule's status.
    let bob = app.token("bob", Role::Free);
    let resp = app
        .http
        .post(app.url("/dplayer/v3/"))
        .bearer_auth(&bob)
        .json(&json!({"id": "dp", "text": "x", "type": 1}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(1)), "{body}");
    assert!(body["msg"].as_str().unwrap().contains("member_style"));
    let resp = app
        .http
        .post(app.url("/dplayer/v3/"))
        .json(&json!({"id": "dp", "text": "x"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bilibili_xml_exports_strictly_and_round_trips() {
    let app = TestApp::start().await;
    let admin = app.token("root", Role::Admin);
    let posts = [
        json!({"text": "a<b>&\"c\"'", "time": 1.25, "mode": "scroll", "color": "#ffffff", "size": "small"}),
        json!({"text": "top one", "time": 2, "mode": "top", "color": "#ff0000", "size": "normal"}),
        json!({"text": "bottom one", "time": 3.5, "mode": "bottom", "color": "#00ff00", "size": "large"}),
    ];
    for p in &posts {
        let (status, _, _) = post(&app, Some(&admin), "x1", p.clone()).await;
        assert_eq!(status, 201);
    }
    let resp = app
        .http
        .get(app.url("/api/videos/x1/danmaku.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let xml = resp.text().await.unwrap();
    assert!(
        xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><i>"#),
        "{xml}"
    );
    let doc = roxmltree::Document::parse(&xml).expect("strict XML parse");
    let ds: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("d"))
        .collect();
    assert_eq!(ds.len(), 3);
    for d in &ds {
        let p: Vec<&str> = d.attribute("p").unwrap().split(',').collect();
        assert_eq!(p.len(), 8);
        p[4].parse::<u64>().expect("integer send time");
        assert!(["1", "4", "5"].contains(&p[1]));
        assert_ne!(p[6], "root", "the user id is hashed");
    }
    assert_eq!(ds[0].text(), Some("a<b>&\"c\"'"));

    // Import into another video and compare.
    let resp = app
        .http
        .post(app.url("/api/videos/x2/danmaku.xml"))
        .header("X-Api-Key", API_KEY)
        .header("content-type", "application/xml")
        .body(xml.replace("</i>", r#"<d p="9,7,25,0,1700000000,0,ff,99">[advanced]</d><d p="9,8,25,0,1700000000,0,ff,100">code</d></i>"#))
        .send()
        .await
        .unwrap();
    let (status, reply) = status_json(resp).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"imported": 3, "skipped": 2}));
    let strip = |page: Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| json!([d["text"], d["time"], d["mode"], d["color"], d["size"]]))
            .collect()
    };
    let (_, a) = history(&app, None, "x1", "").await;
    let (_, b) = history(&app, None, "x2", "").await;
    assert_eq!(
        strip(a),
        strip(b),
        "round trip keeps text, time, mode, colour, size"
    );

    // Malformed XML imports nothing.
    let resp = app
        .http
        .post(app.url("/api/videos/x3/danmaku.xml"))
        .header("X-Api-Key", API_KEY)
        .header("content-type", "application/xml")
        .body(r#"<?xml version="1.0" encoding="UTF-8"?><i><d p="1,1,25,0,1,0,a,1">ok</d><d>"#)
        .send()
        .await
        .unwrap();
    let (status, err) = status_json(resp).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("malformed_xml")));
    let (_, c) = history(&app, None, "x3", "").await;
    assert_eq!(c["count"], 0);
}
