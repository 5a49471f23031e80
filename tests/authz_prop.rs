//! The authorization rules as a property test: random sequences of (role, moderator of
//! the video or not, tier, audience, operation) run against one live server and are
//! compared, step by step, with a small reference model. Whatever the sequence, a guest
//! or free user never receives a members-only event, history item, like or heatmap
//! count, a non-admin never reaches an admin operation, and a moderation operation on a
//! video succeeds exactly for admins and that video's moderators (by stored grant or by
//! the token's `mod` claim; moderating another video gives nothing) — a refused one
//! changing nothing. Moderation operations include slow mode, a video's flood rule,
//! shadow bans, block rules (a video's and the global set), hold rules, the review queue
//! and approvals. Each video also carries a shadowed and a held comment from the start:
//! only that video's moderators and admins ever read them (marked with their state) in
//! history; no export and no heatmap count carries them, whoever reads. Live, the same
//! holds for fresh hidden comments in a watched room, for moderators by either way.
//!
//! proptest drives a synchronous closure, so the test owns its tokio runtime and blocks
//! on each case; the server runs on that runtime's worker threads meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};

use danmaku::model::Role;
use proptest::{
    prelude::*,
    test_runner::{Config as PropConfig, TestCaseError, TestRunner},
};
use serde_json::{Value, json};

use crate::common::{API_KEY, TestApp, WsClient, status_json};

/// Channel and video tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Free,
    Member,
    Admin,
}

/// Push audiences.
#[derive(Debug, Clone, Copy)]
enum Audience {
    Everyone,
    Members,
    Free,
}

/// Comment styles a post may ask for.
#[derive(Debug, Clone, Copy)]
enum Style {
    Plain,
    Top,
    Color,
    MembersOnly,
}

/// One operation of a step.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Open a socket and subscribe to a channel of the tier, then an admin pushes to it
    /// with the audience (and then the other two); every socket of the case is checked.
    Subscribe(Tier, Audience),
    /// Post a comment of the style to a video of the tier (Admin tier: a member video).
    Post(Tier, Style),
    /// Read a video's history.
    History(Tier),
    /// Watch a video's room live while a shadow-banned member posts there, an admin's
    /// post is held by the global rule, then a visible sentinel: the hidden two arrive,
    /// marked, exactly for that video's moderators and admins.
    WatchHidden(Tier),
    /// Export a video's comments as XML.
    Export(Tier),
    /// Push to a free channel over REST with the caller's own credentials.
    Push,
    /// Delete someone else's comment (in the moderated video, [`MOD_VIDEO`]).
    Delete,
    /// Mute a user.
    Mute,
    /// Create a schedule.
    Schedule,
    /// Like the members-only seed comment of a video of the tier.
    LikeSeed(Tier),
    /// Read a video's heatmap (its total must match what history shows the same caller).
    Heatmap(Tier),
    /// Mute a user in [`MOD_VIDEO`] (`PUT /api/moderation/mutes`).
    ModMute,
    /// Mute a user everywhere through the same endpoint (admins only).
    ModMuteEverywhere,
    /// Lift a mute an admin set in [`MOD_VIDEO`].
    ModUnmute,
    /// List [`MOD_VIDEO`]'s mutes.
    ModListMutes,
    /// Read [`MOD_VIDEO`]'s audit log.
    ModAudit,
    /// List [`MOD_VIDEO`]'s moderators.
    ModModerators,
    /// Grant someone moderation of [`MOD_VIDEO`] (admins only, moderators included).
    GrantModerator,
    /// Put [`MOD_VIDEO`] in slow mode (`PUT /api/videos/{id}/slow-mode`).
    SetSlowMode,
    /// Set [`MOD_VIDEO`]'s own flood rule (`PUT /api/videos/{id}/flood-rule`).
    SetFloodRule,
    /// Shadow-ban a user in [`MOD_VIDEO`] (`PUT /api/moderation/shadow-bans`).
    ShadowBan,
    /// Set [`MOD_VIDEO`]'s block rules (`PUT /api/moderation/rules`).
    SetBlockRules,
    /// Set the global block rules (admins only).
    SetGlobalRules,
    /// Hold [`MOD_VIDEO`]'s free posters for review (`PUT /api/videos/{id}/hold`).
    SetHold,
    /// Read [`MOD_VIDEO`]'s review queue.
    ReadQueue,
    /// Approve a comment an admin's post left held in [`MOD_VIDEO`].
    Approve,
    /// Report a comment an admin posted in a video of the tier (free users and members
    /// who can see it; the threshold is out of reach).
    Report(Tier),
    /// Register a webhook (admins only).
    CreateWebhook,
}

/// How a grant reaches the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The token's `mod` claim.
    Claim,
    /// A stored grant (`PUT /api/videos/{id}/moderators/{sub}`) made before the step.
    Stored,
}

/// Whether the caller moderates the video the moderation operations act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModOf {
    Nothing,
    /// [`MOD_VIDEO`] itself.
    This(Via),
    /// Another video ([`OTHER_VIDEO`]): grants nothing on [`MOD_VIDEO`].
    Other(Via),
}

/// The video every moderation operation acts on, and the other one.
const MOD_VIDEO: &str = "pv-free";
const OTHER_VIDEO: &str = "pv-member";

/// A step: who (role, moderation) does what.
#[derive(Debug, Clone, Copy)]
struct Step {
    role: Role,
    moderates: ModOf,
    op: Op,
}

/// Generates steps over every role, tier, audience, style and operation.
fn step() -> impl Strategy<Value = Step> {
    let role = prop_oneof![
        Just(Role::Guest),
        Just(Role::Free),
        Just(Role::Member),
        Just(Role::Admin)
    ];
    let tier = prop_oneof![Just(Tier::Free), Just(Tier::Member), Just(Tier::Admin)];
    let audience = prop_oneof![
        Just(Audience::Everyone),
        Just(Audience::Members),
        Just(Audience::Free)
    ];
    let style = prop_oneof![
        Just(Style::Plain),
        Just(Style::Top),
        Just(Style::Color),
        Just(Style::MembersOnly)
    ];
    let op = prop_oneof![
        4 => (tier.clone(), audience).prop_map(|(t, a)| Op::Subscribe(t, a)),
        1 => (tier.clone(), style).prop_map(|(t, s)| Op::Post(t, s)),
        1 => tier.clone().prop_map(Op::History),
        1 => tier.clone().prop_map(Op::WatchHidden),
        1 => tier.clone().prop_map(Op::Export),
        1 => Just(Op::Push),
        1 => Just(Op::Delete),
        1 => Just(Op::Mute),
        1 => Just(Op::Schedule),
        1 => tier.clone().prop_map(Op::LikeSeed),
        1 => tier.clone().prop_map(Op::Heatmap),
        1 => Just(Op::ModMute),
        1 => Just(Op::ModMuteEverywhere),
        1 => Just(Op::ModUnmute),
        1 => Just(Op::ModListMutes),
        1 => Just(Op::ModAudit),
        1 => Just(Op::ModModerators),
        1 => Just(Op::GrantModerator),
        1 => Just(Op::SetSlowMode),
        1 => Just(Op::SetFloodRule),
        1 => Just(Op::ShadowBan),
        1 => Just(Op::SetBlockRules),
        1 => Just(Op::SetGlobalRules),
        1 => Just(Op::SetHold),
        1 => Just(Op::ReadQueue),
        1 => Just(Op::Approve),
        1 => tier.clone().prop_map(Op::Report),
        1 => Just(Op::CreateWebhook),
    ];
    let via = prop_oneof![Just(Via::Claim), Just(Via::Stored)];
    let moderates = prop_oneof![
        Just(ModOf::Nothing),
        via.clone().prop_map(ModOf::This),
        via.prop_map(ModOf::Other),
    ];
    (role, moderates, op).prop_map(|(role, moderates, op)| Step {
        role,
        moderates,
        op,
    })
}

// ---- the reference model ----

/// May `role` join a channel of `tier`?
fn model_joins(tier: Tier, role: Role) -> bool {
    match tier {
        Tier::Free => true,
        Tier::Member => matches!(role, Role::Member | Role::Admin),
        Tier::Admin => role == Role::Admin,
    }
}

/// Does an event for `audience` reach `role`?
fn model_admits(audience: Audience, role: Role) -> bool {
    match audience {
        Audience::Everyone => true,
        Audience::Members => matches!(role, Role::Member | Role::Admin),
        Audience::Free => matches!(role, Role::Guest | Role::Free),
    }
}

/// May `role` read a video of `tier` (videos are free or member)?
fn model_reads_video(tier: Tier, role: Role) -> bool {
    tier == Tier::Free || matches!(role, Role::Member | Role::Admin)
}

/// May `role` see members-only comments?
fn model_sees_members_only(role: Role) -> bool {
    matches!(role, Role::Member | Role::Admin)
}

/// The status of a post: login first, then style privileges, then the video's tier.
fn model_post(role: Role, tier: Tier, style: Style) -> u16 {
    if role == Role::Guest {
        return 401;
    }
    let member_style = matches!(style, Style::Top | Style::Color | Style::MembersOnly);
    if member_style && role == Role::Free {
        return 403;
    }
    if !model_reads_video(tier, role) {
        return 403;
    }
    201
}

/// The status class of an admin operation: success for admins, 401 for guests (no
/// credentials), 403 for other users.
fn model_admin_op(role: Role) -> Result<(), u16> {
    match role {
        Role::Admin => Ok(()),
        Role::Guest => Err(401),
        _ => Err(403),
    }
}

/// Does a caller of `role` moderate [`MOD_VIDEO`]? Admins moderate everything; guests
/// (no token) nothing; anyone else exactly when granted that video, whichever the way.
fn model_moderates(role: Role, m: ModOf) -> bool {
    match role {
        Role::Guest => false,
        Role::Admin => true,
        _ => matches!(m, ModOf::This(_)),
    }
}

/// Does the caller moderate `video` (one of the two), so that it sees hidden comments?
fn model_moderates_video(role: Role, m: ModOf, video: &str) -> bool {
    match (role, m) {
        (Role::Guest, _) => false,
        (Role::Admin, _) => true,
        (_, ModOf::This(_)) => video == MOD_VIDEO,
        (_, ModOf::Other(_)) => video == OTHER_VIDEO,
        (_, ModOf::Nothing) => false,
    }
}

/// The outcome of a moderator operation on [`MOD_VIDEO`]: success, or the refusal's
/// status and code.
fn model_mod_op(role: Role, m: ModOf) -> Result<(), (u16, &'static str)> {
    if role == Role::Guest {
        Err((401, "missing_token"))
    } else if model_moderates(role, m) {
        Ok(())
    } else {
        Err((403, "not_moderator"))
    }
}

/// The outcome of a moderation operation on every video: admins only, however much the
/// caller moderates.
fn model_everywhere_op(role: Role) -> Result<(), (u16, &'static str)> {
    match role {
        Role::Admin => Ok(()),
        Role::Guest => Err((401, "missing_token")),
        _ => Err((403, "not_moderator")),
    }
}

// ---- the live system ----

/// Names of the fixtures per tier.
fn channel(tier: Tier) -> &'static str {
    match tier {
        Tier::Free => "pfree",
        Tier::Member => "pmember",
        Tier::Admin => "padmin",
    }
}

/// Videos are free or member; the Admin tier maps to the member video.
fn video(tier: Tier) -> &'static str {
    match tier {
        Tier::Free => "pv-free",
        Tier::Member | Tier::Admin => "pv-member",
    }
}

/// Texts of the members-only comments seeded on each video.
const SECRET_TEXT: &str = "members-only-seed";

/// Texts of the shadowed and the held comment seeded on each video (by a member
/// shadow-banned everywhere, and by an admin whose text a global `hold` rule matches):
/// nobody but the video's moderators and admins may ever read them.
const SHADOW_TEXT: &str = "shadowed-seed";
const HELD_TEXT: &str = "held-seed";

/// Declares the channels and videos and seeds a members-only comment on each video.
async fn fixtures(app: &TestApp) {
    for t in [Tier::Free, Tier::Member, Tier::Admin] {
        let tier = match t {
            Tier::Free => "free",
            Tier::Member => "member",
            Tier::Admin => "admin",
        };
        app.declare(channel(t), tier).await;
    }
    for (v, tier) in [("pv-free", "free"), ("pv-member", "member")] {
        let (status, body) = app
            .admin_put(
                &format!("/api/videos/{v}"),
                json!({"title": v, "tier": tier}),
            )
            .await;
        assert!(status == 200 || status == 201, "{v}: {status} {body}");
        let (status, body) = app
            .admin_post(
                &format!("/api/videos/{v}/danmaku"),
                json!({"text": SECRET_TEXT, "time": 1.0, "audience": "members"}),
            )
            .await;
        assert_eq!(status, 201, "seed {v}: {body}");
    }
    let (status, body) = app
        .admin_put(
            "/api/moderation/rules",
            json!({"rules": [{"kind": "word", "pattern": HELD_TEXT, "action": "hold"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for v in ["pv-free", "pv-member"] {
        // One shadow-banned poster per video: no cooldown between the two seeds.
        let poster = format!("shadowy-{v}");
        let (status, body) = app
            .admin_put(
                "/api/moderation/shadow-bans",
                json!({"sub": poster, "seconds": 31_536_000}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let shadowy = app.token(&poster, Role::Member);
        let resp = app
            .http
            .post(app.url(&format!("/api/videos/{v}/danmaku")))
            .bearer_auth(&shadowy)
            .json(&json!({"text": SHADOW_TEXT, "time": 2.0}))
            .send()
            .await
            .expect("post");
        let (status, body) = status_json(resp).await;
        assert!(
            status == 201 && body.get("state").is_none(),
            "{status} {body}"
        );
        let (status, body) = app
            .admin_post(
                &format!("/api/videos/{v}/danmaku"),
                json!({"text": HELD_TEXT, "time": 3.0}),
            )
            .await;
        assert!(status == 201 && body["state"] == "held", "{status} {body}");
    }
}

/// Whether `items` (a history page) holds hidden seeds, and whether every one it holds
/// is marked with its state.
fn hidden_seeds(items: &[Value]) -> (usize, bool) {
    let hidden: Vec<&Value> = items
        .iter()
        .filter(|i| i["text"] == SHADOW_TEXT || i["text"] == HELD_TEXT)
        .collect();
    let marked = hidden.iter().all(|i| {
        i["state"]
            == if i["text"] == SHADOW_TEXT {
                "shadow"
            } else {
                "held"
            }
    });
    (hidden.len(), marked)
}

/// Unique subs across cases, so cooldowns and mutes never carry over.
static NEXT_SUB: AtomicUsize = AtomicUsize::new(0);

/// A fresh identity of `role`, moderating as `m` says: a bearer token (with a `mod`
/// claim, or after a stored grant), or none for guests (who cannot moderate).
async fn identity(app: &TestApp, role: Role, m: ModOf) -> (String, Option<String>) {
    let sub = format!("p{}", NEXT_SUB.fetch_add(1, Ordering::Relaxed));
    if role == Role::Guest {
        return (sub, None);
    }
    let video = match m {
        ModOf::Nothing => return (sub.clone(), Some(app.token(&sub, role))),
        ModOf::This(_) => MOD_VIDEO,
        ModOf::Other(_) => OTHER_VIDEO,
    };
    let token = match m {
        ModOf::This(Via::Claim) | ModOf::Other(Via::Claim) => app.token_mod(&sub, role, &[video]),
        _ => {
            let (status, body) = app
                .admin_put(&format!("/api/videos/{video}/moderators/{sub}"), json!({}))
                .await;
            assert_eq!(status, 201, "grant: {body}");
            app.token(&sub, role)
        }
    };
    (sub, Some(token))
}

/// Whether an admin sees a mute of `sub` in `video` (`None`: everywhere).
async fn muted(app: &TestApp, sub: &str, video: Option<&str>) -> bool {
    let resp = app
        .http
        .get(app.url("/api/moderation/mutes"))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .expect("list mutes");
    let (status, list) = status_json(resp).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().expect("a list").iter().any(|m| {
        m["sub"] == sub
            && match video {
                Some(v) => m["video"] == v,
                None => m["video"].is_null(),
            }
    })
}

/// Compares a moderation operation's outcome with the model's.
fn check_mod_op(
    s: Step,
    want: Result<(), (u16, &'static str)>,
    status: u16,
    body: &Value,
    ok: u16,
) -> Result<(), TestCaseError> {
    match want {
        Ok(()) => check(status == ok, || {
            format!("{s:?}: {status} {body}, model says {ok}")
        }),
        Err((code_status, code)) => check(status == code_status && body["code"] == code, || {
            format!("{s:?}: {status} {body}, model says {code_status} {code}")
        }),
    }
}

/// Sends a request with the identity's token, if any.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

/// A socket opened by an earlier step of the case, kept open for the later ones.
struct Socket {
    role: Role,
    /// The tier of the channel it joined, if the join was allowed.
    joined: Option<Tier>,
    c: WsClient,
}

/// The wire name of an audience.
fn name(a: Audience) -> &'static str {
    match a {
        Audience::Everyone => "everyone",
        Audience::Members => "members",
        Audience::Free => "free",
    }
}

/// Checks one condition, failing the case (not panicking) so proptest can shrink.
fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(msg()))
    }
}

/// Runs one step and compares it with the model.
async fn run_step(
    app: &TestApp,
    open: &mut Vec<Socket>,
    n: usize,
    s: Step,
) -> Result<(), TestCaseError> {
    let role = s.role;
    let (sub, token) = identity(app, role, s.moderates).await;
    let token = token.as_deref();
    match s.op {
        Op::Subscribe(tier, first) => {
            let url = match token {
                Some(t) => format!("{}?access_token={t}", app.ws_base),
                None => app.ws_base.clone(),
            };
            let mut c = WsClient::connect(&url).await;
            let reply = c.subscribe(channel(tier)).await;
            let joined = reply["ok"] == true;
            check(joined == model_joins(tier, role), || {
                format!("{s:?}: subscribe reply {reply}")
            })?;
            open.push(Socket {
                role,
                joined: joined.then_some(tier),
                c,
            });
            // The step's audience first, then the other two: every socket of the case,
            // old and new, is checked against every audience on this channel.
            let mut audiences = vec![first];
            for a in [Audience::Everyone, Audience::Members, Audience::Free] {
                if !matches!(
                    (a, first),
                    (Audience::Everyone, Audience::Everyone)
                        | (Audience::Members, Audience::Members)
                        | (Audience::Free, Audience::Free)
                ) {
                    audiences.push(a);
                }
            }
            for a in &audiences {
                app.push_channel(
                    channel(tier),
                    json!({"payload": {"tag": format!("ev{n}-{}", name(*a))}, "audience": name(*a)}),
                )
                .await;
            }
            // Each socket reads up to a sentinel that comes after the step's events on a
            // path it is sure to get in order: the channel itself for its members (events
            // of one channel are ordered; a broadcast may overtake a channel's batch
            // window), the broadcast for every other socket.
            let sentinel = format!("sentinel{n}");
            let channel_sentinel = format!("sentinel{n}-channel");
            app.push_channel(
                channel(tier),
                json!({"payload": {"tag": channel_sentinel}, "audience": "everyone"}),
            )
            .await;
            app.admin_post(
                "/api/push/broadcast",
                json!({"event": "sentinel", "payload": {"tag": sentinel}}),
            )
            .await;
            for sock in open.iter_mut() {
                let last = if sock.joined == Some(tier) {
                    channel_sentinel.as_str()
                } else {
                    sentinel.as_str()
                };
                let (before, _) = sock
                    .c
                    .until(|v| crate::common::tag_of(v) == Some(last))
                    .await;
                for a in &audiences {
                    let tag = format!("ev{n}-{}", name(*a));
                    let got = before
                        .iter()
                        .any(|v| crate::common::tag_of(v) == Some(tag.as_str()));
                    let want = sock.joined == Some(tier) && model_admits(*a, sock.role);
                    check(got == want, || {
                        format!(
                            "{s:?}: a {:?} socket on {:?} got {a:?} event: {got}, model says {want}",
                            sock.role, sock.joined
                        )
                    })?;
                }
            }
        }
        Op::Post(tier, style) => {
            let mut body = json!({"text": format!("c{n}"), "time": 2.0});
            match style {
                Style::Plain => {}
                Style::Top => body["mode"] = json!("top"),
                Style::Color => body["color"] = json!("#ff0000"),
                Style::MembersOnly => body["audience"] = json!("members"),
            }
            let path = format!("/api/videos/{}/danmaku", video(tier));
            let (status, reply, _) =
                call(app, reqwest::Method::POST, &path, token, Some(body)).await;
            let want = model_post(role, tier, style);
            check(status == want, || {
                format!("{s:?}: post {status} {reply}, model says {want}")
            })?;
        }
        Op::History(tier) => {
            let path = format!("/api/videos/{}/danmaku?limit=10000", video(tier));
            let (status, body, _) = call(app, reqwest::Method::GET, &path, token, None).await;
            if !model_reads_video(tier, role) {
                return check(status == 403, || format!("{s:?}: history {status} {body}"));
            }
            check(status == 200, || format!("{s:?}: history {status} {body}"))?;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            let members_only = items.iter().filter(|i| i["audience"] == "members").count();
            let seed = items.iter().any(|i| i["text"] == SECRET_TEXT);
            let (hidden, marked) = hidden_seeds(&items);
            let sees = model_moderates_video(role, s.moderates, video(tier));
            check(hidden == if sees { 2 } else { 0 } && marked, || {
                format!("{s:?}: {hidden} hidden seeds (marked: {marked}), model says {sees}")
            })?;
            if model_sees_members_only(role) {
                check(seed, || format!("{s:?}: members lost the seed"))?;
            } else {
                check(members_only == 0 && !seed, || {
                    format!("{s:?}: {members_only} members-only items leaked")
                })?;
            }
        }
        Op::WatchHidden(tier) => {
            let v = video(tier);
            let url = match token {
                Some(t) => format!("{}?access_token={t}", app.ws_base),
                None => app.ws_base.clone(),
            };
            let mut c = WsClient::connect(&url).await;
            let reply = c.subscribe(&format!("video:{v}")).await;
            let joined = reply["ok"] == true;
            check(joined == model_reads_video(tier, role), || {
                format!("{s:?}: subscribe to video:{v}: {reply}")
            })?;
            if !joined {
                return Ok(());
            }
            let tag = format!("watch-{n}-{sub}");
            let poster = format!("{tag}-shadowy");
            let (status, body) = app
                .admin_put(
                    "/api/moderation/shadow-bans",
                    json!({"sub": poster, "seconds": 600}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let shadowy = app.token(&poster, Role::Member);
            let path = format!("/api/videos/{v}/danmaku");
            let shadow_text = format!("{tag} shadow");
            let (status, body, _) = call(
                app,
                reqwest::Method::POST,
                &path,
                Some(&shadowy),
                Some(json!({"text": shadow_text, "time": 4.0})),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            let held_text = format!("{tag} {HELD_TEXT}");
            let (status, body) = app
                .admin_post(&path, json!({"text": held_text, "time": 5.0}))
                .await;
            assert!(status == 201 && body["state"] == "held", "{status} {body}");
            let sentinel = format!("{tag} sentinel");
            let (status, body) = app
                .admin_post(&path, json!({"text": sentinel, "time": 6.0}))
                .await;
            assert_eq!(status, 201, "{body}");
            let (before, _) = c
                .until(|e| e["type"] == "danmaku" && e["data"]["text"] == sentinel.as_str())
                .await;
            let got: Vec<(String, String)> = before
                .iter()
                .filter(|e| e.to_string().contains(&tag))
                .map(|e| {
                    (
                        e["data"]["text"].as_str().unwrap_or_default().to_string(),
                        e["data"]["state"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            let want: Vec<(String, String)> = if model_moderates_video(role, s.moderates, v) {
                vec![(shadow_text, "shadow".into()), (held_text, "held".into())]
            } else {
                Vec::new()
            };
            check(got == want, || {
                format!("{s:?}: live hidden comments {got:?}, model says {want:?}")
            })?;
        }
        Op::LikeSeed(tier) => {
            let admin = app.token("root", Role::Admin);
            let path = format!("/api/videos/{}/danmaku?limit=10000", video(tier));
            let (_, page, _) = call(app, reqwest::Method::GET, &path, Some(&admin), None).await;
            let seed = page["items"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["text"] == SECRET_TEXT))
                .and_then(|i| i["id"].as_i64())
                .expect("the seed comment");
            let like = format!("/api/danmaku/{seed}/like");
            let (status, body, _) = call(app, reqwest::Method::POST, &like, token, None).await;
            // A comment the caller may not see does not exist for them.
            let want = match role {
                Role::Guest => 401,
                _ if model_sees_members_only(role) => 200,
                _ => 404,
            };
            check(status == want, || {
                format!("{s:?}: like {status} {body}, model says {want}")
            })?;
            if want == 404 {
                check(body["code"] == "unknown_danmaku", || {
                    format!("{s:?}: {body}")
                })?;
            }
        }
        Op::Heatmap(tier) => {
            let v = video(tier);
            let heat = format!("/api/videos/{v}/heatmap?buckets=10&duration=86400");
            let (status, h, _) = call(app, reqwest::Method::GET, &heat, token, None).await;
            if !model_reads_video(tier, role) {
                return check(status == 403, || format!("{s:?}: heatmap {status} {h}"));
            }
            check(status == 200, || format!("{s:?}: heatmap {status} {h}"))?;
            let path = format!("/api/videos/{v}/danmaku?limit=10000");
            let (_, page, _) = call(app, reqwest::Method::GET, &path, token, None).await;
            // Hidden comments are never counted, whoever reads: a moderator's history
            // shows them marked, which the count leaves out.
            let shown = page["items"]
                .as_array()
                .map(|items| items.iter().filter(|i| i.get("state").is_none()).count())
                .unwrap_or(0) as u64;
            check(h["total"].as_u64() == Some(shown), || {
                format!(
                    "{s:?}: heatmap counts {} but history shows {shown}",
                    h["total"]
                )
            })?;
        }
        Op::Export(tier) => {
            let path = format!("/api/videos/{}/danmaku.xml", video(tier));
            let (status, _, text) = call(app, reqwest::Method::GET, &path, token, None).await;
            if !model_reads_video(tier, role) {
                return check(status == 403, || format!("{s:?}: export {status}"));
            }
            check(status == 200, || format!("{s:?}: export {status}"))?;
            let has_seed = text.contains(SECRET_TEXT);
            check(has_seed == model_sees_members_only(role), || {
                format!("{s:?}: export has the members-only seed: {has_seed}")
            })?;
            let leaked = text.contains(&format!(">{SHADOW_TEXT}<"))
                || text.contains(&format!(">{HELD_TEXT}<"));
            check(!leaked, || {
                format!("{s:?}: an export carries a hidden seed")
            })?;
        }
        Op::Push => {
            let (status, body, _) = call(
                app,
                reqwest::Method::POST,
                "/api/push/channels/pfree",
                token,
                Some(json!({"payload": {"tag": format!("rest{n}")}})),
            )
            .await;
            check_admin_op(s, status, &body, 200)?;
        }
        Op::Delete => {
            let (status, posted) = app
                .admin_post(
                    &format!("/api/videos/{MOD_VIDEO}/danmaku"),
                    json!({"text": format!("victim{n}"), "time": 3.0}),
                )
                .await;
            assert_eq!(status, 201, "{posted}");
            let id = posted["id"].as_i64().expect("comment id");
            let (status, body, _) = call(
                app,
                reqwest::Method::DELETE,
                &format!("/api/danmaku/{id}?reason=prop"),
                token,
                None,
            )
            .await;
            let want = model_mod_op(role, s.moderates);
            check_mod_op(s, want, status, &body, 204)?;
            if want.is_err() {
                // Refused: the comment is still there.
                let path = format!("/api/videos/{MOD_VIDEO}/danmaku?limit=10000");
                let admin = app.token("root", Role::Admin);
                let (_, page, _) = call(app, reqwest::Method::GET, &path, Some(&admin), None).await;
                let kept = page["items"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| i["id"] == id));
                check(kept, || format!("{s:?}: a refused delete removed {id}"))?;
            }
        }
        Op::ModMute | Op::ModMuteEverywhere => {
            let victim = format!("{sub}-victim");
            let video = matches!(s.op, Op::ModMute).then_some(MOD_VIDEO);
            let (status, body, _) = call(
                app,
                reqwest::Method::PUT,
                "/api/moderation/mutes",
                token,
                Some(json!({"sub": victim, "video": video, "seconds": 60, "reason": "prop"})),
            )
            .await;
            let want = match video {
                Some(_) => model_mod_op(role, s.moderates),
                None => model_everywhere_op(role),
            };
            check_mod_op(s, want, status, &body, 200)?;
            let now_muted = muted(app, &victim, video).await;
            check(now_muted == want.is_ok(), || {
                format!("{s:?}: muted afterwards: {now_muted}")
            })?;
        }
        Op::ModUnmute => {
            let victim = format!("{sub}-victim");
            let (status, body) = app
                .admin_put(
                    "/api/moderation/mutes",
                    json!({"sub": victim, "video": MOD_VIDEO, "seconds": 60}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let (status, body, _) = call(
                app,
                reqwest::Method::DELETE,
                &format!("/api/moderation/mutes/{victim}?video={MOD_VIDEO}"),
                token,
                None,
            )
            .await;
            let want = model_mod_op(role, s.moderates);
            check_mod_op(s, want, status, &body, 204)?;
            let still = muted(app, &victim, Some(MOD_VIDEO)).await;
            check(still == want.is_err(), || {
                format!("{s:?}: still muted afterwards: {still}")
            })?;
        }
        Op::ModListMutes | Op::ModAudit | Op::ModModerators => {
            let path = match s.op {
                Op::ModListMutes => format!("/api/moderation/mutes?video={MOD_VIDEO}"),
                Op::ModAudit => format!("/api/moderation/audit?video={MOD_VIDEO}"),
                _ => format!("/api/videos/{MOD_VIDEO}/moderators"),
            };
            let (status, body, _) = call(app, reqwest::Method::GET, &path, token, None).await;
            check_mod_op(s, model_mod_op(role, s.moderates), status, &body, 200)?;
        }
        Op::GrantModerator => {
            let path = format!("/api/videos/{MOD_VIDEO}/moderators/{sub}-granted");
            let (status, body, _) = call(app, reqwest::Method::PUT, &path, token, None).await;
            let want = match role {
                Role::Admin => Ok(()),
                Role::Guest => Err((401, "missing_token")),
                _ => Err((403, "forbidden")),
            };
            check_mod_op(s, want, status, &body, 201)?;
            let resp = app
                .http
                .get(app.url(&format!("/api/videos/{MOD_VIDEO}/moderators")))
                .header("X-Api-Key", API_KEY)
                .send()
                .await
                .expect("list moderators");
            let (_, list) = status_json(resp).await;
            let granted = list
                .as_array()
                .is_some_and(|l| l.iter().any(|g| g["sub"] == format!("{sub}-granted")));
            check(granted == want.is_ok(), || {
                format!("{s:?}: granted afterwards: {granted}")
            })?;
        }
        Op::SetSlowMode | Op::SetFloodRule => {
            let (path, body) = match s.op {
                Op::SetSlowMode => (
                    format!("/api/videos/{MOD_VIDEO}/slow-mode"),
                    json!({"seconds": 1, "roles": ["guest"]}),
                ),
                _ => (
                    format!("/api/videos/{MOD_VIDEO}/flood-rule"),
                    json!({"max_comments": 1000, "window_s": 1, "mute_s": 1}),
                ),
            };
            let (status, body, _) = call(app, reqwest::Method::PUT, &path, token, Some(body)).await;
            let want = model_mod_op(role, s.moderates);
            check_mod_op(s, want, status, &body, 200)?;
            // Set exactly when allowed (a flood rule of its own says `source: video`);
            // an admin then clears it, so every step starts without one.
            let resp = app
                .http
                .get(app.url(&path))
                .header("X-Api-Key", API_KEY)
                .send()
                .await
                .expect("read the rule");
            let (status, rule) = status_json(resp).await;
            let set =
                status == 200 && (matches!(s.op, Op::SetSlowMode) || rule["source"] == "video");
            check(set == want.is_ok(), || {
                format!("{s:?}: set afterwards: {set} ({status} {rule})")
            })?;
            if set {
                let resp = app
                    .http
                    .delete(app.url(&path))
                    .header("X-Api-Key", API_KEY)
                    .send()
                    .await
                    .expect("clear the rule");
                assert_eq!(resp.status().as_u16(), 204);
            }
        }
        Op::ShadowBan => {
            let victim = format!("{sub}-shadowed");
            let (status, body, _) = call(
                app,
                reqwest::Method::PUT,
                "/api/moderation/shadow-bans",
                token,
                Some(json!({"sub": victim, "video": MOD_VIDEO, "seconds": 60})),
            )
            .await;
            let want = model_mod_op(role, s.moderates);
            check_mod_op(s, want, status, &body, 200)?;
            let (_, list) = admin_get(app, "/api/moderation/shadow-bans").await;
            let banned = list.as_array().is_some_and(|l| {
                l.iter()
                    .any(|b| b["sub"] == victim && b["video"] == MOD_VIDEO)
            });
            check(banned == want.is_ok(), || {
                format!("{s:?}: shadow-banned afterwards: {banned}")
            })?;
        }
        Op::SetBlockRules | Op::SetGlobalRules => {
            let video = matches!(s.op, Op::SetBlockRules).then_some(MOD_VIDEO);
            let pattern = format!("prop-rule-{n}");
            let mut rules = vec![json!({"kind": "word", "pattern": pattern, "action": "refuse"})];
            if video.is_none() {
                // Keep the global hold rule the seeds rely on.
                rules.push(json!({"kind": "word", "pattern": HELD_TEXT, "action": "hold"}));
            }
            let (status, body, _) = call(
                app,
                reqwest::Method::PUT,
                "/api/moderation/rules",
                token,
                Some(json!({"video": video, "rules": rules})),
            )
            .await;
            let want = match video {
                Some(_) => model_mod_op(role, s.moderates),
                None => model_everywhere_op(role),
            };
            check_mod_op(s, want, status, &body, 200)?;
            let read = match video {
                Some(v) => format!("/api/moderation/rules?video={v}"),
                None => "/api/moderation/rules".to_string(),
            };
            let (_, set) = admin_get(app, &read).await;
            let has = set["rules"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["pattern"] == pattern));
            check(has == want.is_ok(), || {
                format!("{s:?}: rule set afterwards: {has} ({set})")
            })?;
        }
        Op::SetHold => {
            let path = format!("/api/videos/{MOD_VIDEO}/hold");
            let (status, body, _) = call(
                app,
                reqwest::Method::PUT,
                &path,
                token,
                Some(json!({"roles": ["free"]})),
            )
            .await;
            let want = model_mod_op(role, s.moderates);
            check_mod_op(s, want, status, &body, 200)?;
            let (st, _) = admin_get(app, &path).await;
            check((st == 200) == want.is_ok(), || {
                format!("{s:?}: hold rule afterwards: {st}")
            })?;
            if st == 200 {
                let resp = app
                    .http
                    .delete(app.url(&path))
                    .header("X-Api-Key", API_KEY)
                    .send()
                    .await
                    .expect("clear the hold rule");
                assert_eq!(resp.status().as_u16(), 204);
            }
        }
        Op::ReadQueue => {
            let path = format!("/api/moderation/queue?video={MOD_VIDEO}");
            let (status, body, _) = call(app, reqwest::Method::GET, &path, token, None).await;
            check_mod_op(s, model_mod_op(role, s.moderates), status, &body, 200)?;
        }
        Op::Approve => {
            let text = format!("{HELD_TEXT} {n}");
            let (status, held) = app
                .admin_post(
                    &format!("/api/videos/{MOD_VIDEO}/danmaku"),
                    json!({"text": text, "time": 4.0}),
                )
                .await;
            assert!(status == 201 && held["state"] == "held", "{status} {held}");
            let id = held["id"].as_i64().expect("id");
            let (status, body, _) = call(
                app,
                reqwest::Method::POST,
                &format!("/api/danmaku/{id}/approve"),
                token,
                None,
            )
            .await;
            let want = model_mod_op(role, s.moderates);
            check_mod_op(s, want, status, &body, 200)?;
            let (_, page) =
                admin_get(app, &format!("/api/videos/{MOD_VIDEO}/danmaku?limit=10000")).await;
            let state = page["items"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["id"] == id))
                .map(|i| i.get("state").cloned().unwrap_or(json!("visible")));
            let want_state = if want.is_ok() { "visible" } else { "held" };
            check(state == Some(json!(want_state)), || {
                format!("{s:?}: the comment is {state:?} afterwards, model says {want_state}")
            })?;
        }
        Op::Report(tier) => {
            let (status, posted) = app
                .admin_post(
                    &format!("/api/videos/{}/danmaku", video(tier)),
                    json!({"text": format!("reportable {n}"), "time": 5.0}),
                )
                .await;
            assert_eq!(status, 201, "{posted}");
            let id = posted["id"].as_i64().expect("id");
            let (status, body, _) = call(
                app,
                reqwest::Method::POST,
                &format!("/api/danmaku/{id}/report"),
                token,
                Some(json!({"reason": "prop"})),
            )
            .await;
            // Guests must sign in; admins moderate instead; a comment the caller cannot
            // read (a member video for a free user) does not exist for them.
            let want = match role {
                Role::Guest => (401, "missing_token"),
                Role::Admin => (403, "forbidden"),
                _ if !model_reads_video(tier, role) => (404, "unknown_danmaku"),
                _ => (200, ""),
            };
            check(
                status == want.0 && (want.0 == 200 || body["code"] == want.1),
                || format!("{s:?}: report {status} {body}, model says {want:?}"),
            )?;
        }
        Op::CreateWebhook => {
            let (status, body, _) = call(
                app,
                reqwest::Method::POST,
                "/api/webhooks",
                token,
                Some(
                    json!({"url": "http://127.0.0.1:9/hook", "events": ["user.muted"],
                    "secret": "a-secret-of-16-chars-at-least"}),
                ),
            )
            .await;
            check_admin_op(s, status, &body, 201)?;
            if status == 201 {
                let id = body["id"].as_str().expect("id");
                let resp = app
                    .http
                    .delete(app.url(&format!("/api/webhooks/{id}")))
                    .header("X-Api-Key", API_KEY)
                    .send()
                    .await
                    .expect("delete the webhook");
                assert_eq!(resp.status().as_u16(), 204);
            }
        }
        Op::Mute => {
            let (status, body, _) = call(
                app,
                reqwest::Method::POST,
                &format!("/api/users/{sub}-victim/mute"),
                token,
                Some(json!({"seconds": 0})),
            )
            .await;
            check_admin_op(s, status, &body, 200)?;
        }
        Op::Schedule => {
            let def = json!({"name": format!("prop{n}"), "every_s": 3600,
                "target": {"kind": "broadcast"}, "payload": {"tag": "never"}});
            let (status, body, _) = call(
                app,
                reqwest::Method::POST,
                "/api/schedules",
                token,
                Some(def),
            )
            .await;
            check_admin_op(s, status, &body, 201)?;
            if status == 201 {
                // Keep the server's schedule count bounded across cases.
                let id = body["id"].as_str().expect("schedule id");
                let resp = app
                    .http
                    .delete(app.url(&format!("/api/schedules/{id}")))
                    .header("X-Api-Key", API_KEY)
                    .send()
                    .await
                    .expect("delete");
                let (st, b) = status_json(resp).await;
                assert!(st == 200 || st == 204, "{st} {b}");
            }
        }
    }
    Ok(())
}

/// GETs `path` with the admin API key.
async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = app
        .http
        .get(app.url(path))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .expect("admin read");
    status_json(resp).await
}

/// Compares an admin operation's status with the model.
fn check_admin_op(s: Step, status: u16, body: &Value, ok: u16) -> Result<(), TestCaseError> {
    match model_admin_op(s.role) {
        Ok(()) => check(status == ok, || format!("{s:?}: admin got {status} {body}")),
        Err(want) => check(status == want, || {
            format!("{s:?}: {status} {body}, model says {want}")
        }),
    }
}

#[test]
fn random_sequences_follow_the_authorization_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = rt.block_on(async {
        let app = TestApp::start().await;
        fixtures(&app).await;
        app
    });
    let mut runner = TestRunner::new(PropConfig {
        cases: 32,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let counter = AtomicUsize::new(0);
    let result = runner.run(&proptest::collection::vec(step(), 1..12), |steps| {
        rt.block_on(async {
            let mut open = Vec::new();
            for s in steps {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                run_step(&app, &mut open, n, s).await?;
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(async move { drop(app) });
}
