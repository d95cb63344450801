#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! ACL against redis-server (RESP2 and RESP3): SETUSER's rules and errors, GETUSER, LIST,
//! USERS, CAT, DRYRUN, DELUSER, AUTH and HELLO AUTH; a matrix of users × commands × keys ×
//! channels (NOPERM errors, read-only and write-only key patterns, first-arg rules, MULTI and
//! scripts); and, on caskdb alone, the ACL LOG, `aclfile` and the clients of a deleted user.

mod common;

use common::diff::differential;

#[test]
fn users_rules_and_their_errors() {
    differential(|d| {
        d.script("setuser/getuser/list");
        d.run(
            r"
            ACL USERS
            acl: ACL LIST
            ACL WHOAMI
            ACL SETUSER alice
            acl: ACL GETUSER alice
            ACL SETUSER alice on >secret ~cache:* %R~ro:* %W~wo:* &news.* +@read -@dangerous +set
            acl: ACL GETUSER alice
            acl: ACL LIST
            ACL SETUSER alice <secret >other
            acl: ACL GETUSER alice
            ACL SETUSER alice <nosuch
            ACL SETUSER alice #0000
            ACL SETUSER alice #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
            acl: ACL GETUSER alice
            ACL SETUSER alice !5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 nopass
            acl: ACL GETUSER alice
            ACL SETUSER alice resetpass resetkeys resetchannels
            acl: ACL GETUSER alice
            ACL SETUSER alice allkeys ~more
            ACL SETUSER alice allchannels &more
            ACL SETUSER alice nosuchrule
            ACL SETUSER alice +nosuchcommand
            ACL SETUSER alice +@nosuchcategory
            ACL SETUSER alice +config|
            ACL SETUSER alice +config|get|x
            ACL SETUSER alice -@all +config|get +config|set
            acl: ACL GETUSER alice
            ACL SETUSER alice -@all +client
            acl: ACL GETUSER alice
            ACL SETUSER alice +@all -@dangerous
            acl: ACL GETUSER alice
            ACL SETUSER alice -@all +@hash +@string
            acl: ACL GETUSER alice
            ACL SETUSER alice reset
            acl: ACL GETUSER alice
            ACL SETUSER alice %X~x
            ACL SETUSER alice %RR~x
            ACL SETUSER 'bad name'
            ACL SETUSER bob on nopass +@all ~* &*
            ACL USERS
            acl: ACL LIST
            ACL DELUSER bob nosuch
            ACL DELUSER default
            ACL DELUSER
            ACL USERS
            ACL GETUSER nosuch
            ACL CAT
            unordered: ACL CAT hash
            unordered: ACL CAT dangerous
            ACL CAT nosuch
            ACL CAT a b
            shape: ACL GENPASS
            shape: ACL GENPASS 5
            ACL GENPASS 0
            ACL GENPASS 5000
            ACL GENPASS x
            ACL LOAD
            ACL SAVE
            ACL NOSUCH
            ACL
            ACL WHOAMI extra
            ",
        );
    });
}

#[test]
fn dryrun_says_what_a_user_may_do() {
    differential(|d| {
        d.script("dryrun");
        d.run(
            r"
            ACL SETUSER alice on nopass ~cache:* %R~ro:* &news.* +@read +set +publish +config|get
            ACL DRYRUN alice GET cache:1
            ACL DRYRUN alice GET other
            ACL DRYRUN alice SET ro:1 x
            ACL DRYRUN alice GET ro:1
            ACL DRYRUN alice SET cache:1 x
            ACL DRYRUN alice KEYS *
            ACL DRYRUN alice CONFIG GET maxmemory
            ACL DRYRUN alice CONFIG SET maxmemory 0
            ACL DRYRUN alice PUBLISH news.1 x
            ACL DRYRUN alice PUBLISH other x
            ACL DRYRUN alice MGET cache:1 ro:2 other
            ACL DRYRUN alice SET cache:1 x GET
            ACL DRYRUN nosuch GET x
            ACL DRYRUN alice NOSUCH x
            ACL DRYRUN alice GET
            ACL DRYRUN alice
            ",
        );
    });
}

#[test]
fn a_matrix_of_users_commands_keys_and_channels() {
    differential(|d| {
        d.script("matrix");
        d.run(
            r"
            SET cache:1 c
            SET ro:1 r
            SET wo:1 w
            SET other o
            ACL SETUSER reader on >r ~cache:* %R~ro:* %W~wo:* +@read +@write -flushall -flushdb &news.*
            ACL SETUSER pub on >p resetkeys &news.* &exact +publish +subscribe +psubscribe +ping
            ACL SETUSER first on >f -@all +select|0 +get ~*
            ACL SETUSER off off >x +@all ~*
            ACL SETUSER free on nopass +@all ~* &*
            @1 AUTH reader r
            @1 GET cache:1
            @1 GET other
            @1 SET cache:1 x
            @1 SET ro:1 x
            @1 GET ro:1
            @1 GET wo:1
            @1 SET wo:1 x
            @1 APPEND wo:1 x
            @1 COPY ro:1 wo:2
            @1 COPY wo:1 ro:2
            @1 RENAME cache:1 cache:2
            @1 MGET cache:2 ro:1
            @1 MGET cache:2 other
            @1 unordered: KEYS *
            @1 FLUSHALL
            @1 CONFIG GET maxmemory
            @1 ACL WHOAMI
            @1 PING
            @1 MULTI
            @1 GET cache:2
            @1 GET other
            @1 EXEC
            @1 MULTI
            @1 GET cache:2
            @1 EXEC
            @1 EVAL 'return redis.call(\'get\', KEYS[1])' 1 cache:2
            @1 EVAL 'return redis.call(\'get\', KEYS[1])' 1 other
            @1 EVAL 'return redis.pcall(\'flushall\')' 0
            @2 AUTH pub p
            @2 PUBLISH news.1 x
            @2 PUBLISH exact x
            @2 PUBLISH other x
            @2 GET cache:1
            @2 PING
            @3 AUTH first f
            @3 CONFIG NOSUCH x
            @3 CONFIG GET maxmemory
            @3 SELECT 0
            @3 SELECT 1
            @3 GET other
            @3 SET other x
            @4 AUTH off x
            @4 AUTH nosuch x
            @4 AUTH free anything
            @4 ACL WHOAMI
            @4 AUTH reader wrong
            @4 ACL WHOAMI
            @4 HELLO 3 AUTH reader wrong
            @4 ACL WHOAMI
            @5 AUTH x
            @5 AUTH a b c
            ",
        );
    });
}

#[test]
fn subscribing_is_checked_against_channel_patterns() {
    differential(|d| {
        d.script("subscribe");
        d.run(
            r"
            ACL SETUSER sub on >s resetkeys &news.* &lit* +subscribe +psubscribe +ping
            @1 AUTH sub s
            @1 SUBSCRIBE other
            @1 PSUBSCRIBE other*
            @1 PSUBSCRIBE news.*
            @1 PSUBSCRIBE lit*
            @1 SUBSCRIBE news.a
            ",
        );
    });
}

#[test]
fn requirepass_is_the_default_users_password() {
    differential(|d| {
        d.script("requirepass");
        d.run(
            r"
            AUTH x
            ACL GETUSER default
            @1 PING
            @2 PING
            CONFIG SET requirepass pw
            ACL GETUSER default
            @1 GET k
            @1 AUTH wrong
            @1 AUTH pw
            @1 GET k
            @2 AUTH default pw
            @2 ACL WHOAMI
            CONFIG SET requirepass ''
            ACL GETUSER default
            ",
        );
    });
}

/// The id of connection `c` (CLIENT ID).
fn client_id(c: &mut common::Raw) -> i64 {
    match c.cmd(&["CLIENT", "ID"]) {
        common::Reply::Int(id) => id,
        other => panic!("CLIENT ID answered {other:?}"),
    }
}

/// Whether the server still lists connection `id` (CLIENT LIST, asked on `admin`): a closed
/// client leaves the list at once.
fn listed(admin: &mut common::Raw, id: i64) -> bool {
    let text = match admin.cmd(&["CLIENT", "LIST"]) {
        common::Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        common::Reply::Verbatim(t) => t,
        other => panic!("CLIENT LIST answered {other:?}"),
    };
    let needle = format!("id={id} ");
    text.lines().any(|l| l.starts_with(&needle))
}

/// `r` without the fields whose values depend on the moment and the connection.
fn without_age_and_client(r: common::Reply) -> common::Reply {
    use common::Reply;
    let keep =
        |k: &Reply| !matches!(k, Reply::Bulk(b) if b == b"age-seconds" || b == b"client-info");
    match r {
        Reply::Array(items)
            if items
                .iter()
                .all(|i| matches!(i, Reply::Array(_) | Reply::Map(_))) =>
        {
            Reply::Array(items.into_iter().map(without_age_and_client).collect())
        }
        Reply::Array(flat) => Reply::Array(
            flat.chunks(2)
                .filter(|kv| keep(&kv[0]))
                .flat_map(|kv| kv.to_vec())
                .collect(),
        ),
        Reply::Map(pairs) => Reply::Map(pairs.into_iter().filter(|(k, _)| keep(k)).collect()),
        other => other,
    }
}

#[test]
fn the_acl_log_records_denials_as_redis_does() {
    differential(|d| {
        d.script("log");
        d.run(
            r"
            ACL SETUSER alice on >a ~cache:* &news.* +get +publish +multi +exec
            @1 AUTH alice a
            @1 GET other
            @1 GET other
            @1 SET cache:1 x
            @1 PUBLISH other x
            @1 MULTI
            @1 SET x 1
            @1 EXEC
            @2 AUTH alice wrong
            @2 AUTH nosuch x
            ACL LOG 0
            ACL LOG x
            ACL LOG 1 2
            ",
        );
        let (redis, cask) = d.exchange(0, &[b"ACL", b"LOG"]);
        assert_eq!(without_age_and_client(cask), without_age_and_client(redis));
        let (redis, cask) = d.exchange(0, &[b"ACL", b"LOG", b"2"]);
        assert_eq!(without_age_and_client(cask), without_age_and_client(redis));
        d.run("ACL LOG RESET\nACL LOG");
    });
}

#[test]
fn users_come_from_the_aclfile_and_go_back_to_it() {
    use common::Reply;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.acl");
    std::fs::write(
        &file,
        "# users\nuser default on nopass ~* &* +@all\nuser app on >apppw ~app:* resetchannels -@all +get +set\n",
    )
    .unwrap();
    let path = file.clone();
    let server = common::start_with(&dir.path().join("data"), move |c| {
        c.aclfile = Some(path.clone());
    });
    let mut c = common::Raw::connect(server.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "aclfile"]),
        Reply::Array(vec![
            Reply::Bulk(b"aclfile".to_vec()),
            Reply::Bulk(file.display().to_string().into_bytes()),
        ])
    );
    let app_id = client_id(&mut c);
    assert_eq!(c.cmd(&["AUTH", "app", "apppw"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["SET", "app:1", "x"]), Reply::Simple("OK".into()));
    assert!(matches!(c.cmd(&["SET", "other", "x"]), Reply::Error(e) if e.starts_with("NOPERM")));
    let mut admin = common::Raw::connect(server.addr);
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "ops", "on", ">opspw", "+@all", "~*"]),
        Reply::Simple("OK".into())
    );
    assert_eq!(admin.cmd(&["ACL", "SAVE"]), Reply::Simple("OK".into()));
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("user ops on #"), "{saved}");
    assert!(saved.contains("user app on #"), "{saved}");
    // The file is the truth again after a LOAD: a user added since is gone…
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "temp", "on", ">tp", "+@all"]),
        Reply::Simple("OK".into())
    );
    let mut temp = common::Raw::connect(server.addr);
    assert_eq!(
        temp.cmd(&["AUTH", "temp", "tp"]),
        Reply::Simple("OK".into())
    );
    let temp_id = client_id(&mut temp);
    assert_eq!(admin.cmd(&["ACL", "LOAD"]), Reply::Simple("OK".into()));
    assert!(
        !listed(&mut admin, temp_id),
        "a removed user's connection is closed"
    );
    assert_eq!(
        admin.cmd(&["ACL", "USERS"]),
        Reply::Array(vec![
            Reply::Bulk(b"app".to_vec()),
            Reply::Bulk(b"default".to_vec()),
            Reply::Bulk(b"ops".to_vec()),
        ])
    );
    // …and a file with a bad line is refused whole, the users kept.
    std::fs::write(&file, "user app on +nosuch\n").unwrap();
    assert!(matches!(admin.cmd(&["ACL", "LOAD"]), Reply::Error(_)));
    assert!(matches!(admin.cmd(&["ACL", "USERS"]), Reply::Array(u) if u.len() == 3));
    // Deleting a user closes its connections.
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "app"]), Reply::Int(1));
    assert!(!listed(&mut admin, app_id), "app's connection is closed");
    assert!(
        matches!(admin.cmd(&["CLIENT", "INFO"]), Reply::Bulk(b) if String::from_utf8_lossy(&b).contains(" user=default ")),
    );
    server.stop();
}

#[test]
fn exec_checks_queued_commands_against_the_rules_of_its_time() {
    differential(|d| {
        d.script("exec re-check");
        d.run(
            r"
            ACL SETUSER u on >p +@all ~*
            ACL SETUSER low on >l +get +exec +multi +auth ~*
            @1 AUTH u p
            @1 MULTI
            @1 SET k v
            @1 GET k
            ACL SETUSER u -set
            @1 EXEC
            @2 MULTI
            @2 AUTH low l
            @2 SET k2 v
            @2 GET k2
            @2 EXEC
            @2 ACL WHOAMI
            ",
        );
        let (redis, cask) = d.exchange(0, &[b"ACL", b"LOG", b"2"]);
        assert_eq!(without_age_and_client(cask), without_age_and_client(redis));
    });
}

#[test]
fn a_subscriber_whose_channels_are_taken_away_is_closed() {
    use common::Reply;
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_with(dir.path(), |_| {});
    let mut admin = common::Raw::connect(server.addr);
    assert_eq!(
        admin.cmd(&[
            "ACL", "SETUSER", "sub", "on", ">s", "&news.*", "&other", "+@all"
        ]),
        Reply::Simple("OK".into())
    );
    let mut news = common::Raw::connect(server.addr);
    assert_eq!(news.cmd(&["AUTH", "sub", "s"]), Reply::Simple("OK".into()));
    let news_id = client_id(&mut news);
    news.cmd(&["SUBSCRIBE", "news.a"]);
    let mut other = common::Raw::connect(server.addr);
    assert_eq!(other.cmd(&["AUTH", "sub", "s"]), Reply::Simple("OK".into()));
    let other_id = client_id(&mut other);
    other.cmd(&["SUBSCRIBE", "other"]);
    // `news.*` goes: its subscriber is closed; the one on `other` stays.
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "sub", "resetchannels", "&other"]),
        Reply::Simple("OK".into())
    );
    assert!(
        !listed(&mut admin, news_id),
        "the news subscriber is closed"
    );
    assert!(listed(&mut admin, other_id), "the other subscriber stays");
    assert_eq!(admin.cmd(&["PUBLISH", "other", "still"]), Reply::Int(1));
    server.stop();
}

#[test]
fn a_password_guessed_at_thousands_of_times_a_second_stays_refused_and_others_are_served() {
    const GUESSES: usize = 5_000;
    common::diff::on_both(|addr| {
        let mut seen = Vec::new();
        let mut admin = common::Raw::connect(addr);
        seen.push(format!(
            "{:?}",
            admin.cmd(&["ACL", "SETUSER", "alice", "on", ">right", "+@all", "~*"])
        ));
        // One client pipelines thousands of wrong passwords from a thread, reading the replies
        // only at the end; a healthy client is served meanwhile.
        let guesser = std::thread::spawn(move || {
            let mut c = common::Raw::connect(addr);
            let mut bytes = Vec::new();
            for i in 0..GUESSES {
                bytes.extend(common::encode(&["AUTH", "alice", &format!("guess{i}")]));
            }
            c.send_bytes(&bytes);
            let mut refused = 0;
            for _ in 0..GUESSES {
                match c.read() {
                    common::Reply::Error(e) if e.starts_with("WRONGPASS") => refused += 1,
                    other => panic!("a wrong password answered {other:?}"),
                }
            }
            refused
        });
        let mut healthy = common::Raw::connect(addr);
        for i in 0..200 {
            let key = format!("k{i}");
            assert_eq!(
                healthy.cmd(&["SET", &key, "v"]),
                common::Reply::Simple("OK".into())
            );
        }
        seen.push(format!("refused: {}", guesser.join().unwrap()));
        seen.push(format!("{:?}", healthy.cmd(&["DBSIZE"])));
        // One ACL LOG entry, counting them all; then the right password still works.
        seen.push(format!(
            "{:?}",
            without_age_and_client(admin.cmd(&["ACL", "LOG"]))
        ));
        seen.push(format!("{:?}", healthy.cmd(&["AUTH", "alice", "right"])));
        seen
    });
}
