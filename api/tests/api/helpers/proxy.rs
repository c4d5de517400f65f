//! A TCP proxy in front of Postgres that a test can cut, to take the
//! database away from one node while everything else keeps running.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    /// `true` while the database is "down".
    down: watch::Sender<bool>,
}

impl Proxy {
    /// Starts forwarding a free local port to `target` (host:port).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (down, watcher) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watcher.borrow() {
                    continue; // dropped at once: the connection is refused
                }
                let target = target.clone();
                let mut watcher = watcher.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watcher.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Proxy { port, down }
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
}
