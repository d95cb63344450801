#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! TLS on the Raft bus: members with certificates of the group's CA form a group over TLS and
//! replicate; a peer speaking plain TCP, or one whose certificate another CA signed, gets no
//! answer, even with the group's secret.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use caskdb_raft::tls::BusTls;
use caskdb_raft::{Effects, Node, NodeOptions, Op, Secret, network};
use openraft::ServerState;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio_rustls::rustls;

const WAIT: Duration = Duration::from_secs(30);

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

/// A member's TLS: a certificate for 127.0.0.1 signed by `issuer`, trusting `trusted`.
#[allow(deprecated)] // (rustls's ring provider, as the server uses)
fn bus_tls(issuer: &(rcgen::Certificate, KeyPair), trusted: &rcgen::Certificate) -> BusTls {
    let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
    let chain = vec![cert.der().clone()];
    let private = || {
        rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        ))
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.der().clone()).unwrap();
    let roots = Arc::new(roots);
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), private())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, private())
        .unwrap();
    BusTls::new(Arc::new(client), Arc::new(server))
}

/// The member that itself says it is the leader, once one does.
async fn the_leader(nodes: &[Node; 3]) -> &Node {
    let mut seen: Vec<_> = nodes.iter().map(|n| n.raft().metrics()).collect();
    loop {
        if let Some(i) = seen
            .iter_mut()
            .position(|m| m.borrow_and_update().state == ServerState::Leader)
        {
            return &nodes[i];
        }
        let [a, b, c] = &mut seen[..] else {
            unreachable!("three members")
        };
        tokio::select! {
            _ = a.changed() => {}
            _ = b.changed() => {}
            _ = c.changed() => {}
        }
    }
}

fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_talk_over_tls_and_others_get_no_answer() {
    let root = tempfile::tempdir().unwrap();
    let group_ca = ca("group CA");
    let secret = Secret::new(b"alpha").with_tls(bus_tls(&group_ca, &group_ca.0));
    let members: BTreeMap<u64, String> = (1..=3).map(|id| (id, free_addr())).collect();
    let start = |id: u64| {
        let mut options =
            NodeOptions::new(id, members.clone(), root.path().join(format!("n{id}/raft")));
        options.election_timeout = Duration::from_millis(700);
        options.heartbeat = Duration::from_millis(100);
        options.secret = secret.clone();
        let data = caskdb::Options::default()
            .open(root.path().join(format!("n{id}/data")))
            .unwrap();
        Node::start(options, data)
    };
    let (a, b, c) = tokio::join!(start(1), start(2), start(3));
    let nodes = [a.unwrap(), b.unwrap(), c.unwrap()];
    let put = Effects {
        ops: vec![Op::Put {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"over tls"),
            expire_at: None,
        }],
        ..Default::default()
    };
    // A leader elected while the TLS links were still being set up can lose its term to a
    // member whose election timer ran out first (slow handshakes on a loaded machine): the
    // write then says NotLeader, and a client asks the new leader, as this one does.
    let index = tokio::time::timeout(WAIT, async {
        loop {
            let leader = the_leader(&nodes).await;
            match leader.write(put.clone()).await {
                Ok(written) => break written.index,
                Err(caskdb_raft::Error::NotLeader { .. }) => continue,
                Err(e) => panic!("write over tls: {e}"),
            }
        }
    })
    .await
    .expect("a leader that accepts the write");
    for n in &nodes {
        n.raft()
            .wait(Some(WAIT))
            .applied_index_at_least(Some(index), "applied")
            .await
            .unwrap();
        assert_eq!(
            n.data().get("k").unwrap().as_deref(),
            Some(&b"over tls"[..])
        );
    }

    let addr = &members[&1];
    assert!(network::status(addr, &secret).await.is_ok());
    // The secret without TLS, and TLS with another CA's certificate, get nothing.
    assert!(network::status(addr, &Secret::new(b"alpha")).await.is_err());
    let rogue_ca = ca("rogue CA");
    let rogue = Secret::new(b"alpha").with_tls(bus_tls(&rogue_ca, &group_ca.0));
    assert!(network::status(addr, &rogue).await.is_err());
    for n in nodes {
        n.shutdown().await;
    }
}
