//! The ceiling for `scripts/bench-up.sh`: an axum handler that does no work. It drains the request
//! body and answers 200 `{}`, on the same route, runtime (tokio, multi-threaded) and HTTP stack
//! (hyper HTTP/1.1, TCP_NODELAY) as `weir up`, so "weir / trivial" isolates what weir's ingest costs.
//!
//! `cargo run --release -p weir-gateway --example trivial_server -- <port>` (0 picks a free port; the
//! first line printed is `listening on http://127.0.0.1:<port>`). Loopback only.

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::serve::ListenerExt;
use std::io::Write;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .expect("usage: trivial_server <port>")
        .parse()
        .expect("the port is a number from 0 to 65535");
    let app = Router::new().route(
        "/v1/streams/events/records",
        // The `Bytes` extractor reads the whole body before the handler runs.
        post(|_body: Bytes| async { ([(header::CONTENT_TYPE, "application/json")], "{}") }),
    );
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("binding 127.0.0.1");
    let addr = listener.local_addr().expect("the listener's address");
    println!("listening on http://{addr}");
    std::io::stdout().flush().expect("flushing stdout");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("serving");
}
