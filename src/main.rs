//! The `danmaku` binary: `serve`, `token` and `openapi`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use danmaku::{
    auth::Keys,
    config::ConfigArgs,
    model::Role,
    server::{Server, termination},
};
use tracing_subscriber::EnvFilter;

/// Live video comments and role-aware pushes over WebSocket.
#[derive(Parser)]
#[command(name = "danmaku", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        /// Enable `POST /api/demo/token` and the demo logins of the page. Never in production.
        #[arg(long, env = "DANMAKU_DEMO")]
        demo: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print a JWT signed with the configured key.
    Token {
        #[arg(long)]
        sub: String,
        /// free, member or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
        /// Video ids the bearer moderates (the `mod` claim), comma-separated or repeated;
        /// at most 100. Stored grants (`PUT /api/videos/{id}/moderators/{sub}`) add to it.
        #[arg(long = "mod", value_delimiter = ',')]
        moderates: Vec<String>,
        /// Lifetime, for example `1h`, `30m`, `7d`.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the OpenAPI spec (the committed `openapi/openapi.json`).
    Openapi,
    /// Load-test a running server (fanout, rooms, idle, ingest, mixed).
    Bench {
        #[command(flatten)]
        bench: danmaku::bench::BenchArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn init_logs(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// mimalloc instead of glibc malloc: with thousands of sockets allocating and freeing
/// small buffers on two worker threads, glibc's arenas fragment; measured with
/// `danmaku bench idle -v 10000`, server RSS per socket fell from about 10 KB to 6.6 KB.
/// The `system-alloc` feature turns it off for heap profiling (heaptrack sees only malloc).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Openapi => {
            println!("{}", danmaku::api::spec_json());
            ExitCode::SUCCESS
        }
        Cmd::Token {
            sub,
            role,
            name,
            moderates,
            ttl,
            config,
        } => {
            init_logs("warn");
            let result = (|| {
                let role = Role::parse_token_role(&role)
                    .ok_or_else(|| format!("unknown role {role:?}: use free, member or admin"))?;
                let cfg = config.load()?;
                let signer = Keys::load(&cfg)?.signer()?;
                signer.mint_with_mod(&sub, role, name.as_deref(), ttl.into(), &moderates)
            })();
            match result {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Bench { bench, config } => {
            init_logs("warn");
            let signer = config
                .load()
                .and_then(|cfg| Keys::load(&cfg))
                .and_then(|k| k.signer())
                .ok();
            match danmaku::bench::run(bench, signer).await {
                Ok(r) if r.ok => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(3),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Serve { demo, config } => {
            let cfg = match config.load() {
                Ok(mut cfg) => {
                    cfg.auth.demo |= demo;
                    cfg
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logs(&cfg.server.log);
            let nofile = danmaku::bench::raise_nofile_limit();
            tracing::info!(nofile, "open-file limit");
            if cfg.auth.demo {
                tracing::warn!("demo mode: POST /api/demo/token hands out tokens to anyone");
            }
            let server = match Server::bind(cfg).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match server.run(termination()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("server error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
