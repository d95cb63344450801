//! TLS on the Raft bus (the server's `tls-replication yes`): every connection between members
//! is TLS with certificates both ways (each member shows its own, checked against the group's
//! CA), and the handshake proving the group's secret runs inside it. Without it, the bus is
//! authenticated but not encrypted.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The TLS a group's members speak to each other.
#[derive(Clone)]
pub struct BusTls {
    connector: TlsConnector,
    acceptor: TlsAcceptor,
}

impl BusTls {
    /// TLS with `client` for the connections this member makes and `server` for those it
    /// accepts. The server side should require client certificates, so that only members
    /// reach the handshake.
    pub fn new(client: Arc<rustls::ClientConfig>, server: Arc<rustls::ServerConfig>) -> BusTls {
        BusTls {
            connector: TlsConnector::from(client),
            acceptor: TlsAcceptor::from(server),
        }
    }
}

impl std::fmt::Debug for BusTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BusTls(..)")
    }
}

/// A connection of the bus: plain TCP, or TLS over it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// A boxed [`Stream`].
pub(crate) type BusStream = Box<dyn Stream>;

/// The connection made to `addr` over `tcp`: TLS if `tls` is set (the peer's certificate
/// must name `addr`'s host).
pub(crate) async fn connect(
    tcp: TcpStream,
    addr: &str,
    tls: Option<&BusTls>,
) -> std::io::Result<BusStream> {
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("raft bus: {host} is not a name TLS can check: {e}"),
        )
    })?;
    Ok(Box::new(tls.connector.connect(name, tcp).await?))
}

/// The connection accepted over `tcp`: TLS if `tls` is set.
pub(crate) async fn accept(tcp: TcpStream, tls: Option<&BusTls>) -> std::io::Result<BusStream> {
    match tls {
        None => Ok(Box::new(tcp)),
        Some(tls) => Ok(Box::new(tls.acceptor.accept(tcp).await?)),
    }
}
