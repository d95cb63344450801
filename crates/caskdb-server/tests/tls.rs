#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! TLS on `tls-port` beside the plain port, with certificates made at run time (rcgen): a
//! client with a certificate from the configured CA is served; without one, with one from
//! another CA, or not trusting the server's certificate, the handshake fails; plain text sent
//! to the TLS port gets no reply; `tls-auth-clients optional` and `no`; a configuration
//! missing its files is refused at start with the parameter named; redis-cli `--tls` and
//! redis-py `ssl=True` work. After every failure the server still serves both ports.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A CA and what it signed, as PEM files in a directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

fn make_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

fn signed(names: &[&str], issuer: &(rcgen::Certificate, KeyPair)) -> (rcgen::Certificate, KeyPair) {
    let params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    (params.signed_by(&key, &issuer.0, &issuer.1).unwrap(), key)
}

/// Writes: ca.crt, server.crt/.key (for 127.0.0.1 and localhost), client.crt/.key (same CA),
/// rogue-ca.crt and rogue.crt/.key (another CA).
fn make_pki(dir: &Path) -> Pki {
    let ca = make_ca("caskdb test CA");
    let rogue_ca = make_ca("rogue CA");
    let server = signed(&["127.0.0.1", "localhost"], &ca);
    let client = signed(&["client"], &ca);
    let rogue = signed(&["rogue"], &rogue_ca);
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    write("ca.crt", ca.0.pem());
    write("rogue-ca.crt", rogue_ca.0.pem());
    for (name, (cert, key)) in [("server", &server), ("client", &client), ("rogue", &rogue)] {
        write(&format!("{name}.crt"), cert.pem());
        write(&format!("{name}.key"), key.serialize_pem());
    }
    Pki {
        dir: dir.to_path_buf(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server with TLS on a port of its own; `auth` is `tls-auth-clients`.
fn start(dir: &Path, pki: &Pki, auth: &str) -> (common::TestServer, SocketAddr) {
    let port = free_port();
    let settings = [
        ("tls-port", port.to_string()),
        ("tls-cert-file", pki.path("server.crt")),
        ("tls-key-file", pki.path("server.key")),
        ("tls-ca-cert-file", pki.path("ca.crt")),
        ("tls-auth-clients", auth.to_string()),
    ];
    let srv = common::start_with(dir, |c| {
        for (k, v) in &settings {
            c.redis.push((k.to_string(), v.clone()));
        }
    });
    (srv, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A TLS client trusting `roots`, presenting `identity` (cert and key files) if given.
fn client_config(roots: &str, identity: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    #[allow(deprecated)] // as the server's (tls.rs)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(roots).unwrap() {
        store.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
    })
}

/// Sends PING over TLS; what came back (`+PONG`), or the error that ended the exchange.
fn tls_ping(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<String, String> {
    let conn = rustls::ClientConnection::new(config, ServerName::try_from("127.0.0.1").unwrap())
        .map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"*1\r\n$4\r\nPING\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = tls.read(&mut buf).map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("closed".into());
    }
    Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
}

fn plain_ping(srv: &common::TestServer) {
    assert_eq!(
        srv.raw().cmd(&["PING"]),
        common::Reply::Simple("PONG".into())
    );
}

#[test]
fn clients_need_a_certificate_from_the_ca_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let (srv, tls) = start(dir.path(), &pki, "yes");
    let (ca, client_crt, client_key) = (
        pki.path("ca.crt"),
        pki.path("client.crt"),
        pki.path("client.key"),
    );

    let good = client_config(&ca, Some((&client_crt, &client_key)));
    assert_eq!(tls_ping(tls, good.clone()), Ok("+PONG".into()));
    plain_ping(&srv);

    // No certificate: refused.
    let err = tls_ping(tls, client_config(&ca, None)).unwrap_err();
    assert!(!err.is_empty());
    // A certificate from another CA: refused.
    let rogue = client_config(&ca, Some((&pki.path("rogue.crt"), &pki.path("rogue.key"))));
    assert!(tls_ping(tls, rogue).is_err());
    // A client that does not trust the server's certificate gives up itself.
    let distrust = client_config(&pki.path("rogue-ca.crt"), Some((&client_crt, &client_key)));
    let err = tls_ping(tls, distrust).unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // Plain text to the TLS port: no RESP reply, the connection ends.
    let mut raw = TcpStream::connect(tls).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    raw.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"+PONG"), "{buf:?}");

    // Still serving on both ports, data shared.
    assert_eq!(tls_ping(tls, good), Ok("+PONG".into()));
    plain_ping(&srv);
}

#[test]
fn optional_and_no_client_authentication() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let ca = pki.path("ca.crt");
    let identity = (pki.path("client.crt"), pki.path("client.key"));
    for auth in ["optional", "no"] {
        let dir = tempfile::tempdir().unwrap();
        let (_srv, tls) = start(dir.path(), &pki, auth);
        assert_eq!(
            tls_ping(tls, client_config(&ca, None)),
            Ok("+PONG".into()),
            "{auth}: without a certificate"
        );
        if auth == "optional" {
            assert_eq!(
                tls_ping(tls, client_config(&ca, Some((&identity.0, &identity.1)))),
                Ok("+PONG".into())
            );
            // Given, it is checked.
            let rogue = client_config(&ca, Some((&pki.path("rogue.crt"), &pki.path("rogue.key"))));
            assert!(tls_ping(tls, rogue).is_err());
        }
    }
}

#[test]
fn a_tls_port_without_its_files_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = common::start_err(dir.path(), |c| {
        c.redis.push(("tls-port".into(), free_port().to_string()));
    });
    assert!(err.contains("tls-cert-file"), "{err}");
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let err = common::start_err(dir.path(), |c| {
        c.redis.push(("tls-port".into(), free_port().to_string()));
        c.redis
            .push(("tls-cert-file".into(), pki.path("server.crt")));
        c.redis
            .push(("tls-key-file".into(), pki.path("server.key")));
    });
    assert!(err.contains("tls-ca-cert-file"), "{err}");
    let err = common::start_err(dir.path(), |c| {
        c.redis.push(("tls-port".into(), free_port().to_string()));
        c.redis
            .push(("tls-cert-file".into(), pki.path("missing.crt")));
        c.redis
            .push(("tls-key-file".into(), pki.path("server.key")));
        c.redis.push(("tls-auth-clients".into(), "no".into()));
    });
    assert!(err.contains("missing.crt"), "{err}");
}

#[test]
fn redis_cli_and_redis_py_speak_tls_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let (_srv, tls) = start(dir.path(), &pki, "yes");
    let port = tls.port().to_string();
    let (ca, crt, key) = (
        pki.path("ca.crt"),
        pki.path("client.crt"),
        pki.path("client.key"),
    );
    if let Ok(out) = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--tls",
            "--cacert",
            &ca,
            "--cert",
            &crt,
            "--key",
            &key,
            "SET",
            "via",
            "redis-cli",
        ])
        .output()
    {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");
    }
    let script = format!(
        "import redis\n\
         r = redis.Redis(host='127.0.0.1', port={port}, ssl=True, ssl_ca_certs={ca:?}, \
         ssl_certfile={crt:?}, ssl_keyfile={key:?}, socket_timeout=20)\n\
         r.set('via-py', 'redis-py')\n\
         print(r.get('via').decode(), r.get('via-py').decode())\n"
    );
    match std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
    {
        Ok(out) if out.status.success() => {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "redis-cli redis-py"
            );
        }
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named 'redis'") => {
            eprintln!("redis-py is not installed: skipped");
        }
        Ok(out) => panic!("redis-py over TLS failed: {out:?}"),
        Err(e) => eprintln!("python3 is not available ({e}): skipped"),
    }
}

#[test]
fn config_set_of_the_tls_files_renews_the_certificate_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let (srv, tls) = start(dir.path(), &pki, "no");
    let trust_first = client_config(&pki.path("ca.crt"), None);
    assert_eq!(tls_ping(tls, trust_first.clone()), Ok("+PONG".into()));
    // A connection made before the change.
    let conn = rustls::ClientConnection::new(
        trust_first.clone(),
        ServerName::try_from("127.0.0.1").unwrap(),
    )
    .unwrap();
    let tcp = TcpStream::connect(tls).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut early = rustls::StreamOwned::new(conn, tcp);
    let mut ping_early = || {
        early.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        let mut buf = [0u8; 7];
        early.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
    };
    ping_early();

    // A certificate from another CA, under new names (`renewed.*`), then renewed in place.
    let write = |name: &str, text: String| std::fs::write(pki_dir.path().join(name), text).unwrap();
    let mut admin = srv.raw();
    let (renewed_crt, renewed_key) = (pki.path("renewed.crt"), pki.path("renewed.key"));
    // Writes `ca_file` and `renewed.*` signed by a new CA, then CONFIG SETs the two files.
    let mut renew = |ca_name: &str, ca_file: &str| {
        let ca = make_ca(ca_name);
        let (cert, key) = signed(&["127.0.0.1"], &ca);
        write(ca_file, ca.0.pem());
        write("renewed.crt", cert.pem());
        write("renewed.key", key.serialize_pem());
        assert_eq!(
            admin.cmd(&[
                "CONFIG",
                "SET",
                "tls-cert-file",
                &renewed_crt,
                "tls-key-file",
                &renewed_key,
            ]),
            common::Reply::Simple("OK".into())
        );
    };
    renew("second CA", "ca2.crt");
    let err = tls_ping(tls, trust_first.clone()).unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    let trust_second = client_config(&pki.path("ca2.crt"), None);
    assert_eq!(tls_ping(tls, trust_second.clone()), Ok("+PONG".into()));
    ping_early();

    // Renewed in place (same names): CONFIG SET reads the files again.
    renew("third CA", "ca3.crt");
    assert!(tls_ping(tls, trust_second.clone()).is_err());
    let trust_third = client_config(&pki.path("ca3.crt"), None);
    assert_eq!(tls_ping(tls, trust_third.clone()), Ok("+PONG".into()));

    // Files that do not make a configuration: refused with Redis's error, nothing changes.
    let refused = |param: &str| {
        common::Reply::Error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{param}') - Unable to update TLS configuration. Check server logs."
        ))
    };
    let missing = pki.path("missing.crt");
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "tls-cert-file", &missing]),
        refused("tls-cert-file")
    );
    // A key that is not the certificate's.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "tls-key-file", &pki.path("rogue.key")]),
        refused("tls-key-file")
    );
    for (param, value) in [
        ("tls-cert-file", &renewed_crt),
        ("tls-key-file", &renewed_key),
    ] {
        assert_eq!(
            admin.cmd(&["CONFIG", "GET", param]),
            common::Reply::Array(vec![common::Reply::bulk(param), common::Reply::bulk(value)]),
            "the value before the refused CONFIG SET"
        );
    }
    assert_eq!(tls_ping(tls, trust_third.clone()), Ok("+PONG".into()));

    // Client certificates required from now on.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "tls-auth-clients", "yes"]),
        common::Reply::Simple("OK".into())
    );
    assert!(tls_ping(tls, trust_third).is_err());
    let with_identity = client_config(
        &pki.path("ca3.crt"),
        Some((&pki.path("client.crt"), &pki.path("client.key"))),
    );
    assert_eq!(tls_ping(tls, with_identity), Ok("+PONG".into()));
    ping_early();
    plain_ping(&srv);
}
