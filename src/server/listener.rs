//! Listener: accepts TCP connections and serves HTTP/1.1 and HTTP/2 on the same port: h2c with
//! prior knowledge in plain text (the JavaScript SDK speaks HTTP/2 to an `http://` endpoint), and
//! over TLS whichever of `h2` and `http/1.1` the client's ALPN picks.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::tls::Tls;
use crate::proxy::identify::ClientCertificate;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Time limits of a listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// HTTP/1.1: longest time to receive a request's headers (slowloris defence).
    pub header_timeout: Duration,
    /// How long open connections get to finish once shutdown starts; then they are closed.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(30),
        }
    }
}

/// Serves `handler` on every connection accepted from `listener` (over TLS when `tls` is
/// given) until `shutdown` fires, then lets open connections finish for up to `limits.drain`
/// and closes the rest.
///
/// `handler`'s future is what hyper moves into place for every request and keeps a slot of
/// its size for on every connection: make it inside an `async move` block that captures the
/// request, not by wrapping a future already made (an async block that awaits a captured
/// future holds it twice).
pub async fn serve<F, Fut, B>(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    handler: F,
    shutdown: CancellationToken,
    limits: Limits,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set stays the size of the open ones.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Small event-stream frames must leave as soon as they are written.
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let Some(tls) = &tls else {
            let service = service_fn(move |req| handler(req, peer));
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            connections.spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
            });
            continue;
        };
        // The handshake runs in the connection's own task, bounded like a request's headers,
        // with the configuration in force when the connection arrived.
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let tls = tls.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        connections.spawn(async move {
            let stream =
                match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tls.handshake_failed();
                        tracing::debug!(error = %e, %peer, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tls.handshake_failed();
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            // A client certificate (mutual TLS) was verified in the handshake; its names are
            // read once here and every request on the connection carries them.
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| ClientCertificate::from_der(leaf));
            let service = service_fn(move |mut req: Request<Incoming>| {
                if let Some(cert) = &cert {
                    req.extensions_mut().insert(cert.clone());
                }
                handler(req, peer)
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        // Closing them drops their responses, which records each one (as cut short).
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain deadline; closing them"
        );
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
}
