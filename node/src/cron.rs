//! The node's periodic work (Redis's `serverCron`): active expiry `hz` times a second,
//! closing clients idle longer than `timeout`, resizing query buffers, ending a CLIENT PAUSE
//! whose time is up, and returning freed memory to the OS once a second.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::server::Server;

pub async fn run(srv: Arc<Server>) {
    let mut last_idle_check = std::time::Instant::now();
    loop {
        let hz = srv.config.load().hz.max(1);
        tokio::time::sleep(Duration::from_millis(1000 / hz as u64)).await;
        crate::cmd::server::cron_tick(&srv);
        crate::persistence::cron(&srv);
        srv.pause.expire_if_due(&srv);
        // Query buffers: the sessions resize theirs when asked (Redis's clientsCron).
        srv.clients.for_each(|c| {
            if c.query_buf_resizable() {
                c.resize_query_buf.notify_one();
            }
        });
        // As Redis, no active expiry while FAILOVER or CLIENT PAUSE pauses writes (its DELs
        // would move the offset the replicas must catch up with).
        if srv.active_expire.load(Ordering::Relaxed)
            && !srv.is_replica()
            && !srv.repl.failover.active()
            && !srv.pause.active()
        {
            crate::db::expiry::cycle(&srv);
        }
        // The DELs of expired keys (and anything else appended without a push) go out now.
        srv.repl.replicas.push(&srv);
        if last_idle_check.elapsed() >= Duration::from_secs(1) {
            last_idle_check = std::time::Instant::now();
            crate::alloc::release_free_memory();
            let timeout = srv.config.load().timeout;
            if timeout > 0 {
                for c in srv.clients.all() {
                    let exempt = matches!(
                        c.kind(),
                        crate::clients::ClientKind::PubSub
                            | crate::clients::ClientKind::Replica
                            | crate::clients::ClientKind::Master
                    ) || c.blocked.load(Ordering::Relaxed);
                    if !exempt && c.idle_secs() >= timeout {
                        tracing::info!(client = c.id, peer = %c.addr, idle = c.idle_secs(), "closing idle client (timeout)");
                        c.request_kill();
                    }
                }
            }
        }
    }
}
