//! Unit tests of the configuration: flags reach their group, a sectioned file loads,
//! precedence holds, engines and old flat keys are refused clearly, passwords stay hidden,
//! and the README's table lists every key, flag and env var.

use std::io::Write;

use clap::Parser;

use super::*;

/// A minimal command to parse the shared flags in isolation.
#[derive(Parser)]
struct Cmd {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Parses `args` (after the program name) into a loaded config.
fn load(args: &[&str]) -> Result<Config, String> {
    let argv = std::iter::once("danmaku").chain(args.iter().copied());
    Cmd::try_parse_from(argv)
        .map_err(|e| e.to_string())?
        .config
        .load()
}

/// A temporary TOML file holding `text`.
fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

#[test]
fn limit_flags_reach_the_config() {
    let cfg = load(&[
        "--max-connections=7",
        "--max-connections-per-user=3",
        "--max-connections-per-ip=5",
        "--ws-max-channels=9",
        "--ws-ops-per-s=11",
        "--ws-ops-burst=22",
        "--handshake-timeout-ms=1500",
        "--rest-max-body=4096",
        "--import-max-body=8192",
        "--cors-origins=https://a.example,https://b.example",
        "--ws-allowed-origins=https://a.example",
    ])
    .expect("valid");
    let l = &cfg.limits;
    assert_eq!(
        (
            l.max_connections,
            l.max_connections_per_user,
            l.max_connections_per_ip
        ),
        (7, 3, 5)
    );
    assert_eq!(
        (cfg.ws.max_channels, cfg.ws.ops_per_s, cfg.ws.ops_burst),
        (9, 11, 22)
    );
    assert_eq!(cfg.server.handshake_timeout_ms, 1500);
    assert_eq!((l.rest_max_body, l.import_max_body), (4096, 8192));
    assert_eq!(
        cfg.server.cors_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(cfg.ws.allowed_origins, ["https://a.example"]);
    assert!(load(&["--handshake-timeout-ms=1"]).is_err());
}

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(Config::from_toml("").expect("empty"), Config::default());
    let f = file("");
    let path = f.path().to_str().expect("utf-8 path");
    assert_eq!(load(&["--config", path]).expect("valid"), Config::default());
}

#[test]
fn a_sectioned_file_loads() {
    let f = file(
        r#"
[server]
bind = "0.0.0.0:9000"
data_dir = "/var/lib/danmaku"
cors_origins = ["https://a.example"]

[auth]
alg = "HS256"
secret = "0123456789abcdef0123456789abcdef"
issuer = "https://issuer.example"
api_keys = ["k1", "k2"]
demo = true

[ws]
heartbeat_s = 20
max_message = 4096
ops_per_s = 7

[limits]
max_connections = 12

[danmaku]
block_words = ["spam"]
free_feed_rate = 0

[store]
engine = "postgres://danmaku:hunter2@db.example/danmaku"
sqlite_synchronous = "normal"
pg_schema = "dm"

[bus]
engine = "redis://127.0.0.1:6379"
key_prefix = "dm"

[policy.member]
can_post = false
styled_modes = true
any_color = true
max_len = 50
cooldown_ms = 0
members_audience = true
"#,
    );
    let path = f.path().to_str().expect("utf-8 path");
    let cfg = load(&["--config", path]).expect("valid");
    assert_eq!(cfg.server.bind, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(cfg.server.data_dir, PathBuf::from("/var/lib/danmaku"));
    assert_eq!(cfg.server.cors_origins, ["https://a.example"]);
    assert_eq!(
        cfg.auth.secret.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(cfg.auth.issuer.as_deref(), Some("https://issuer.example"));
    assert_eq!(cfg.auth.audience, None);
    assert_eq!(cfg.auth.api_keys, ["k1", "k2"]);
    assert!(cfg.auth.demo);
    assert_eq!(
        (cfg.ws.heartbeat_s, cfg.ws.max_message, cfg.ws.ops_per_s),
        (20, 4096, 7)
    );
    assert_eq!(cfg.ws.idle_timeout_s, 60, "unset keys keep their default");
    assert_eq!(cfg.limits.max_connections, 12);
    assert_eq!(cfg.danmaku.block_words, ["spam"]);
    assert_eq!(cfg.danmaku.free_feed_rate, 0);
    assert_eq!(
        cfg.store.engine,
        StoreEngine::Postgres("postgres://danmaku:hunter2@db.example/danmaku".into())
    );
    assert_eq!(cfg.store.sqlite_synchronous, SqliteSync::Normal);
    assert_eq!(cfg.store.pg_schema, "dm");
    assert_eq!(
        cfg.bus.engine,
        BusEngine::Redis("redis://127.0.0.1:6379".into())
    );
    assert_eq!(cfg.bus.key_prefix, "dm");
    assert!(!cfg.policy.member.can_post);
    assert_eq!(cfg.policy.free, crate::model::Policy::default().free);
}

/// The file of the precedence test: every level below the flag is set for one setting.
const PRECEDENCE_FILE: &str = "[ws]\nheartbeat_s = 20\nreplay_window_s = 5\nops_per_s = 1\n";

/// Marks the child process of [`precedence_is_flag_env_file_default`].
const CHILD: &str = "DANMAKU_CONFIG_TEST_CHILD";

#[test]
fn precedence_is_flag_env_file_default() {
    // Env vars are process-wide (and setting them while other test threads read the
    // environment is unsound), so the env level runs in a child copy of this test binary.
    let f = file(PRECEDENCE_FILE);
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["config::tests::precedence_child", "--exact", "--nocapture"])
        .env(CHILD, f.path())
        .env("DANMAKU_REPLAY_WINDOW_S", "7")
        .env("DANMAKU_WS_OPS_PER_S", "2")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The half of the precedence test that runs with the env vars set; a no-op otherwise.
#[test]
fn precedence_child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let path = path.to_str().expect("utf-8 path");
    let cfg = load(&["--config", path, "--ws-ops-per-s=3"]).expect("valid");
    assert_eq!(cfg.ws.token_grace_s, 10, "default");
    assert_eq!(cfg.ws.heartbeat_s, 20, "file over default");
    assert_eq!(cfg.ws.replay_window_s, 7, "env over file");
    assert_eq!(cfg.ws.ops_per_s, 3, "flag over env");
}

#[test]
fn a_bad_engine_is_refused_clearly_without_its_password() {
    let e = load(&["--store=mysql://root:hunter2@db/x"]).unwrap_err();
    assert!(
        e.contains("store must be `sqlite` or a postgres:// URL"),
        "{e}"
    );
    assert!(
        e.contains("mysql://root:***@db/x") && !e.contains("hunter2"),
        "{e}"
    );
    let e = load(&["--bus=nats://127.0.0.1"]).unwrap_err();
    assert!(e.contains("bus must be `local` or a redis:// URL"), "{e}");
    let e = Config::from_toml("[bus]\nengine = \"rediss:/:hunter2@x\"\n").unwrap_err();
    assert!(e.contains("bus must be `local` or a redis:// URL"), "{e}");
    assert!(e.starts_with("line 2, column "), "{e}");
    assert!(
        !e.contains("hunter2"),
        "toml's quote of the line is left out: {e}"
    );
    assert_eq!("sqlite".parse(), Ok(StoreEngine::Sqlite));
    assert_eq!("local".parse(), Ok(BusEngine::Local));
}

#[test]
fn trusted_proxies_come_from_flags_and_files_and_refuse_garbage() {
    let cfg = load(&["--trusted-proxies=10.0.0.0/8, fd00::/8,127.0.0.1"]).expect("loads");
    let shown: Vec<String> = cfg
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["10.0.0.0/8", "fd00::/8", "127.0.0.1/32"]);
    assert!(Config::default().server.trusted_proxies.is_empty());
    let e = load(&["--trusted-proxies=10.0.0.0/8,10.0.0.0/40"]).unwrap_err();
    assert!(
        e.contains("\"10.0.0.0/40\" is not a CIDR network or an IP address"),
        "{e}"
    );
    let cfg = Config::from_toml("[server]\ntrusted_proxies = [\"192.168.0.0/16\", \"::1\"]\n")
        .expect("file");
    assert_eq!(cfg.server.trusted_proxies.len(), 2);
    let e = Config::from_toml("[server]\ntrusted_proxies = [\"lb.internal\"]\n").unwrap_err();
    assert!(
        e.contains("server.trusted_proxies: \"lb.internal\" is not a CIDR"),
        "{e}"
    );
}

#[test]
fn engines_print_no_password() {
    let mut cfg = Config::default();
    cfg.store.engine = "postgres://u:hunter2@db:5432/x?sslmode=require"
        .parse()
        .unwrap();
    cfg.bus.engine = "rediss://:hunter2@cache:6380/0".parse().unwrap();
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains(r#"Postgres("postgres://u:***@db:5432/x?sslmode=require")"#));
    assert_eq!(cfg.bus.engine.to_string(), "rediss://:***@cache:6380/0");
    assert_eq!(StoreEngine::Sqlite.to_string(), "sqlite");
    for (url, shown) in [
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ("redis://user@h", "redis://user@h"),
        ("postgres://u:p/w@h/db", "postgres://u:***@h/db"),
        (
            "postgres://h/db?user=u&password=pw",
            "postgres://h/db?user=u&password=***",
        ),
        ("not a url", "not a url"),
        ("redis:/:hunter2@h", "redis:***@h"),
    ] {
        assert_eq!(redacted(url), shown);
    }
}

#[test]
fn an_old_flat_key_names_its_section() {
    let e = Config::from_toml(
        "heartbeat_s = 30\nws_max_message = 4096\nstore = \"sqlite\"\njwt_secret = \"x\"\n",
    )
    .unwrap_err();
    for part in [
        "`heartbeat_s` moved to [ws]",
        "`ws_max_message` moved to [ws] as `max_message`",
        "`store` moved to [store] as `engine`",
        "`jwt_secret` moved to [auth] as `secret`",
    ] {
        assert!(e.contains(part), "{part:?} missing from: {e}");
    }
    // Unknown keys that never existed still get toml's own message.
    let e = Config::from_toml("[ws]\nbogus = 1\n").unwrap_err();
    assert!(e.contains("unknown field `bogus`"), "{e}");
}

#[test]
fn the_readme_lists_every_setting() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("\n## Configuration")
        .expect("configuration section");
    let section = &readme[start..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let all = settings();
    assert!(all.len() > 45, "{} settings", all.len());
    for s in all {
        let key = format!("| `{}.{}` |", s.section, s.key);
        let row = section
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("README has no row for {key}"));
        if let (Some(flag), Some(env)) = (&s.flag, &s.env) {
            let names = format!("`--{flag}` / `{env}`");
            assert!(row.contains(&names), "row {key} should show {names}");
        }
    }
}

#[test]
fn debug_output_hides_the_jwt_secret_and_api_keys() {
    let secret = "debug-output-secret-0123456789abcdef0123456789";
    let args = [
        "--jwt-secret",
        secret,
        "--api-keys",
        "key-one-visible-nowhere,key-two",
        "--heartbeat-s",
        "7",
    ];
    let cfg = load(&args).unwrap();
    assert_eq!(cfg.auth.secret.as_deref(), Some(secret));
    let shown = format!("{cfg:?}");
    assert!(!shown.contains(secret) && !shown.contains("key-one-visible-nowhere"));
    assert!(shown.contains("secret: \"***\"") && shown.contains("heartbeat_s: 7"));
    let argv = std::iter::once("danmaku").chain(args.iter().copied());
    let flags = format!("{:?}", Cmd::try_parse_from(argv).unwrap().config);
    assert!(!flags.contains(secret) && !flags.contains("key-one-visible-nowhere"));
}
