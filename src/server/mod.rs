//! Startup and the explicit shutdown sequence; the route table is in [`routes`], the
//! background loops over the shared state in `tasks`.
//!
//! [`build`] is the one place where engines are chosen from config, by matching on
//! [`StoreEngine`] and [`BusEngine`]. [`Server::run`] starts
//! the background tasks (scheduler, presence) and serves until the shutdown signal, then:
//! stops accepting, closes every socket with 1001, lets in-flight requests finish, waits
//! for the background tasks to stop, and flushes the store.

mod routes;
mod tasks;

pub use routes::routes;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::listener::{Acceptor, Listener, TcpListener};

use crate::{
    access::Directory,
    auth::Keys,
    bus::{
        Bus,
        local::{LocalBus, Window},
        redis::{RedisBus, RedisSettings},
    },
    config::{BusEngine, Config, StoreEngine},
    hub::{
        self, Hub,
        clock::Deadlines,
        conn::{QueueCaps, close},
    },
    limits::{ConnCaps, ConnLimiter},
    metrics::Metrics,
    model::time::now_millis,
    net::Listener as NetListener,
    pages, presence, push,
    schedule::{Runner, Schedules},
    shutdown::{Shutdown, Trigger},
    state::State,
    store::{Store, postgres::PgStore, sqlite::SqliteStore},
    ws,
};

/// Opens the engines named by config and assembles the shared state.
pub async fn build(cfg: Config, shutdown: Shutdown) -> Result<Arc<State>, String> {
    let keys = Keys::load(&cfg)?;
    let verifier = keys.verifier()?;
    let signer = match keys.signer() {
        Ok(s) => Some(s),
        Err(e) if cfg.auth.demo => return Err(format!("demo mode needs to mint tokens: {e}")),
        Err(_) => None,
    };
    let metrics = Arc::new(Metrics::default());
    let hub = Arc::new(Hub::new(hub_settings(&cfg), metrics.clone()));
    let store: Arc<dyn Store> = match &cfg.store.engine {
        StoreEngine::Sqlite => Arc::new(
            SqliteStore::open_with(&cfg.server.data_dir, cfg.store.sqlite_synchronous)
                .map_err(|e| e.to_string())?,
        ),
        StoreEngine::Postgres(url) => Arc::new(
            PgStore::open(url, &cfg.store.pg_schema)
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    let bus: Arc<dyn Bus> = match &cfg.bus.engine {
        BusEngine::Local => local_bus(&cfg, &hub),
        BusEngine::Redis(url) => {
            let node = if cfg.bus.node_id.is_empty() {
                format!("node-{:08x}", rand::random::<u32>())
            } else {
                cfg.bus.node_id.clone()
            };
            RedisBus::start(
                hub.clone(),
                RedisSettings {
                    url: url.clone(),
                    prefix: cfg.bus.key_prefix.clone(),
                    node,
                    window: replay_window(&cfg),
                    heartbeat: Duration::from_millis(cfg.ws.presence_interval_ms),
                },
                shutdown.clone(),
            )
            .await?
        }
    };
    let directory = Arc::new(Directory::new(cfg.danmaku.open_unknown_videos));
    let decls = store.list_channels().await.map_err(|e| e.to_string())?;
    directory.load(decls.into_iter().map(|d| (d.name, d.tier)));
    for v in store.list_videos().await.map_err(|e| e.to_string())? {
        directory.set_video(&v.id, v.tier);
    }
    let flood = crate::moderation::FloodSettings {
        default: (cfg.moderation.flood_max > 0).then(|| crate::moderation::FloodRule {
            max_comments: cfg.moderation.flood_max,
            window_s: cfg.moderation.flood_window_s,
            mute_s: cfg.moderation.flood_mute_s,
            escalation: cfg.moderation.flood_escalation.clone(),
        }),
        offence_window_ms: cfg.moderation.flood_offence_window_s.saturating_mul(1000),
    };
    let hook = crate::moderation::hook::Hook::from_config(&cfg.moderation, metrics.clone())?;
    if let Some(h) = &hook {
        tracing::info!(hook = ?h, "moderation hook on");
    }
    let webhooks = Arc::new(
        crate::webhooks::Service::new(
            store.clone(),
            Duration::from_millis(cfg.moderation.webhook_retry_base_ms),
        )
        .await?,
    );
    let moderation = Arc::new(
        crate::moderation::Service::new(store.clone(), flood, hook, webhooks.clone()).await?,
    );
    // The configured block words become the global block rules the first time only.
    moderation
        .seed_block_words(&cfg.danmaku.block_words)
        .await?;
    let danmaku = crate::danmaku::Service::new(
        crate::danmaku::Settings {
            policy: cfg.policy.clone(),
            free_feed_rate: cfg.danmaku.free_feed_rate,
            reporting: crate::danmaku::reports::ReportSettings {
                threshold: cfg.moderation.report_threshold,
                per_min: cfg.moderation.report_rate_per_min,
            },
            fold_window_ms: cfg.danmaku.fold_window_ms,
            fold_members: cfg.danmaku.fold_members,
        },
        crate::danmaku::Peers {
            store: store.clone(),
            moderation: moderation.clone(),
            webhooks: webhooks.clone(),
            metrics: metrics.clone(),
        },
    )
    .await?;
    let push = Arc::new(push::Service::new(directory.clone(), bus.clone()));
    let schedules = Arc::new(Schedules::default());
    let stored = store.list_schedules().await.map_err(|e| e.to_string())?;
    schedules.load(stored, now_millis());
    tracing::info!(store = store.name(), bus = bus.name(), "engines ready");
    let limiter = ConnLimiter::new(ConnCaps {
        total: cfg.limits.max_connections,
        per_user: cfg.limits.max_connections_per_user,
        per_ip: cfg.limits.max_connections_per_ip,
    });
    Ok(Arc::new(State {
        limiter,
        cfg,
        verifier,
        signer,
        hub,
        bus,
        store,
        directory,
        danmaku,
        moderation,
        webhooks,
        push,
        schedules,
        metrics,
        shutdown,
        sockets: Arc::default(),
    }))
}

/// The hub's settings from configuration.
fn hub_settings(cfg: &Config) -> hub::Settings {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    hub::Settings {
        queue: QueueCaps {
            max_msgs: clamp(cfg.ws.outbox_max_msgs),
            max_bytes: clamp(cfg.ws.outbox_max_bytes),
        },
        flush_tick: Duration::from_millis(cfg.ws.flush_tick_ms),
        deadlines: Deadlines {
            heartbeat_s: u32::try_from(cfg.ws.heartbeat_s).unwrap_or(u32::MAX),
            idle_timeout_s: u32::try_from(cfg.ws.idle_timeout_s).unwrap_or(u32::MAX),
            token_grace_s: cfg.ws.token_grace_s,
            write_timeout_s: WRITE_TIMEOUT_S,
            expiry_notice: ws::protocol::token_expired(cfg.ws.token_grace_s),
        },
    }
}

/// A socket whose queued frames have not moved for this long is closed as slow.
const WRITE_TIMEOUT_S: u32 = 10;

/// Each channel's replay window (either bus keeps one), from `[ws]`.
fn replay_window(cfg: &Config) -> Window {
    Window {
        events: cfg.ws.replay_window_events,
        max_age_ms: cfg.ws.replay_window_s.saturating_mul(1000),
    }
}

/// The in-process bus, with its once-a-minute sweep of idle channel logs.
fn local_bus(cfg: &Config, hub: &Arc<Hub>) -> Arc<dyn Bus> {
    let local = Arc::new(LocalBus::new(hub.clone(), replay_window(cfg)));
    {
        // Idle channel logs are swept once a minute; the task ends with the bus.
        let weak = Arc::downgrade(&local);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(bus) = weak.upgrade() else { break };
                let swept = bus.sweep();
                if swept > 0 {
                    tracing::debug!(swept, "idle channel logs swept");
                }
            }
        });
    }
    local
}

/// A bound, not yet running server. Tests bind `127.0.0.1:0` and read [`Server::addr`].
pub struct Server {
    state: Arc<State>,
    /// Concrete, not boxed: poem's `BoxAcceptor` splits every stream into halves behind
    /// a lock and two boxes, paid on each read and write.
    acceptor: NetListener,
    addr: SocketAddr,
    trigger: Trigger,
}

impl Server {
    /// Opens the engines and binds the listener.
    pub async fn bind(cfg: Config) -> Result<Server, String> {
        let (trigger, shutdown) = crate::shutdown::channel();
        let bind = cfg.server.bind;
        let state = build(cfg, shutdown).await?;
        let acceptor = TcpListener::bind(bind.to_string())
            .into_acceptor()
            .await
            .map_err(|e| format!("cannot bind {bind}: {e}"))?;
        let acceptor = NetListener::new(
            acceptor,
            Duration::from_millis(state.cfg.server.handshake_timeout_ms),
            state.cfg.server.socket_send_buffer,
            state.sockets.clone(),
        );
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or("listener has no socket address")?;
        Ok(Server {
            state,
            acceptor,
            addr,
            trigger,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shared state, for tests and embedding.
    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// Serves until `signal` resolves, then shuts down in order.
    pub async fn run(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Server {
            state,
            acceptor,
            addr,
            trigger,
        } = self;
        let pages = Arc::new(pages::Source::from_env());
        tracing::info!(%addr, demo = state.cfg.auth.demo, pages = %pages.describe(), "listening");

        let app = routes::routes(state.clone(), pages);
        // Both tasks watch `state.shutdown` (and stop too if its sender is dropped).
        let tasks = [
            tokio::spawn(
                Runner {
                    schedules: state.schedules.clone(),
                    push: state.push.clone(),
                    bus: state.bus.clone(),
                    store: state.store.clone(),
                    metrics: state.metrics.clone(),
                    shutdown: state.shutdown.clone(),
                }
                .run(),
            ),
            tokio::spawn(presence::run(
                state.hub.clone(),
                state.bus.clone(),
                state.webhooks.clone(),
                Duration::from_millis(state.cfg.ws.presence_interval_ms),
                state.shutdown.clone(),
            )),
            tokio::spawn(crate::webhooks::deliver::run(
                state.webhooks.clone(),
                state.shutdown.clone(),
            )),
            tokio::spawn(tasks::sync_mirrors(state.clone())),
            tokio::spawn(tasks::sync_moderation(state.clone())),
            tokio::spawn(tasks::catch_up(state.clone())),
            tokio::spawn(tasks::flush_likes(state.clone())),
            tokio::spawn(state.hub.clone().run_clock(state.shutdown.clone())),
        ];
        let hub = state.hub.clone();
        let stop = async move {
            signal.await;
            tracing::info!("shutdown: closing sockets with 1001");
            trigger.fire();
            hub.close_all(close::GOING_AWAY);
        };
        let result = poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                stop,
                Some(Duration::from_secs(state.cfg.server.shutdown_grace_s)),
            )
            .await;
        // `stop` has sent the signal or was dropped with its sender; either ends the tasks.
        // Waiting for them lets the last schedule run be recorded before the flush.
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "shutdown: a background task failed");
            }
        }
        if let Err(e) = state.store.flush().await {
            tracing::error!(error = %e, "shutdown: store flush failed");
        } else {
            tracing::info!("shutdown: store flushed");
        }
        result
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
