//! The `caskdb` command-line contract.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use predicates::prelude::*;
use predicates::str::contains;

fn caskdb(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("caskdb").unwrap();
    cmd.env_remove("CASKDB_DIR").arg("--dir").arg(dir);
    cmd
}

/// `caskdb --dir DIR args…`, asserted to exit with `code`.
fn exits(dir: &Path, args: &[&str], code: i32) -> Assert {
    caskdb(dir).args(args).assert().code(code)
}

/// `caskdb --dir DIR args…`, asserted to exit with `code` and to print exactly `stdout`.
fn prints(dir: &Path, args: &[&str], code: i32, stdout: &str) -> Assert {
    exits(dir, args, code).stdout(stdout.to_string())
}

const NOT_FOUND: &str = "Key not found\n";

/// `caskdb --dir DIR args…` must fail (exit 1, nothing on stdout) with one line on stderr,
/// holding each of `words`.
fn fails_in_one_line(dir: &Path, args: &[&str], words: &[&str]) {
    let out = prints(dir, args, 1, "").get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for word in words {
        assert!(stderr.contains(word), "{word:?} in {stderr}");
    }
}

#[test]
fn set_get_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    prints(d, &["set", "foo", "bar"], 0, "").stderr("");
    prints(d, &["get", "foo"], 0, "bar\n");
    prints(d, &["set", "foo", "baz"], 0, "");
    prints(d, &["get", "foo"], 0, "baz\n");
    prints(d, &["remove", "foo"], 0, "");
    prints(d, &["get", "foo"], 0, NOT_FOUND);
}

#[test]
fn get_of_a_missing_key_prints_key_not_found_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    prints(dir.path(), &["get", "nope"], 0, NOT_FOUND);
}

#[test]
fn remove_of_a_missing_key_prints_key_not_found_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    prints(d, &["remove", "nope"], 1, NOT_FOUND);
    exits(d, &["set", "k", "v"], 0);
    prints(d, &["rm", "k"], 0, "");
    prints(d, &["rm", "k"], 1, NOT_FOUND);
}

#[test]
fn empty_values_and_values_with_spaces() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    exits(d, &["set", "e", ""], 0);
    prints(d, &["get", "e"], 0, "\n");
    exits(d, &["set", "s", "hello big world"], 0);
    prints(d, &["get", "s"], 0, "hello big world\n");
}

#[test]
fn the_empty_key_is_a_key_as_in_redis() {
    // The command line shares the server's keyspace, where "" is a key like any other.
    let dir = tempfile::tempdir().unwrap();
    prints(dir.path(), &["set", "", "v"], 0, "");
    prints(dir.path(), &["get", ""], 0, "v\n");
}

#[cfg(unix)]
#[test]
fn non_utf8_keys_and_values_are_stored_and_printed_as_raw_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let key = OsStr::from_bytes(&[0xff, b'k']);
    let value = OsStr::from_bytes(&[0xfe, 0x80, b'v']);
    caskdb(dir.path())
        .arg("set")
        .arg(key)
        .arg(value)
        .assert()
        .success();
    caskdb(dir.path())
        .arg("get")
        .arg(key)
        .assert()
        .success()
        .stdout(predicate::eq(&[0xfe, 0x80, b'v', b'\n'][..]));
}

#[test]
fn wrong_arity_and_unknown_commands_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["set", "k"][..],
        &["set", "k", "v", "extra"],
        &["get"],
        &["get", "a", "b"],
        &["remove"],
        &["frobnicate", "k"],
        &[],
    ] {
        prints(dir.path(), args, 2, "").stderr(contains("Usage:"));
    }
    // nothing was created by a usage error
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn help_and_version() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path()).arg("--help").assert().success().stdout(
        contains("set")
            .and(contains("get"))
            .and(contains("remove"))
            .and(contains("--dir")),
    );
    let version = format!("caskdb {}\n", env!("CARGO_PKG_VERSION"));
    prints(dir.path(), &["--version"], 0, &version);
}

#[test]
fn the_directory_defaults_to_caskdb_data_or_caskdb_dir() {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("caskdb").unwrap();
    cmd.env_remove("CASKDB_DIR")
        .current_dir(cwd.path())
        .args(["set", "a", "1"])
        .assert()
        .success();
    assert!(cwd.path().join("caskdb-data").is_dir());
    let mut cmd = Command::cargo_bin("caskdb").unwrap();
    cmd.env_remove("CASKDB_DIR")
        .current_dir(cwd.path())
        .args(["get", "a"])
        .assert()
        .stdout("1\n");

    let other = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("caskdb").unwrap();
    cmd.env("CASKDB_DIR", other.path())
        .args(["set", "b", "2"])
        .assert()
        .success();
    prints(other.path(), &["get", "b"], 0, "2\n");
    prints(other.path(), &["get", "a"], 0, NOT_FOUND);
}

#[test]
fn a_locked_directory_gives_one_clear_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let db = caskdb::Db::open(dir.path()).unwrap();
    db.put("k", "v").unwrap();
    let shown = dir.path().display().to_string();
    fails_in_one_line(dir.path(), &["get", "k"], &["locked", &shown]);
    drop(db);
    prints(dir.path(), &["get", "k"], 0, "v\n");
}

#[test]
fn what_a_dropped_db_wrote_is_seen_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = caskdb::Options::default()
        .sync(caskdb::SyncPolicy::Never)
        .open(dir.path())
        .unwrap();
    for i in 0..100 {
        db.put(format!("k{i}"), format!("v{i}")).unwrap();
    }
    drop(db);
    for i in [0, 57, 99] {
        let (key, value) = (format!("k{i}"), format!("v{i}\n"));
        prints(dir.path(), &["get", &key], 0, &value);
    }
}

#[test]
fn a_corrupt_directory_gives_one_clear_line_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let db = caskdb::Options::default()
        .data_file_size(512)
        .open(dir.path())
        .unwrap();
    for i in 0..50 {
        db.put(format!("key{i}"), "some value bytes").unwrap();
    }
    drop(db);
    let first = dir.path().join("0000000001.data");
    let mut bytes = fs::read(&first).unwrap();
    bytes[16 + 6] ^= 0x10; // inside the first record
    fs::write(&first, bytes).unwrap();
    let words = ["corrupted", "0000000001.data", "offset 16"];
    fails_in_one_line(dir.path(), &["get", "key1"], &words);
}

#[test]
fn stats_reports_keys_and_files() {
    let dir = tempfile::tempdir().unwrap();
    for (k, v) in [("a", "1"), ("a", "2"), ("b", "3")] {
        exits(dir.path(), &["set", k, v], 0);
    }
    exits(dir.path(), &["stats"], 0).stdout(
        contains("keys          2")
            .and(contains("data files    1"))
            .and(contains("(active)")),
    );
}

#[test]
fn merge_reclaims_space_and_keeps_values() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        for k in 0..20 {
            exits(
                dir.path(),
                &["set", &format!("k{k}"), &format!("v{round}")],
                0,
            );
        }
    }
    exits(dir.path(), &["rm", "k0"], 0);
    exits(dir.path(), &["merge"], 0)
        .stdout(contains("merged 1 files").and(contains("19 records copied")))
        .stderr(""); // not a terminal: no progress bar
    exits(dir.path(), &["stats"], 0)
        .stdout(contains("keys          19").and(contains("dead bytes    0 (0.0%)")));
    prints(dir.path(), &["get", "k7"], 0, "v4\n");
    prints(dir.path(), &["get", "k0"], 0, NOT_FOUND);
}

fn fruit(dir: &Path) {
    for k in ["apple", "apricot", "banana", "cherry"] {
        exits(dir, &["set", k, &format!("v-{k}")], 0);
    }
}

#[test]
fn scan_by_prefix_range_reverse_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    fruit(dir.path());
    let d = dir.path();
    let all = "apple\tv-apple\napricot\tv-apricot\nbanana\tv-banana\ncherry\tv-cherry\n";
    prints(d, &["scan"], 0, all);
    let ap = "apple\tv-apple\napricot\tv-apricot\n";
    prints(d, &["scan", "--prefix", "ap"], 0, ap);
    let range = "apricot\tv-apricot\nbanana\tv-banana\n";
    prints(
        d,
        &["scan", "--start", "apricot", "--end", "cherry"],
        0,
        range,
    );
    let last_two = "cherry\tv-cherry\nbanana\tv-banana\n";
    prints(d, &["scan", "--reverse", "--limit", "2"], 0, last_two);
    let both = &["scan", "--prefix", "a", "--start", "b"];
    exits(d, both, 2).stderr(contains("cannot be used with"));
}

#[test]
fn set_with_ttl_and_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    exits(d, &["set", "t", "v", "--ttl", "100"], 0);
    exits(d, &["set", "p", "v"], 0);
    let out = exits(d, &["ttl", "t"], 0).get_output().clone();
    let secs: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((99..=100).contains(&secs), "{secs}");
    prints(d, &["ttl", "p"], 0, "no expiry\n");
    prints(d, &["ttl", "nope"], 0, NOT_FOUND);
    exits(d, &["set", "gone", "v", "--ttl", "0"], 0);
    prints(d, &["get", "gone"], 0, NOT_FOUND);
}

#[cfg(unix)]
#[test]
fn export_then_import_round_trips_binary_keys_and_values() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    fruit(dir.path());
    caskdb(dir.path())
        .arg("set")
        .arg(OsStr::from_bytes(&[0xff, 0xfe]))
        .arg(OsStr::from_bytes(&[0x80, b'\t', b'\n']))
        .assert()
        .success();
    let exported = exits(dir.path(), &["export"], 0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(exported.clone()).unwrap();
    assert_eq!(text.lines().count(), 5);
    // One line per key of the server's keyspace, binary bytes in base64.
    assert!(
        text.contains(r#"{"db":0,"key":"apple","type":"string","value":"v-apple"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"{"db":0,"key_base64":"//4=","type":"string","value_base64":"gAkK"}"#),
        "{text}"
    );
    let other = tempfile::tempdir().unwrap();
    caskdb(other.path())
        .arg("import")
        .write_stdin(exported.clone())
        .assert()
        .success()
        .stdout("imported 5 keys\n");
    exits(other.path(), &["export"], 0).stdout(exported);
    caskdb(other.path())
        .arg("get")
        .arg(OsStr::from_bytes(&[0xff, 0xfe]))
        .assert()
        .stdout(predicate::eq(&[0x80, b'\t', b'\n', b'\n'][..]));
}

#[test]
fn import_names_the_bad_line_and_what_came_before() {
    for (input, line, why) in [
        (
            "{\"key\":\"a\",\"value\":\"1\"}\nnot json\n",
            "line 2",
            "not valid JSON",
        ),
        (
            "{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"value_base64\":\"!!\"}\n",
            "line 2",
            "base64",
        ),
        // Refused when stored, not when read: a set holds a member once.
        (
            "{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"type\":\"set\",\"value\":[\"x\",\"x\"]}\n",
            "line 2",
            "twice",
        ),
        (
            "{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"type\":\"list\",\"value\":[\"x\",\n",
            "line 2",
            "EOF",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        caskdb(dir.path())
            .arg("import")
            .write_stdin(input)
            .assert()
            .code(1)
            .stdout("")
            .stderr(
                contains(line)
                    .and(contains(why))
                    .and(contains("1 key imported before it")),
            );
        // The lines before the bad one are imported; nothing of the bad one.
        prints(dir.path(), &["get", "a"], 0, "1\n");
        prints(dir.path(), &["get", "b"], 0, NOT_FOUND);
    }
}

#[test]
fn backup_makes_a_directory_that_opens_with_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    fruit(dir.path());
    let dest = tempfile::tempdir().unwrap().path().join("copy");
    let backup = ["backup", dest.to_str().unwrap()];
    prints(dir.path(), &backup, 0, "");
    prints(&dest, &["get", "banana"], 0, "v-banana\n");
    exits(dir.path(), &backup, 1).stderr(contains("not empty"));
}

#[test]
fn check_reports_damage_and_repair_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    fruit(dir.path());
    let d = dir.path();
    exits(d, &["check"], 0).stdout(contains("1 data files, 4 records").and(contains("0 problems")));
    let file = dir.path().join("0000000001.data");
    let mut bytes = fs::read(&file).unwrap();
    bytes[16 + 8] ^= 0x01; // inside the first record
    fs::write(&file, bytes).unwrap();
    let damage = contains("0000000001.data at offset 16").and(contains("1 problems"));
    exits(d, &["check"], 1).stdout(damage);
    exits(d, &["check", "--repair"], 0).stdout(contains("repaired"));
    prints(d, &["get", "apple"], 0, NOT_FOUND);
    prints(d, &["get", "cherry"], 0, "v-cherry\n");
    // and it refuses a database in use
    let db = caskdb::Db::open(dir.path()).unwrap();
    exits(d, &["check"], 1).stderr(contains("locked"));
    drop(db);
}

#[test]
fn completions_for_each_shell_name_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = exits(dir.path(), &["completions", shell], 0)
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).unwrap();
        for word in ["serve", "scan", "db"] {
            assert!(text.contains(word), "{word} in the {shell} script");
        }
    }
    exits(dir.path(), &["completions", "nosuchshell"], 2);
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..50_000)
        .map(|i| {
            format!("{{\"db\":0,\"key\":\"key{i:05}\",\"type\":\"string\",\"value\":\"{i}\"}}\n")
        })
        .collect();
    caskdb(dir.path())
        .arg("import")
        .write_stdin(lines)
        .assert()
        .success();
    // `caskdb scan | head -1`: the reader closes the pipe after one line.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("caskdb"))
        .env_remove("CASKDB_DIR")
        .arg("--dir")
        .arg(dir.path())
        .arg("scan")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first, "key00000\t0\n");
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(out.status.success(), "{:?}", out.status);
}
