#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! The Raft bus's handshake: only a peer holding the group's secret gets answers; a wrong
//! secret, no secret, or a client that is not a caskdb node is refused, and the node goes on
//! serving its group.

use std::collections::BTreeMap;
use std::time::Duration;

use caskdb_raft::{Effects, Node, NodeOptions, Op, Secret, network};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_peers_with_the_secret_are_answered() {
    let root = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let members: BTreeMap<u64, String> = [(1, addr.clone())].into();
    let mut options = NodeOptions::new(1, members, root.path().join("raft"));
    options.secret = Secret::new(b"alpha");
    let data = caskdb::Options::default()
        .open(root.path().join("data"))
        .unwrap();
    let node = Node::start(options, data).await.unwrap();
    node.raft()
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .unwrap();

    let ok = network::status(&addr, &Secret::new(b"alpha"))
        .await
        .unwrap();
    assert!(ok.initialized && ok.leader.is_some(), "{ok:?}");
    for wrong in [Secret::new(b"beta"), Secret::default()] {
        let e = network::status(&addr, &wrong).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("secret"), "{e}");
    }

    // Something that is not a caskdb node (an HTTP request, 28 bytes: a greeting's length and
    // more) is hung up on without an answer.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(read.is_err() || buf.is_empty(), "answered: {buf:?}");

    // The group goes on: a write commits, and the right secret is still answered.
    let put = Effects {
        ops: vec![Op::Put {
            key: bytes::Bytes::from_static(b"k"),
            value: bytes::Bytes::from_static(b"v"),
            expire_at: None,
        }],
        ..Default::default()
    };
    node.write(put).await.unwrap();
    assert!(
        network::status(&addr, &Secret::new(b"alpha"))
            .await
            .unwrap()
            .last_log_index
            .is_some()
    );
    node.shutdown().await;
}
