//! The `caskdb` command-line contract.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn caskdb(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("caskdb").unwrap();
    cmd.env_remove("CASKDB_DIR").arg("--dir").arg(dir);
    cmd
}

#[test]
fn set_get_remove() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path())
        .args(["set", "foo", "bar"])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    caskdb(dir.path())
        .args(["get", "foo"])
        .assert()
        .success()
        .stdout("bar\n");
    caskdb(dir.path())
        .args(["set", "foo", "baz"])
        .assert()
        .success()
        .stdout("");
    caskdb(dir.path())
        .args(["get", "foo"])
        .assert()
        .success()
        .stdout("baz\n");
    caskdb(dir.path())
        .args(["remove", "foo"])
        .assert()
        .success()
        .stdout("");
    caskdb(dir.path())
        .args(["get", "foo"])
        .assert()
        .success()
        .stdout("Key not found\n");
}

#[test]
fn get_of_a_missing_key_prints_key_not_found_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path())
        .args(["get", "nope"])
        .assert()
        .code(0)
        .stdout("Key not found\n");
}

#[test]
fn remove_of_a_missing_key_prints_key_not_found_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path())
        .args(["remove", "nope"])
        .assert()
        .code(1)
        .stdout("Key not found\n");
    caskdb(dir.path())
        .args(["set", "k", "v"])
        .assert()
        .success();
    caskdb(dir.path())
        .args(["rm", "k"])
        .assert()
        .code(0)
        .stdout("");
    caskdb(dir.path())
        .args(["rm", "k"])
        .assert()
        .code(1)
        .stdout("Key not found\n");
}

#[test]
fn empty_values_and_values_with_spaces() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path()).args(["set", "e", ""]).assert().success();
    caskdb(dir.path())
        .args(["get", "e"])
        .assert()
        .success()
        .stdout("\n");
    caskdb(dir.path())
        .args(["set", "s", "hello big world"])
        .assert()
        .success();
    caskdb(dir.path())
        .args(["get", "s"])
        .assert()
        .success()
        .stdout("hello big world\n");
}

#[test]
fn an_empty_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path())
        .args(["set", "", "v"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("caskdb: error: key is empty\n");
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
        caskdb(dir.path())
            .args(args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(contains("Usage:"));
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
    caskdb(dir.path())
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("caskdb {}\n", env!("CARGO_PKG_VERSION")));
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
    caskdb(other.path())
        .args(["get", "b"])
        .assert()
        .stdout("2\n");
    caskdb(other.path())
        .args(["get", "a"])
        .assert()
        .stdout("Key not found\n");
}

#[test]
fn a_locked_directory_gives_one_clear_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let db = caskdb::Db::open(dir.path()).unwrap();
    db.put("k", "v").unwrap();
    let out = caskdb(dir.path())
        .args(["get", "k"])
        .assert()
        .code(1)
        .stdout("")
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("locked"), "{stderr}");
    assert!(
        stderr.contains(&dir.path().display().to_string()),
        "{stderr}"
    );
    drop(db);
    caskdb(dir.path())
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("v\n");
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
        caskdb(dir.path())
            .args(["get", &format!("k{i}")])
            .assert()
            .success()
            .stdout(format!("v{i}\n"));
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
    let out = caskdb(dir.path())
        .args(["get", "key1"])
        .assert()
        .code(1)
        .stdout("")
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("corrupted"), "{stderr}");
    assert!(
        stderr.contains("0000000001.data") && stderr.contains("offset 16"),
        "{stderr}"
    );
}

#[test]
fn stats_reports_keys_and_files() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path())
        .args(["set", "a", "1"])
        .assert()
        .success();
    caskdb(dir.path())
        .args(["set", "a", "2"])
        .assert()
        .success();
    caskdb(dir.path())
        .args(["set", "b", "3"])
        .assert()
        .success();
    caskdb(dir.path()).arg("stats").assert().success().stdout(
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
            caskdb(dir.path())
                .args(["set", &format!("k{k}"), &format!("v{round}")])
                .assert()
                .success();
        }
    }
    caskdb(dir.path()).args(["rm", "k0"]).assert().success();
    caskdb(dir.path())
        .arg("merge")
        .assert()
        .success()
        .stdout(contains("merged 1 files").and(contains("19 records copied")))
        .stderr(""); // not a terminal: no progress bar
    caskdb(dir.path())
        .arg("stats")
        .assert()
        .success()
        .stdout(contains("keys          19").and(contains("dead bytes    0 (0.0%)")));
    caskdb(dir.path())
        .args(["get", "k7"])
        .assert()
        .stdout("v4\n");
    caskdb(dir.path())
        .args(["get", "k0"])
        .assert()
        .stdout("Key not found\n");
}

fn fruit(dir: &Path) {
    for k in ["apple", "apricot", "banana", "cherry"] {
        caskdb(dir)
            .args(["set", k, &format!("v-{k}")])
            .assert()
            .success();
    }
}

#[test]
fn scan_by_prefix_range_reverse_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    fruit(dir.path());
    caskdb(dir.path())
        .arg("scan")
        .assert()
        .success()
        .stdout("apple\tv-apple\napricot\tv-apricot\nbanana\tv-banana\ncherry\tv-cherry\n");
    caskdb(dir.path())
        .args(["scan", "--prefix", "ap"])
        .assert()
        .stdout("apple\tv-apple\napricot\tv-apricot\n");
    caskdb(dir.path())
        .args(["scan", "--start", "apricot", "--end", "cherry"])
        .assert()
        .stdout("apricot\tv-apricot\nbanana\tv-banana\n");
    caskdb(dir.path())
        .args(["scan", "--reverse", "--limit", "2"])
        .assert()
        .stdout("cherry\tv-cherry\nbanana\tv-banana\n");
    caskdb(dir.path())
        .args(["scan", "--prefix", "a", "--start", "b"])
        .assert()
        .code(2)
        .stderr(contains("cannot be used with"));
}

#[test]
fn set_with_ttl_and_ttl() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path())
        .args(["set", "t", "v", "--ttl", "100"])
        .assert()
        .success();
    caskdb(dir.path())
        .args(["set", "p", "v"])
        .assert()
        .success();
    let out = caskdb(dir.path())
        .args(["ttl", "t"])
        .assert()
        .success()
        .get_output()
        .clone();
    let secs: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((99..=100).contains(&secs), "{secs}");
    caskdb(dir.path())
        .args(["ttl", "p"])
        .assert()
        .success()
        .stdout("no expiry\n");
    caskdb(dir.path())
        .args(["ttl", "nope"])
        .assert()
        .success()
        .stdout("Key not found\n");
    caskdb(dir.path())
        .args(["set", "gone", "v", "--ttl", "0"])
        .assert()
        .success();
    caskdb(dir.path())
        .args(["get", "gone"])
        .assert()
        .stdout("Key not found\n");
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
    let exported = caskdb(dir.path())
        .arg("export")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(exported.clone()).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert!(
        text.contains(r#"{"key":"apple","value":"v-apple"}"#),
        "{text}"
    );
    assert!(
        text.contains("key_base64") && text.contains("value_base64"),
        "{text}"
    );
    let other = tempfile::tempdir().unwrap();
    caskdb(other.path())
        .arg("import")
        .write_stdin(exported.clone())
        .assert()
        .success()
        .stdout("imported 5 keys\n");
    caskdb(other.path())
        .arg("export")
        .assert()
        .success()
        .stdout(exported);
    caskdb(other.path())
        .arg("get")
        .arg(OsStr::from_bytes(&[0xff, 0xfe]))
        .assert()
        .stdout(predicate::eq(&[0x80, b'\t', b'\n', b'\n'][..]));
}

#[test]
fn import_names_the_bad_line_and_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    caskdb(dir.path())
        .arg("import")
        .write_stdin("{\"key\":\"a\",\"value\":\"1\"}\nnot json\n")
        .assert()
        .code(1)
        .stderr(contains("line 2").and(contains("0 keys imported before it")));
    caskdb(dir.path())
        .arg("import")
        .write_stdin("{\"key\":\"a\",\"value_base64\":\"!!\"}\n")
        .assert()
        .code(1)
        .stderr(contains("line 1").and(contains("base64")));
}

#[test]
fn backup_makes_a_directory_that_opens_with_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    fruit(dir.path());
    let dest = tempfile::tempdir().unwrap().path().join("copy");
    caskdb(dir.path())
        .arg("backup")
        .arg(&dest)
        .assert()
        .success()
        .stdout("");
    caskdb(&dest)
        .args(["get", "banana"])
        .assert()
        .stdout("v-banana\n");
    caskdb(dir.path())
        .arg("backup")
        .arg(&dest)
        .assert()
        .code(1)
        .stderr(contains("not empty"));
}

#[test]
fn check_reports_damage_and_repair_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    fruit(dir.path());
    caskdb(dir.path())
        .arg("check")
        .assert()
        .success()
        .stdout(contains("1 data files, 4 records").and(contains("0 problems")));
    let file = dir.path().join("0000000001.data");
    let mut bytes = fs::read(&file).unwrap();
    bytes[16 + 8] ^= 0x01; // inside the first record
    fs::write(&file, bytes).unwrap();
    caskdb(dir.path())
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains("0000000001.data at offset 16").and(contains("1 problems")));
    caskdb(dir.path())
        .args(["check", "--repair"])
        .assert()
        .success()
        .stdout(contains("repaired"));
    caskdb(dir.path())
        .args(["get", "apple"])
        .assert()
        .stdout("Key not found\n");
    caskdb(dir.path())
        .args(["get", "cherry"])
        .assert()
        .stdout("v-cherry\n");
    // and it refuses a database in use
    let db = caskdb::Db::open(dir.path()).unwrap();
    caskdb(dir.path())
        .arg("check")
        .assert()
        .code(1)
        .stderr(contains("locked"));
    drop(db);
}
