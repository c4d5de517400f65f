//! A TCP proxy in front of Postgres that a test can cut, to take the
//! database away from one node while everything else keeps running, or
//! stall, to make the connections open at that moment die silently.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    /// `true` while the database is "down".
    down: watch::Sender<bool>,
    /// Bumped by [`Proxy::stall`]; connections opened before the bump go
    /// silent.
    stalls: watch::Sender<u64>,
}

impl Proxy {
    /// A proxy in front of a test database; returns it with the database
    /// URL that goes through it, for a node whose only way to Postgres is
    /// this proxy.
    pub async fn to_database(database_url: &str) -> (Proxy, String) {
        let url = reqwest::Url::parse(database_url).unwrap();
        let proxy = Proxy::start(format!(
            "{}:{}",
            url.host_str().unwrap(),
            url.port().unwrap_or(5432)
        ))
        .await;
        let mut proxied = url.clone();
        proxied.set_port(Some(proxy.port)).unwrap();
        (proxy, proxied.to_string())
    }

    /// Starts forwarding a free local port to `target` (host:port).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (down, watcher) = watch::channel(false);
        let (stalls, stall_watcher) = watch::channel(0_u64);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watcher.borrow() {
                    continue; // dropped at once: the connection is refused
                }
                let target = target.clone();
                let mut watcher = watcher.clone();
                let mut stall = stall_watcher.clone();
                let born = *stall.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let stalled = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                        _ = watcher.wait_for(|down| *down) => false,
                        _ = stall.wait_for(|stalls| *stalls > born) => true,
                    };
                    if stalled {
                        // Like a route that vanished: whatever either side
                        // sends is lost, and neither side hears a close.
                        let (mut in_read, _in_write) = inbound.split();
                        let (mut out_read, _out_write) = outbound.split();
                        let swallow = async {
                            let mut sink = tokio::io::sink();
                            let mut other = tokio::io::sink();
                            let _ = tokio::join!(
                                tokio::io::copy(&mut in_read, &mut sink),
                                tokio::io::copy(&mut out_read, &mut other),
                            );
                        };
                        tokio::select! {
                            () = swallow => {}
                            _ = watcher.wait_for(|down| *down) => {}
                        }
                    }
                });
            }
        });
        Proxy { port, down, stalls }
    }

    /// Cuts every connection and refuses new ones.
    pub async fn cut(&self) {
        self.down.send_replace(true);
        // Let the forwarding tasks see it and drop their sockets.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.down.send_replace(false);
    }

    /// Makes every connection open now die silently: from now on nothing
    /// it carries arrives, in either direction, and it is not closed.
    /// Connections opened afterwards work.
    pub fn stall(&self) {
        self.stalls.send_modify(|stalls| *stalls += 1);
    }
}
