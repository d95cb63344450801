//! TLS for clients (rustls, with the `ring` provider: no OpenSSL): the acceptor made from
//! redis.conf's parameters (`tls-port`, `tls-cert-file`, `tls-key-file`, `tls-ca-cert-file`,
//! `tls-auth-clients`, `tls-protocols`), and the socket a connection reads and writes, plain or
//! TLS.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The TLS settings, as redis.conf names them.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    /// `tls-port` (0: no TLS listener).
    pub port: u16,
    /// `tls-cert-file`, `tls-key-file`: the server's certificate chain and key (PEM).
    pub cert_file: String,
    pub key_file: String,
    /// `tls-ca-cert-file`: the CAs client certificates must chain to (PEM).
    pub ca_cert_file: String,
    /// `tls-auth-clients`: `yes` (the default: a client certificate is required), `no`, or
    /// `optional` (checked if given).
    pub auth_clients: String,
    /// `tls-protocols`: `TLSv1.2`, `TLSv1.3` or both (the default), space-separated.
    pub protocols: String,
}

impl TlsSettings {
    /// The settings from the values of the parameters (`get` reads one by name).
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> TlsSettings {
        TlsSettings {
            port: get("tls-port").and_then(|p| p.parse().ok()).unwrap_or(0),
            cert_file: get("tls-cert-file").unwrap_or_default(),
            key_file: get("tls-key-file").unwrap_or_default(),
            ca_cert_file: get("tls-ca-cert-file").unwrap_or_default(),
            auth_clients: get("tls-auth-clients").unwrap_or_else(|| "yes".into()),
            protocols: get("tls-protocols").unwrap_or_default(),
        }
    }

    /// The acceptor these settings describe, or why they cannot make one (a message naming the
    /// parameter or file at fault).
    pub fn acceptor(&self) -> Result<TlsAcceptor, String> {
        if self.cert_file.is_empty() || self.key_file.is_empty() {
            return Err("tls-port is set: tls-cert-file and tls-key-file are required".into());
        }
        let certs = read_certs(&self.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| format!("tls-key-file {}: {e}", self.key_file))?;
        let provider = Arc::new(provider());
        let versions = self.versions()?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls-protocols: {e}"))?;
        let auth = self.auth_clients.to_ascii_lowercase();
        let builder = match auth.as_str() {
            "no" => builder.with_no_client_auth(),
            "yes" | "optional" => {
                if self.ca_cert_file.is_empty() {
                    return Err(
                        "tls-auth-clients is yes or optional: tls-ca-cert-file is required".into(),
                    );
                }
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(&self.ca_cert_file)? {
                    roots
                        .add(c)
                        .map_err(|e| format!("tls-ca-cert-file {}: {e}", self.ca_cert_file))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == "optional" {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| format!("tls-ca-cert-file {}: {e}", self.ca_cert_file))?;
                builder.with_client_cert_verifier(verifier)
            }
            other => {
                return Err(format!(
                    "tls-auth-clients: expected yes, no or optional, got {other}"
                ));
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("tls-cert-file/tls-key-file: {e}"))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// The TLS of a group's Raft bus (`tls-replication yes`): this node's certificate both
    /// ways, and the peers' checked against `tls-ca-cert-file` in both directions.
    pub fn bus_tls(&self) -> Result<caskdb_raft::tls::BusTls, String> {
        if self.cert_file.is_empty() || self.key_file.is_empty() || self.ca_cert_file.is_empty() {
            return Err(
                "tls-replication yes: tls-cert-file, tls-key-file and tls-ca-cert-file are required"
                    .into(),
            );
        }
        let certs = read_certs(&self.cert_file)?;
        let key = || {
            PrivateKeyDer::from_pem_file(&self.key_file)
                .map_err(|e| format!("tls-key-file {}: {e}", self.key_file))
        };
        let provider = Arc::new(provider());
        let versions = self.versions()?;
        let mut roots = rustls::RootCertStore::empty();
        for c in read_certs(&self.ca_cert_file)? {
            roots
                .add(c)
                .map_err(|e| format!("tls-ca-cert-file {}: {e}", self.ca_cert_file))?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("tls-ca-cert-file {}: {e}", self.ca_cert_file))?;
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls-protocols: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key()?)
            .map_err(|e| format!("tls-cert-file/tls-key-file: {e}"))?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls-protocols: {e}"))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key()?)
            .map_err(|e| format!("tls-cert-file/tls-key-file: {e}"))?;
        Ok(caskdb_raft::tls::BusTls::new(
            Arc::new(client),
            Arc::new(server),
        ))
    }

    fn versions(&self) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
        if self.protocols.trim().is_empty() {
            return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
        }
        let mut v = Vec::new();
        for p in self.protocols.split_whitespace() {
            match p.to_ascii_lowercase().as_str() {
                "tlsv1.2" => v.push(&rustls::version::TLS12),
                "tlsv1.3" => v.push(&rustls::version::TLS13),
                other => {
                    return Err(format!(
                        "tls-protocols: {other} is not supported (TLSv1.2 and TLSv1.3 are)"
                    ));
                }
            }
        }
        Ok(v)
    }
}

/// rustls's `ring` provider: deprecated since rustls 0.23.48 in favour of aws-lc-rs, whose
/// post-quantum key exchange it lacks; kept because aws-lc-rs builds a large C library (and
/// needs more than `cc` on some machines). Switching is a one-line change here.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(Path::new(path))
        .map_err(|e| format!("{path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no certificate in it"));
    }
    Ok(certs)
}

/// A client's socket: plain TCP, or TLS over it.
pub(crate) enum Socket {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Plain(s) => s.is_write_vectored(),
            Socket::Tls(s) => s.is_write_vectored(),
        }
    }
}
