//! Unit tests of the configuration: flags reach their group, and the README's table lists
//! every key, flag and env var.

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
