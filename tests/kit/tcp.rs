//! A meter behind a TCP serial bridge (ser2net, ESP-Link): the gateway's `tcp` transport
//! connects to this listener and the test writes meter bytes into the connection.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The bridge side of a `tcp = "127.0.0.1:<port>"` source.
pub struct TcpMeter {
    listener: TcpListener,
    conn: Option<TcpStream>,
}

impl TcpMeter {
    /// Listens on a free local port.
    pub async fn bind() -> TcpMeter {
        TcpMeter {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            conn: None,
        }
    }

    /// `host:port` for the source's `tcp` key.
    pub fn addr(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// Waits for the gateway to connect (again).
    pub async fn accept(&mut self) {
        let (s, _) = tokio::time::timeout(Duration::from_secs(60), self.listener.accept())
            .await
            .expect("the gateway connects to the bridge")
            .unwrap();
        s.set_nodelay(true).unwrap();
        self.conn = Some(s);
    }

    /// Sends meter bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        let c = self.conn.as_mut().expect("accept first");
        c.write_all(bytes).await.unwrap();
        c.flush().await.unwrap();
    }
}
