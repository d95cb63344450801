//! The Raft bus's handshake: before any request on a connection, each end proves to the other
//! that it holds the group's secret, without sending it (HMAC-SHA256 over both ends' fresh
//! nonces, so a recorded handshake proves nothing later). The bytes are in docs/FORMAT.md,
//! "Raft bus". With no secret set, both ends use the empty one: a node with a secret and one
//! without refuse each other, rather than one silently running unauthenticated.

use std::time::Duration;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a connecting node sends first: this, the version, its nonce.
const MAGIC: &[u8; 10] = b"CASKDB-BUS";
const VERSION: u8 = 1;
const NONCE: usize = 16;
const TAG: usize = 32;
const HELLO: usize = MAGIC.len() + 1 + NONCE;

/// How long the accepting end waits for a handshake to finish.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The group's shared secret (`cluster-secret`, else `masterauth`, else `requirepass`).
/// Also what the bus's connections are wrapped in, if anything (`tls-replication`).
#[derive(Clone)]
pub struct Secret {
    key: hmac::Key,
    tls: Option<std::sync::Arc<crate::tls::BusTls>>,
}

impl Secret {
    /// The secret `bytes`; empty when none is set.
    pub fn new(bytes: &[u8]) -> Secret {
        Secret {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
            tls: None,
        }
    }

    /// The same secret, proven inside TLS connections (see [`crate::tls::BusTls`]).
    #[must_use]
    pub fn with_tls(mut self, tls: crate::tls::BusTls) -> Secret {
        self.tls = Some(std::sync::Arc::new(tls));
        self
    }

    /// The TLS of the bus, if any.
    pub(crate) fn tls(&self) -> Option<&crate::tls::BusTls> {
        self.tls.as_deref()
    }

    /// What `role`'s proof signs: the role, then both nonces.
    fn message(role: &[u8], client: &[u8], server: &[u8]) -> Vec<u8> {
        [role, client, server].concat()
    }

    fn tag(&self, role: &[u8], client: &[u8], server: &[u8]) -> hmac::Tag {
        hmac::sign(&self.key, &Self::message(role, client, server))
    }

    fn check(&self, role: &[u8], client: &[u8], server: &[u8], tag: &[u8]) -> bool {
        // (Constant time.)
        hmac::verify(&self.key, &Self::message(role, client, server), tag).is_ok()
    }
}

impl Default for Secret {
    fn default() -> Secret {
        Secret::new(b"")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn nonce() -> std::io::Result<[u8; NONCE]> {
    let mut n = [0u8; NONCE];
    SystemRandom::new()
        .fill(&mut n)
        .map_err(|_| std::io::Error::other("no random numbers for a nonce"))?;
    Ok(n)
}

fn refused(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "{what} does not hold this group's secret (cluster-secret, masterauth or \
             requirepass differ between the nodes)"
        ),
    )
}

/// The connecting end's half.
///
/// # Errors
/// The socket's; `PermissionDenied` if the peer's proof is wrong.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &Secret,
) -> std::io::Result<()> {
    let mine = nonce()?;
    let mut hello = [0u8; HELLO];
    hello[..MAGIC.len()].copy_from_slice(MAGIC);
    hello[MAGIC.len()] = VERSION;
    hello[MAGIC.len() + 1..].copy_from_slice(&mine);
    s.write_all(&hello).await?;
    s.flush().await?;
    let mut answer = [0u8; NONCE + TAG];
    s.read_exact(&mut answer).await?;
    let (theirs, proof) = answer.split_at(NONCE);
    if !secret.check(b"server", &mine, theirs, proof) {
        return Err(refused("the peer"));
    }
    s.write_all(secret.tag(b"client", &mine, theirs).as_ref())
        .await?;
    s.flush().await
}

/// The accepting end's half.
///
/// # Errors
/// The socket's; `InvalidData` for a greeting that is not a caskdb node's;
/// `PermissionDenied` if the peer's proof is wrong.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &Secret,
) -> std::io::Result<()> {
    let mut hello = [0u8; HELLO];
    s.read_exact(&mut hello).await?;
    let (magic, rest) = hello.split_at(MAGIC.len());
    let (version, theirs) = rest.split_at(1);
    if magic != MAGIC || version[0] != VERSION {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a caskdb Raft peer (unknown greeting)",
        ));
    }
    let mine = nonce()?;
    let mut answer = Vec::with_capacity(NONCE + TAG);
    answer.extend_from_slice(&mine);
    answer.extend_from_slice(secret.tag(b"server", theirs, &mine).as_ref());
    s.write_all(&answer).await?;
    s.flush().await?;
    let mut proof = [0u8; TAG];
    s.read_exact(&mut proof).await?;
    if !secret.check(b"client", theirs, &mine, &proof) {
        return Err(refused("the connecting node"));
    }
    Ok(())
}
