//! The PostgreSQL store against the SQLite one: every store query answers the same.

use crate::common::cluster::{cleanup, requested, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_every_store_query_like_sqlite() {
    use danmaku::{
        model::{Audience, Mode, Size, Tier, Visibility},
        store::{
            ScheduleRecord, ScheduleStore, Store,
            danmaku::{DanmakuStore, Deferred, HistoryQuery, NewDanmaku, Video},
            engagement::EngagementStore,
            moderation::{ModerationStore, Restraint},
            postgres::PgStore,
            sqlite::SqliteStore,
        },
    };
    let Some(svc) = requested("store_parity").await else {
        return;
    };
    let ns = unique("parity");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path()).unwrap();
    let pg = PgStore::open(&svc.pg, &ns)
        .await
        .expect("postgres store opens");
    // Opening twice is idempotent (migrations already applied).
    let pg_again = PgStore::open(&svc.pg, &ns).await.expect("reopens");
    let stores: [&dyn Store; 2] = [&sqlite, &pg];
    let comment = |i: u64| NewDanmaku {
        video: if i.is_multiple_of(5) {
            "v2".into()
        } else {
            "v1".into()
        },
        time_ms: (i * 7919) % 1000,
        text: format!("c{i}"),
        mode: [Mode::Scroll, Mode::Top, Mode::Bottom][i as usize % 3],
        color: i as u32 * 1000,
        size: [Size::Small, Size::Normal, Size::Large][i as usize % 3],
        audience: [Audience::Everyone, Audience::Members, Audience::Free][i as usize % 3],
        sub: format!("u{}", i % 4),
        name: format!("U{i}"),
        created_at: 1_700_000_000_000 + i,
        state: match i % 7 {
            3 => Visibility::Held,
            5 => Visibility::Shadow,
            _ => Visibility::Visible,
        },
    };
    for s in stores {
        for i in 1..=30 {
            s.insert_danmaku(comment(i)).await.unwrap();
        }
        assert_eq!(
            s.insert_many((31..=40).map(comment).collect())
                .await
                .unwrap(),
            10
        );
        assert!(s.tombstone_danmaku(3, 99).await.unwrap());
        assert!(
            !s.tombstone_danmaku(3, 100).await.unwrap(),
            "already deleted"
        );
        assert!(s.put_channel("news", Tier::Member).await.unwrap());
        assert!(!s.put_channel("news", Tier::Free).await.unwrap());
        assert!(s.put_channel("gone", Tier::Free).await.unwrap());
        assert!(s.delete_channel("gone").await.unwrap());
        let v = Video {
            id: "v1".into(),
            title: "t".into(),
            tier: Tier::Member,
            updated_at: 5,
        };
        assert!(s.put_video(v.clone()).await.unwrap());
        assert!(!s.put_video(v).await.unwrap());
        moderation_writes(s).await;
        let rec = ScheduleRecord {
            id: "s-1".into(),
            definition: r#"{"name":"n"}"#.into(),
            paused: false,
            created_at: 1,
            last_run: None,
            last_delivered: None,
            runs: 0,
        };
        s.put_schedule(&rec).await.unwrap();
        assert!(s.put_schedule(&rec).await.is_err(), "ids are unique");
        assert!(s.set_schedule_paused("s-1", true).await.unwrap());
        assert!(s.record_schedule_run("s-1", 9, 2, 3).await.unwrap());
        assert!(!s.record_schedule_run("s-x", 9, 2, 3).await.unwrap());
        s.flush().await.unwrap();
    }
    let mut queries = Vec::new();
    for members in [false, true] {
        for newest in [false, true] {
            for (from_ms, to_ms) in [(None, None), (Some(100), Some(700))] {
                for after_id in [None, Some(12)] {
                    for limit in [5, 100] {
                        for (author, every_state) in
                            [(None, false), (Some("u1".to_string()), false), (None, true)]
                        {
                            queries.push(HistoryQuery {
                                video: "v1".into(),
                                from_ms,
                                to_ms,
                                after_id,
                                limit,
                                members,
                                newest,
                                author,
                                every_state,
                            });
                        }
                    }
                }
            }
        }
    }
    for q in queries {
        let a = sqlite.history(q.clone()).await.unwrap();
        let b = pg.history(q.clone()).await.unwrap();
        assert!(!a.is_empty(), "{q:?}");
        assert_eq!(a, b, "{q:?}");
    }
    assert_eq!(
        sqlite.get_danmaku(3).await.unwrap(),
        pg.get_danmaku(3).await.unwrap()
    );
    assert_eq!(pg.get_danmaku(999).await.unwrap(), None);
    let strip = |v: Vec<danmaku::store::ChannelDecl>| {
        v.into_iter().map(|d| (d.name, d.tier)).collect::<Vec<_>>()
    };
    assert_eq!(
        strip(sqlite.list_channels().await.unwrap()),
        strip(pg_again.list_channels().await.unwrap())
    );
    assert_eq!(
        sqlite.list_videos().await.unwrap(),
        pg.list_videos().await.unwrap()
    );
    // Moderation: mutes in force (expired ones never listed), grants, the audit log
    // (appended only by the writes that changed something) and its paging.
    let mutes = sqlite.list_mutes(Restraint::Mute, 1000).await.unwrap();
    assert_eq!(mutes, pg.list_mutes(Restraint::Mute, 1000).await.unwrap());
    assert_eq!(
        mutes
            .iter()
            .map(|m| (m.sub.as_str(), m.video.as_deref()))
            .collect::<Vec<_>>(),
        [("u1", None), ("u3", Some("v1"))]
    );
    for video in [None, Some("v1"), Some("v2")] {
        assert_eq!(
            sqlite.list_moderators(video).await.unwrap(),
            pg.list_moderators(video).await.unwrap(),
            "{video:?}"
        );
    }
    assert_eq!(sqlite.list_moderators(None).await.unwrap().len(), 2);
    for (video, before_id, limit) in [
        (None, None, 100),
        (None, Some(4), 2),
        (Some("v1"), None, 100),
        (Some("v2"), None, 1),
    ] {
        let q = danmaku::store::moderation::AuditQuery {
            video: video.map(str::to_string),
            before_id,
            limit,
        };
        let (a, b) = (
            sqlite.audit_page(q.clone()).await.unwrap(),
            pg.audit_page(q.clone()).await.unwrap(),
        );
        assert_eq!(a, b, "{q:?}");
        assert!(!a.is_empty(), "{q:?}");
        assert!(a.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    }
    let all = sqlite
        .audit_page(danmaku::store::moderation::AuditQuery {
            video: None,
            before_id: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .rev()
            .map(|e| e.entry.action.as_str())
            .collect::<Vec<_>>(),
        [
            "user_muted",
            "user_muted",
            "user_muted",
            "user_muted",
            "moderator_added",
            "moderator_added",
            "moderator_added",
            "moderator_removed",
            "user_unmuted",
            "comment_deleted",
        ]
    );
    assert_eq!(
        sqlite.list_schedules().await.unwrap(),
        pg.list_schedules().await.unwrap()
    );
    assert!(pg.delete_schedule("s-1").await.unwrap());
    assert!(!pg.delete_schedule("s-1").await.unwrap());

    // Slow modes and flood rules: set, replaced, cleared once, expired ones never
    // listed; automatic mutes audited as `system` and counted per (video, user) since a
    // time (the escalation's memory).
    for s in stores {
        room_rules_writes(s).await;
    }
    {
        use danmaku::store::{moderation::Action, room_rules::RoomRulesStore};
        for now in [0, 1500, 5000] {
            let a = sqlite.list_slow_modes(now).await.unwrap();
            assert_eq!(a, pg.list_slow_modes(now).await.unwrap(), "{now}");
        }
        let listed: Vec<(String, u32)> = sqlite
            .list_slow_modes(1500)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.video, m.seconds))
            .collect();
        assert_eq!(listed, [("v3".to_string(), 45)]);
        let rules = sqlite.list_flood_rules().await.unwrap();
        assert_eq!(rules, pg.list_flood_rules().await.unwrap());
        assert_eq!(
            rules
                .iter()
                .map(|r| (r.video.as_str(), r.rule.escalation.clone()))
                .collect::<Vec<_>>(),
            [("v2", vec![60, 3600])]
        );
        for (video, target, since, want) in [
            ("v1", "flooder", 0, 3),
            ("v1", "flooder", 200, 2),
            ("v1", "flooder", 301, 0),
            ("v2", "flooder", 0, 1),
            ("v1", "other", 0, 0),
        ] {
            let n = sqlite
                .count_audit(video, target, Action::AutoMuted, since)
                .await
                .unwrap();
            assert_eq!(
                n,
                pg.count_audit(video, target, Action::AutoMuted, since)
                    .await
                    .unwrap()
            );
            assert_eq!(n, want, "{video} {target} since {since}");
        }
        let q = danmaku::store::moderation::AuditQuery {
            video: None,
            before_id: None,
            limit: 100,
        };
        let (a, b) = (
            sqlite.audit_page(q.clone()).await.unwrap(),
            pg.audit_page(q).await.unwrap(),
        );
        assert_eq!(a, b);
        assert!(
            a.iter()
                .any(|e| e.entry.actor_role == "system" && e.entry.action == Action::AutoMuted)
        );
    }

    // Likes: idempotent, counted on the comment, per user; a missing comment is None.
    // Density: kept by the triggers (inserts, the bulk insert and the tombstone of 3).
    for s in stores {
        assert_eq!(s.set_like(2, "a", true, 1).await.unwrap(), Some(1));
        assert_eq!(
            s.set_like(2, "a", true, 2).await.unwrap(),
            Some(1),
            "idempotent"
        );
        assert_eq!(s.set_like(2, "b", true, 3).await.unwrap(), Some(2));
        assert_eq!(s.set_like(4, "a", true, 3).await.unwrap(), Some(1));
        assert_eq!(s.set_like(2, "b", false, 4).await.unwrap(), Some(1));
        assert_eq!(
            s.set_like(2, "b", false, 5).await.unwrap(),
            Some(1),
            "idempotent"
        );
        assert_eq!(s.set_like(999, "a", true, 6).await.unwrap(), None);
        assert_eq!(s.get_danmaku(2).await.unwrap().unwrap().likes, 1);
        let mut liked = s.liked_by("a", "v1").await.unwrap();
        liked.sort_unstable();
        assert_eq!(liked, [2, 4]);
        assert!(s.liked_by("a", "v2").await.unwrap().is_empty());
    }
    let density = |mut v: Vec<danmaku::store::engagement::DensityRow>| {
        v.sort_by_key(|r| (r.second, r.audience.as_str()));
        v
    };
    let (a, b) = (
        density(sqlite.density("v1").await.unwrap()),
        density(pg.density("v1").await.unwrap()),
    );
    assert_eq!(a, b);
    // 32 comments on v1 (40 minus the 8 on v2), 23 of them visible (held and shadowed
    // ones are never counted), minus the deleted 6 (by a moderator: `tombstone_audited`
    // keeps the density too; the deleted 3 was held, so never counted).
    assert_eq!(a.iter().map(|r| r.count).sum::<u32>(), 22);
    assert!(sqlite.density("nothing").await.unwrap().is_empty());

    // Catch-up records: one per change, oldest first (a comment before its deletion),
    // taken once, and dropped when their comment does not exist.
    for s in stores {
        for (kind, id) in [
            (Deferred::Posted, 5),
            (Deferred::Deleted, 3),
            (Deferred::Posted, 3),
            (Deferred::Posted, 1),
            (Deferred::Posted, 5),
            (Deferred::Posted, 999),
        ] {
            s.defer_publish(kind, id, 7).await.unwrap();
        }
        let brief = |v: Vec<(Deferred, danmaku::store::danmaku::StoredDanmaku)>| {
            v.into_iter()
                .map(|(k, d)| (k, d.id, d.deleted_at.is_some()))
                .collect::<Vec<_>>()
        };
        let first = brief(s.take_deferred(3).await.unwrap());
        let rest = brief(s.take_deferred(10).await.unwrap());
        assert!(s.take_deferred(10).await.unwrap().is_empty(), "taken once");
        assert_eq!(
            first,
            [
                (Deferred::Posted, 1, false),
                (Deferred::Posted, 3, true),
                (Deferred::Deleted, 3, true)
            ]
        );
        assert_eq!(rest, [(Deferred::Posted, 5, false)]);
    }
    // Two PostgreSQL handles taking at once split the records: none twice, none lost.
    for id in 1..=40 {
        pg.defer_publish(Deferred::Posted, id, 8).await.unwrap();
    }
    let take_all = |store: &PgStore| {
        let store = store.clone();
        async move {
            let mut ids = Vec::new();
            loop {
                let batch = store.take_deferred(3).await.unwrap();
                if batch.is_empty() {
                    return ids;
                }
                ids.extend(batch.into_iter().map(|(_, d)| d.id));
            }
        }
    };
    let (a, b) = tokio::join!(take_all(&pg), take_all(&pg_again));
    let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>(), "a: {a:?} b: {b:?}");

    // Review: block rule sets (seeded once, replaced, removed), hold rules, the queue of
    // held comments and reviews (an approval is counted in the density; a rejection
    // tombstones), each with its audit row only when something changed.
    for s in stores {
        review_writes(s).await;
    }
    {
        use danmaku::store::review::{HeldQuery, ReviewStore};
        let rules = sqlite.list_block_rules().await.unwrap();
        assert_eq!(rules, pg.list_block_rules().await.unwrap());
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].video, None, "the global set first");
        assert_eq!(
            sqlite.list_hold_rules().await.unwrap(),
            pg.list_hold_rules().await.unwrap()
        );
        for video in [None, Some("v1".to_string()), Some("v2".to_string())] {
            let q = HeldQuery {
                video,
                after_id: None,
                limit: 100,
            };
            assert_eq!(
                sqlite.held_page(q.clone()).await.unwrap(),
                pg.held_page(q).await.unwrap()
            );
        }
        assert_eq!(
            density(sqlite.density("v1").await.unwrap()),
            density(pg.density("v1").await.unwrap())
        );
        for video in ["v1", "v2"] {
            assert_eq!(
                density(sqlite.density(video).await.unwrap()),
                density(pg.density(video).await.unwrap()),
                "{video}"
            );
        }
        assert_eq!(
            sqlite.reported_page(None, 10).await.unwrap(),
            pg.reported_page(None, 10).await.unwrap()
        );
    }
    cleanup(&svc, &ns).await;
}

/// The same review writes on either engine, checking each one's answer.
async fn review_writes(s: &dyn danmaku::store::Store) {
    use danmaku::{
        model::{Role, Visibility},
        store::{
            moderation::{Action, AuditQuery, NewAudit},
            review::{BlockAction, BlockRule, HeldQuery, HoldRule, PatternKind, RuleSet, Verdict},
        },
    };
    let audit = |action: Action, target: &str| NewAudit {
        at: 9,
        actor: "root".into(),
        actor_role: "admin".into(),
        action,
        video: Some("v1".into()),
        target: target.into(),
        reason: None,
        detail: "{}".into(),
    };
    let rule = |kind, pattern: &str, action| BlockRule {
        kind,
        pattern: pattern.into(),
        action,
    };
    let set = |video: Option<&str>, rules: Vec<BlockRule>| RuleSet {
        video: video.map(str::to_string),
        rules,
        by: "root".into(),
        set_at: 3,
    };
    let logged = || async {
        s.audit_page(AuditQuery {
            video: Some("v1".into()),
            before_id: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .len()
    };
    let global = set(
        None,
        vec![rule(PatternKind::Word, "spam", BlockAction::Refuse)],
    );
    assert!(s.seed_block_rules(global.clone()).await.unwrap());
    assert!(
        !s.seed_block_rules(set(None, vec![])).await.unwrap(),
        "seeded once: an existing set is kept"
    );
    let before = logged().await;
    let v1 = set(
        Some("v1"),
        vec![
            rule(PatternKind::Regex, r"buy\s+now", BlockAction::Hold),
            rule(PatternKind::Word, "233", BlockAction::Shadow),
        ],
    );
    s.put_block_rules(set(Some("v1"), vec![]), audit(Action::BlockRulesSet, "v1"))
        .await
        .unwrap();
    s.put_block_rules(v1.clone(), audit(Action::BlockRulesSet, "v1"))
        .await
        .unwrap();
    assert!(
        !s.delete_block_rules(Some("v2"), audit(Action::BlockRulesCleared, "v2"))
            .await
            .unwrap()
    );
    assert_eq!(s.list_block_rules().await.unwrap(), vec![global, v1]);
    assert_eq!(
        logged().await,
        before + 2,
        "one row per set, none for a no-op"
    );

    let hold = |video: &str, roles: Vec<Role>| HoldRule {
        video: video.into(),
        roles,
        by: "root".into(),
        set_at: 4,
    };
    s.put_hold_rule(
        hold("v1", vec![Role::Free]),
        audit(Action::HoldRuleSet, "v1"),
    )
    .await
    .unwrap();
    s.put_hold_rule(
        hold("v1", vec![Role::Free, Role::Member]),
        audit(Action::HoldRuleSet, "v1"),
    )
    .await
    .unwrap();
    s.put_hold_rule(
        hold("v2", vec![Role::Member]),
        audit(Action::HoldRuleSet, "v2"),
    )
    .await
    .unwrap();
    assert!(
        s.clear_hold_rule("v2", audit(Action::HoldRuleCleared, "v2"))
            .await
            .unwrap()
    );
    assert!(
        !s.clear_hold_rule("v2", audit(Action::HoldRuleCleared, "v2"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.list_hold_rules().await.unwrap(),
        vec![hold("v1", vec![Role::Free, Role::Member])]
    );

    let q = |after_id| HeldQuery {
        video: Some("v1".into()),
        after_id,
        limit: 2,
    };
    let held = s.held_page(q(None)).await.unwrap();
    assert_eq!(held.len(), 2);
    assert!(
        held.iter()
            .all(|d| d.d.state == Visibility::Held && d.deleted_at.is_none() && d.d.video == "v1")
    );
    let next = s.held_page(q(Some(held[1].id))).await.unwrap();
    // (Read before the reviews below, which take the first two out of the queue.)
    assert!(next.iter().all(|d| d.id > held[1].id), "pages in id order");
    let counted =
        |d: Vec<danmaku::store::engagement::DensityRow>| d.iter().map(|r| r.count).sum::<u32>();
    let dense = counted(s.density("v1").await.unwrap());
    let (approve, reject) = (held[0].id, held[1].id);
    assert!(
        s.review_danmaku(
            approve,
            Verdict::Approve,
            10,
            audit(Action::CommentApproved, "a")
        )
        .await
        .unwrap()
    );
    assert!(
        !s.review_danmaku(
            approve,
            Verdict::Reject,
            11,
            audit(Action::CommentRejected, "a")
        )
        .await
        .unwrap(),
        "reviewed once"
    );
    assert!(
        s.review_danmaku(
            reject,
            Verdict::Reject,
            12,
            audit(Action::CommentRejected, "r")
        )
        .await
        .unwrap()
    );
    let a = s.get_danmaku(approve).await.unwrap().unwrap();
    assert_eq!((a.d.state, a.deleted_at), (Visibility::Visible, None));
    let r = s.get_danmaku(reject).await.unwrap().unwrap();
    assert_eq!((r.d.state, r.deleted_at), (Visibility::Held, Some(12)));
    assert_eq!(
        counted(s.density("v1").await.unwrap()),
        dense + 1,
        "an approval is counted, a rejection of a held comment was never counted"
    );
    assert!(!s.has_hidden("v1", "nobody").await.unwrap());

    // Reports: once per user; the threshold holds a visible comment (and its audit row);
    // a missing one is `None`.
    let visible = s
        .history(danmaku::store::danmaku::HistoryQuery::of("v2", 1, true))
        .await
        .unwrap()[0]
        .id;
    let rep = |sub: &'static str, reason: Option<&str>| {
        s.report_danmaku(
            visible,
            sub,
            reason.map(str::to_string),
            20,
            2,
            audit(Action::HiddenByReports, "x"),
        )
    };
    let first = rep("a", Some("rude")).await.unwrap().unwrap();
    assert_eq!((first.reports, first.new, first.hidden), (1, true, false));
    let again = rep("a", Some("rude")).await.unwrap().unwrap();
    assert_eq!((again.reports, again.new, again.hidden), (1, false, false));
    let tipped = rep("b", None).await.unwrap().unwrap();
    assert_eq!((tipped.reports, tipped.new, tipped.hidden), (2, true, true));
    assert_eq!(
        s.get_danmaku(visible).await.unwrap().unwrap().d.state,
        Visibility::Held
    );
    assert!(
        s.report_danmaku(
            99_999,
            "a",
            None,
            20,
            2,
            audit(Action::HiddenByReports, "x")
        )
        .await
        .unwrap()
        .is_none()
    );
    let page = s.reported_page(Some("v2"), 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        (page[0].d.id, page[0].reports, page[0].reasons.clone()),
        (visible, 2, vec!["rude".to_string()])
    );
    assert_eq!(
        next.len(),
        2,
        "four held on v1 (one of six deleted, one on v2)"
    );
    assert!(s.has_hidden("v1", &next[0].d.sub).await.unwrap());
}

/// The same moderation writes on either engine, checking each one's answer.
async fn moderation_writes(s: &dyn danmaku::store::Store) {
    use danmaku::store::moderation::{Action, Grant, Mute, NewAudit, Restraint};
    let audit = |action: Action, video: Option<&str>, target: &str| NewAudit {
        at: 7,
        actor: "root".into(),
        actor_role: "admin".into(),
        action,
        video: video.map(str::to_string),
        target: target.into(),
        reason: Some("why".into()),
        detail: r#"{"k":1}"#.into(),
    };
    let mute = |sub: &str, video: Option<&str>, until: u64| Mute {
        sub: sub.into(),
        video: video.map(str::to_string),
        until,
        reason: (until > 100).then(|| "spam".to_string()),
        by: "root".into(),
        created_at: 5,
    };
    for (sub, video, until) in [
        ("u1", None, 10_000),
        ("u2", None, 10),
        ("u3", Some("v1"), 20_000),
        ("u4", Some("v2"), 30_000),
    ] {
        s.put_mute(
            Restraint::Mute,
            mute(sub, video, until),
            audit(Action::UserMuted, video, sub),
        )
        .await
        .unwrap();
    }
    let grant = |video: &str, sub: &str| Grant {
        video: video.into(),
        sub: sub.into(),
        by: "root".into(),
        at: 9,
    };
    for (video, sub) in [("v1", "m1"), ("v2", "m1"), ("v1", "m2")] {
        let (g, created) = s
            .put_moderator(
                grant(video, sub),
                audit(Action::ModeratorAdded, Some(video), sub),
            )
            .await
            .unwrap();
        assert!(created);
        assert_eq!(g, grant(video, sub));
    }
    // Again: the first grant stands, nothing is audited.
    let (g, created) = s
        .put_moderator(
            Grant {
                at: 99,
                ..grant("v1", "m1")
            },
            audit(Action::ModeratorAdded, Some("v1"), "m1"),
        )
        .await
        .unwrap();
    assert_eq!((g.at, created), (9, false));
    let removed = audit(Action::ModeratorRemoved, Some("v2"), "m1");
    assert!(
        s.delete_moderator("v2", "m1", removed.clone())
            .await
            .unwrap()
    );
    assert!(!s.delete_moderator("v2", "m1", removed).await.unwrap());
    // Lifting: the mute in force goes; an expired one (u2 ended at 10) is not lifted.
    let unmuted = audit(Action::UserUnmuted, Some("v2"), "u4");
    assert!(
        s.lift_mute(Restraint::Mute, "u4", Some("v2"), 1000, unmuted.clone())
            .await
            .unwrap()
    );
    assert!(
        !s.lift_mute(Restraint::Mute, "u4", Some("v2"), 1000, unmuted)
            .await
            .unwrap()
    );
    assert!(
        !s.lift_mute(
            Restraint::Mute,
            "u2",
            None,
            1000,
            audit(Action::UserUnmuted, None, "u2")
        )
        .await
        .unwrap()
    );
    // A moderator's deletion: the tombstone and its row, once.
    let deleted = audit(Action::CommentDeleted, Some("v1"), "6");
    assert!(s.tombstone_audited(6, 50, deleted.clone()).await.unwrap());
    assert!(!s.tombstone_audited(6, 51, deleted).await.unwrap());
    assert_eq!(
        s.get_danmaku(6).await.unwrap().unwrap().deleted_at,
        Some(50)
    );
}

/// The same slow-mode, flood-rule and automatic-mute writes on either engine.
async fn room_rules_writes(s: &dyn danmaku::store::Store) {
    use danmaku::{
        model::Role,
        store::{
            moderation::{Action, Mute, NewAudit, Restraint},
            room_rules::{FloodRule, SlowMode, StoredFloodRule},
        },
    };
    let audit = |action: Action, video: &str, target: &str, at: u64| NewAudit {
        at,
        actor: "system".into(),
        actor_role: "system".into(),
        action,
        video: Some(video.into()),
        target: target.into(),
        reason: None,
        detail: "{}".into(),
    };
    let slow = |video: &str, seconds: u32, until: Option<u64>| SlowMode {
        video: video.into(),
        seconds,
        roles: vec![Role::Free, Role::Member],
        until,
        by: "ann".into(),
        set_at: 3,
    };
    s.put_slow_mode(
        slow("v1", 30, Some(1000)),
        audit(Action::SlowModeSet, "v1", "v1", 1),
    )
    .await
    .unwrap();
    s.put_slow_mode(
        slow("v3", 10, None),
        audit(Action::SlowModeSet, "v3", "v3", 1),
    )
    .await
    .unwrap();
    // Replaced: the later one stands.
    s.put_slow_mode(
        SlowMode {
            roles: vec![Role::Guest],
            ..slow("v3", 45, None)
        },
        audit(Action::SlowModeSet, "v3", "v3", 2),
    )
    .await
    .unwrap();
    s.put_slow_mode(
        slow("v4", 5, None),
        audit(Action::SlowModeSet, "v4", "v4", 2),
    )
    .await
    .unwrap();
    let cleared = audit(Action::SlowModeCleared, "v4", "v4", 3);
    assert!(s.clear_slow_mode("v4", 10, cleared.clone()).await.unwrap());
    assert!(!s.clear_slow_mode("v4", 10, cleared.clone()).await.unwrap());
    // v1's ended at 1000: not in force, so not cleared.
    assert!(!s.clear_slow_mode("v1", 2000, cleared).await.unwrap());

    let flood = |video: &str, escalation: Vec<u32>| StoredFloodRule {
        video: video.into(),
        rule: FloodRule {
            max_comments: 5,
            window_s: 10,
            mute_s: 30,
            escalation,
        },
        by: "ann".into(),
        set_at: 4,
    };
    for (video, escalation) in [("v1", vec![]), ("v2", vec![60]), ("v2", vec![60, 3600])] {
        s.put_flood_rule(
            flood(video, escalation),
            audit(Action::FloodRuleSet, video, video, 4),
        )
        .await
        .unwrap();
    }
    let gone = audit(Action::FloodRuleCleared, "v1", "v1", 5);
    assert!(s.delete_flood_rule("v1", gone.clone()).await.unwrap());
    assert!(!s.delete_flood_rule("v1", gone).await.unwrap());

    // Automatic mutes: a `system` actor role is accepted; the rows are the offences.
    for (video, at) in [("v1", 100), ("v1", 200), ("v1", 300), ("v2", 100)] {
        s.put_mute(
            Restraint::Mute,
            Mute {
                sub: "flooder".into(),
                video: Some(video.into()),
                until: 1_000_000 + at,
                reason: Some("flooding".into()),
                by: "system".into(),
                created_at: at,
            },
            audit(Action::AutoMuted, video, "flooder", at),
        )
        .await
        .unwrap();
    }
}
