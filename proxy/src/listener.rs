//! Process layout: the control thread binds the client port, accepts connections and hands
//! them round-robin to worker threads (single-threaded runtimes, half the cores by default, so a client and
//! the backend connections it uses share a thread and never lock). The control thread also
//! runs the topology loop, the metrics endpoint and the SIGHUP reload.
//!
//! Guarantee: a bad configuration is refused before anything binds; on SIGHUP a bad file is
//! logged with its reason and the configuration in force stays.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tandem_config::ProxyConfig;
use tokio::sync::mpsc;

use crate::pool::WorkerCtx;
use crate::session::Session;
use crate::topology::{self, Event};
use crate::{validate, Reloader, Shared};

/// How often workers publish their metrics.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How often workers drop pools of backends that left the topology (in flushes).
const PRUNE_EVERY_FLUSHES: u64 = 5;

/// Runs the proxy until SIGINT/SIGTERM. `reload` re-reads the configuration on SIGHUP.
pub fn run(config: ProxyConfig, reload: Option<Reloader>) -> Result<(), String> {
    validate(&config)?;
    let threads = tandem_config::threads_or_default(config.threads);
    let shared = Shared::new(config.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        if !config.metrics.is_empty() {
            crate::metrics::install(&config.metrics)?;
        }
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = mpsc::unbounded_channel::<(std::net::TcpStream, String)>();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("proxy-worker-{i}"))
                .spawn(move || worker_main(i, shared, rx))
                .map_err(|e| format!("cannot start worker thread: {e}"))?;
            workers.push(tx);
        }
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        tokio::spawn(topology::run(shared.clone(), ev_rx, ev_tx.clone()));
        tokio::spawn(reload_on_sighup(shared.clone(), reload, ev_tx));
        tracing::info!(
            listen = %config.listen,
            metrics = %config.metrics,
            threads,
            sentinels = ?config.sentinels,
            master = ?config.master,
            read_policy = ?config.read_policy,
            "tandem proxy ready to accept connections"
        );
        let mut next = 0usize;
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                r = listener.accept() => match r {
                    Ok((stream, peer)) => {
                        let std = match stream.into_std() {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::warn!(%peer, reason = %e, "cannot hand the client to a worker");
                                continue;
                            }
                        };
                        let _ = workers[next % workers.len()].send((std, peer.to_string()));
                        next = next.wrapping_add(1);
                    }
                    Err(e) => {
                        tracing::warn!(reason = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        }
        tracing::info!("tandem proxy shutting down");
        Ok(())
    })
}

fn worker_main(
    index: usize,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<(std::net::TcpStream, String)>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(reason = %e, "worker runtime failed to start");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let ctx = WorkerCtx::new(shared.clone());
        let prune_ctx = ctx.clone();
        tokio::task::spawn_local(async move {
            let mut t = tokio::time::interval(FLUSH_EVERY);
            let mut n = 0u64;
            loop {
                t.tick().await;
                prune_ctx.flush_metrics(index);
                n += 1;
                if !n.is_multiple_of(PRUNE_EVERY_FLUSHES) {
                    continue;
                }
                let snap = prune_ctx.shared.topo.load_full();
                let mut keep = snap.replica_addrs.clone();
                if let Some(m) = &snap.master {
                    keep.push(m.clone());
                }
                prune_ctx.prune(&keep);
            }
        });
        while let Some((std, peer)) = rx.recv().await {
            let stream = match tokio::net::TcpStream::from_std(std) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%peer, reason = %e, "cannot register the client socket");
                    continue;
                }
            };
            let session = Session::new(ctx.clone(), stream, peer);
            tokio::task::spawn_local(session.run());
        }
    });
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
    tracing::info!("received a shutdown signal");
}

/// SIGHUP: build the new configuration, validate it, swap it in atomically.
async fn reload_on_sighup(
    shared: Arc<Shared>,
    reload: Option<Reloader>,
    ev: mpsc::UnboundedSender<Event>,
) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: config reload disabled");
        return;
    };
    while hup.recv().await.is_some() {
        let Some(reload) = reload.as_ref() else {
            tracing::warn!(
                "SIGHUP received but the proxy was started without --config: nothing to reload"
            );
            continue;
        };
        let new = match reload().and_then(|c| validate(&c).map(|()| c)) {
            Ok(c) => c,
            Err(e) => {
                metrics::counter!("tandem_proxy_config_reloads_total", "result" => "error")
                    .increment(1);
                tracing::error!(reason = %e, "config reload failed: keeping the configuration in force");
                continue;
            }
        };
        let old = shared.config.load_full();
        if new.listen != old.listen || new.metrics != old.metrics || new.threads != old.threads {
            tracing::warn!(
                "listen, metrics and threads changes need a restart; the other changes apply now"
            );
        }
        let backends_changed = new.backend_password != old.backend_password
            || new.pool_size != old.pool_size
            || new.connect_timeout_ms != old.connect_timeout_ms
            || new.command_timeout_ms != old.command_timeout_ms;
        shared.config.store(Arc::new(new.clone()));
        if backends_changed {
            shared.config_gen.fetch_add(1, Ordering::SeqCst);
        }
        let _ = ev.send(Event::Reloaded);
        metrics::counter!("tandem_proxy_config_reloads_total", "result" => "ok").increment(1);
        tracing::info!(
            read_policy = ?new.read_policy,
            max_lag_ms = new.max_lag_ms,
            sentinels = ?new.sentinels,
            master = ?new.master,
            replicas = ?new.replicas,
            backends_changed,
            "config reloaded"
        );
    }
}
