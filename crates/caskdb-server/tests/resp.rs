//! The wire protocol, byte for byte: pipelining, inline commands, protocol errors, limits,
//! authentication, RESP3, maxclients, shutdown.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Reply, encode, start, start_err, start_fresh, start_with};

fn ok() -> Reply {
    Reply::Simple("OK".into())
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let srv = start_fresh();
    let mut c = srv.raw();
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend(encode(&["SET", &format!("k{i}"), &format!("v{i}")]));
        batch.extend(encode(&["GET", &format!("k{i}")]));
    }
    // One write holding 2000 requests; also split mid-request by the kernel as it likes.
    c.send_bytes(&batch);
    for i in 0..1000 {
        assert_eq!(c.read(), ok());
        assert_eq!(c.read(), Reply::bulk(&format!("v{i}")));
    }
}

#[test]
fn a_request_split_at_every_byte_is_still_one_request() {
    let srv = start_fresh();
    let mut c = srv.raw();
    let req = encode(&["SET", "split", "value with spaces"]);
    for b in &req {
        c.send_bytes(std::slice::from_ref(b));
    }
    assert_eq!(c.read(), ok());
    assert_eq!(c.cmd(&["GET", "split"]), Reply::bulk("value with spaces"));
}

#[test]
fn inline_commands_work_like_telnet() {
    let srv = start_fresh();
    let mut c = srv.raw();
    c.send_bytes(b"SET greeting \"hello world\"\r\nGET greeting\nPING\r\n");
    assert_eq!(c.read(), ok());
    assert_eq!(c.read(), Reply::bulk("hello world"));
    assert_eq!(c.read(), Reply::Simple("PONG".into()));
}

fn protocol_error_closes(input: &[u8], expected: &str) {
    let srv = start_fresh();
    let mut c = srv.raw();
    c.send_bytes(input);
    assert_eq!(
        c.read(),
        Reply::Error(format!("ERR Protocol error: {expected}"))
    );
    assert!(
        c.read_to_end().is_empty(),
        "connection closed after the error"
    );
    // The server is still up for others.
    assert_eq!(srv.raw().cmd(&["PING"]), Reply::Simple("PONG".into()));
}

#[test]
fn malformed_requests_get_redis_protocol_errors_and_are_disconnected() {
    protocol_error_closes(b"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'");
    protocol_error_closes(b"*abc\r\n", "invalid multibulk length");
    protocol_error_closes(b"*1\r\n$-5\r\n", "invalid bulk length");
    protocol_error_closes(b"*1\r\n$536870913\r\n", "invalid bulk length");
    protocol_error_closes(b"SET a \"unclosed\r\n", "unbalanced quotes in request");
    protocol_error_closes(&vec![b'x'; 70 * 1024], "too big inline request");
}

#[test]
fn a_huge_declared_length_allocates_nothing_up_front() {
    let srv = start_fresh();
    let mut c = srv.raw();
    // 512 MB declared, a few bytes sent, then the client goes away: the server must neither
    // allocate 512 MB nor wait for it; others are served meanwhile.
    c.send_bytes(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc");
    let mut other = srv.raw();
    assert_eq!(other.cmd(&["SET", "k2", "v"]), ok());
    drop(c);
    assert_eq!(other.cmd(&["EXISTS", "k"]), Reply::Int(0));
}

#[test]
fn wrong_arity_and_unknown_commands_keep_the_connection() {
    let srv = start_fresh();
    let mut c = srv.raw();
    assert_eq!(
        c.cmd(&["GET"]),
        Reply::Error("ERR wrong number of arguments for 'get' command".into())
    );
    assert_eq!(
        c.cmd(&["NOPE", "a", "b"]),
        Reply::Error("ERR unknown command 'NOPE', with args beginning with: 'a' 'b' ".into())
    );
    assert_eq!(c.cmd(&["PING"]), Reply::Simple("PONG".into()));
}

#[test]
fn password_required_before_commands_and_large_requests_refused_before_auth() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with(dir.path(), |c| c.requirepass = Some("s3cret".into()));
    let mut c = srv.raw();
    assert_eq!(
        c.cmd(&["GET", "a"]),
        Reply::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(
        c.cmd(&["AUTH", "wrong"]),
        Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(c.cmd(&["AUTH", "default", "s3cret"]), ok());
    assert_eq!(c.cmd(&["SET", "a", "1"]), ok());

    // Before AUTH: more than 10 arguments, or a bulk over 16 KiB, closes the connection.
    let mut c = srv.raw();
    let args: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    c.send(&args);
    assert_eq!(
        c.read(),
        Reply::Error("ERR Protocol error: unauthenticated multibulk length".into())
    );
    assert!(c.read_to_end().is_empty());
    let mut c = srv.raw();
    let big = "x".repeat(16385);
    c.send(&["AUTH", &big]);
    assert_eq!(
        c.read(),
        Reply::Error("ERR Protocol error: unauthenticated bulk length".into())
    );
}

#[test]
fn hello_3_switches_to_resp3_and_back() {
    let srv = start_fresh();
    let mut c = srv.raw();
    c.send(&["HELLO", "3"]);
    let mut raw = Vec::new();
    let Reply::Map(fields) = c.read() else {
        panic!("HELLO 3 answers with a RESP3 map")
    };
    assert!(fields.contains(&(Reply::bulk("proto"), Reply::Int(3))));
    // Nulls are RESP3 nulls now.
    c.send(&["GET", "missing"]);
    c.stream.set_read_timeout(None).unwrap();
    use std::io::Read;
    let mut byte = [0u8; 3];
    c.stream.read_exact(&mut byte).unwrap();
    raw.extend_from_slice(&byte);
    assert_eq!(raw, b"_\r\n");
    let mut c = srv.raw();
    assert_eq!(
        c.cmd(&["HELLO", "4"]),
        Reply::Error("NOPROTO unsupported protocol version".into())
    );
}

#[test]
fn maxclients_refuses_the_extra_client_with_redis_message() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with(dir.path(), |c| c.maxclients = 2);
    let mut a = srv.raw();
    let mut b = srv.raw();
    assert_eq!(a.cmd(&["PING"]), Reply::Simple("PONG".into()));
    assert_eq!(b.cmd(&["PING"]), Reply::Simple("PONG".into()));
    let mut c = srv.raw();
    assert_eq!(
        c.read(),
        Reply::Error("ERR max number of clients reached".into())
    );
    drop(a);
    // Once a slot is free a new client gets in (the server notices the close on its own
    // time, so retry a bounded number of times).
    let mut served = None;
    for _ in 0..200 {
        let mut d = srv.raw();
        d.send(&["PING"]);
        if d.read() == Reply::Simple("PONG".into()) {
            served = Some(d);
            break;
        }
        std::thread::yield_now();
    }
    let mut d = served.expect("a freed slot is reused");
    // Room for the test harness's SHUTDOWN connection.
    assert_eq!(d.cmd(&["CONFIG", "SET", "maxclients", "10"]), ok());
    drop(b);
}

#[test]
fn protected_mode_refuses_a_public_bind_without_password() {
    let dir = tempfile::tempdir().unwrap();
    let err = start_err(dir.path(), |c| c.bind = vec!["0.0.0.0".parse().unwrap()]);
    assert!(
        err.contains("refusing to listen on 0.0.0.0 without a password"),
        "{err}"
    );
}

#[test]
fn a_locked_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _srv = start(dir.path());
    let err = start_err(dir.path(), |_| {});
    assert!(err.contains("locked"), "{err}");
}

#[test]
fn quit_replies_then_closes() {
    let srv = start_fresh();
    let mut c = srv.raw();
    assert_eq!(c.cmd(&["QUIT"]), ok());
    assert!(c.read_to_end().is_empty());
}
