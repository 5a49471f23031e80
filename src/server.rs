//! Startup, routing and the explicit shutdown sequence.
//!
//! [`build`] is the one place where engines are chosen from config. [`Server::run`] serves
//! until the shutdown signal, then: stops accepting, closes every socket with 1001, lets
//! in-flight requests finish, and flushes the store.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    EndpointExt, Route,
    endpoint::StaticFileEndpoint,
    get, handler,
    http::StatusCode,
    listener::{Acceptor, AcceptorExt, Listener, TcpListener},
    web::Data,
};
use tokio::sync::watch;

use crate::{
    access::Directory,
    api,
    auth::{Keys, Signer, Verifier},
    bus::{Bus, local::LocalBus},
    config::Config,
    hub::{Hub, OutboxLimits, conn::close},
    metrics::Metrics,
    store::{Store, sqlite::SqliteStore},
    ws,
};

/// Everything a request or session needs, shared behind one `Arc`.
pub struct State {
    pub cfg: Config,
    pub verifier: Verifier,
    /// Present when tokens can be minted (HS256, or a configured private key).
    pub signer: Option<Signer>,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub directory: Directory,
    /// Posting, history and moderation of comments.
    pub danmaku: crate::danmaku::Service,
    pub metrics: Arc<Metrics>,
    /// Flips to true when shutdown starts; sessions watch it.
    pub shutdown: watch::Receiver<bool>,
}

/// Opens the engines named by config and assembles the shared state.
pub async fn build(cfg: Config, shutdown: watch::Receiver<bool>) -> Result<Arc<State>, String> {
    let keys = Keys::load(&cfg)?;
    let verifier = keys.verifier()?;
    let signer = match keys.signer() {
        Ok(s) => Some(s),
        Err(e) if cfg.demo => return Err(format!("demo mode needs to mint tokens: {e}")),
        Err(_) => None,
    };
    let metrics = Arc::new(Metrics::default());
    let hub = Arc::new(Hub::new(
        OutboxLimits {
            max_msgs: cfg.outbox_max_msgs,
            max_bytes: cfg.outbox_max_bytes,
        },
        metrics.clone(),
    ));
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&cfg.data_dir).map_err(|e| e.to_string())?);
    let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(hub.clone()));
    let directory = Directory::new(cfg.open_unknown_videos);
    let decls = store.list_channels().await.map_err(|e| e.to_string())?;
    directory.load(decls.into_iter().map(|d| (d.name, d.tier)));
    for v in store.list_videos().await.map_err(|e| e.to_string())? {
        directory.set_video(&v.id, v.tier);
    }
    let danmaku = crate::danmaku::Service::new(
        cfg.policy.clone(),
        &cfg.block_words,
        cfg.free_feed_rate,
        store.clone(),
        metrics.clone(),
    )
    .await?;
    tracing::info!(store = store.name(), bus = bus.name(), "engines ready");
    Ok(Arc::new(State {
        cfg,
        verifier,
        signer,
        hub,
        bus,
        store,
        directory,
        danmaku,
        metrics,
        shutdown,
    }))
}

/// `GET /healthz`: the process is up.
#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store is open and the bus can carry events.
#[handler]
fn readyz(state: Data<&Arc<State>>) -> (StatusCode, String) {
    if *state.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down".into())
    } else if !state.bus.is_ready() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("bus {} not ready", state.bus.name()),
        )
    } else {
        (StatusCode::OK, "ready".into())
    }
}

/// `GET /metrics`: Prometheus text format.
#[handler]
fn metrics_text(state: Data<&Arc<State>>) -> poem::Response {
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// The full route table: pages, API, docs, WebSocket and probes.
pub fn routes(state: Arc<State>, static_dir: std::path::PathBuf) -> impl poem::Endpoint {
    let api_service = api::service();
    let ui = api_service.swagger_ui();
    let spec = api_service.spec_endpoint();
    Route::new()
        .nest("/api", api_service)
        .nest("/docs", ui)
        .at("/openapi.json", spec)
        .at("/ws", get(ws::upgrade))
        .at(
            "/dplayer/v3/",
            get(api::dplayer::list).post(api::dplayer::post),
        )
        .at(
            "/dplayer/v3",
            get(api::dplayer::list).post(api::dplayer::post),
        )
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics_text))
        // Pages: the video page also answers at /watch/{video}; the admin console at /admin.
        // Their assets use absolute paths, so any of these URLs loads them from `/`.
        .at(
            "/watch/:video",
            get(StaticFileEndpoint::new(static_dir.join("index.html")).no_cache(true)),
        )
        .at(
            "/admin",
            get(StaticFileEndpoint::new(static_dir.join("admin.html")).no_cache(true)),
        )
        .nest(
            "/",
            poem::endpoint::StaticFilesEndpoint::new(static_dir).index_file("index.html"),
        )
        .catch_all_error(api::error::render_error)
        .data(state)
}

/// A bound, not yet running server. Tests bind `127.0.0.1:0` and read [`Server::addr`].
pub struct Server {
    state: Arc<State>,
    acceptor: poem::listener::BoxAcceptor,
    addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Opens the engines and binds the listener.
    pub async fn bind(cfg: Config) -> Result<Server, String> {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let bind = cfg.bind;
        let state = build(cfg, shutdown_rx).await?;
        let acceptor = TcpListener::bind(bind.to_string())
            .into_acceptor()
            .await
            .map_err(|e| format!("cannot bind {bind}: {e}"))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or("listener has no socket address")?;
        Ok(Server {
            state,
            acceptor: acceptor.boxed(),
            addr,
            shutdown_tx,
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
            shutdown_tx,
        } = self;
        let static_dir = static_dir();
        tracing::info!(%addr, demo = state.cfg.demo, static_dir = %static_dir.display(), "listening");

        let app = routes(state.clone(), static_dir);
        let hub = state.hub.clone();
        let stop = async move {
            signal.await;
            tracing::info!("shutdown: closing sockets with 1001");
            let _ = shutdown_tx.send(true);
            hub.close_all(close::GOING_AWAY);
        };
        let result = poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, stop, Some(Duration::from_secs(10)))
            .await;
        if let Err(e) = state.store.flush().await {
            tracing::error!(error = %e, "shutdown: store flush failed");
        } else {
            tracing::info!("shutdown: store flushed");
        }
        result
    }
}

/// Where the browser pages live: `DANMAKU_STATIC_DIR`, else `static/` beside the crate.
pub fn static_dir() -> std::path::PathBuf {
    std::env::var_os("DANMAKU_STATIC_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static"))
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
