//! Runs every workload at toy sizes on the engines built by default, so the benchmark program
//! cannot rot: each engine must answer every read correctly and the report must be written.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

#[test]
fn every_workload_runs_and_writes_its_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_caskdb-bench"))
        .args([
            "--engines",
            "caskdb,redb,fjall,sled",
            "--keys",
            "2000",
            "--durable-ops",
            "40",
            "--large-bytes",
            "262144",
            "--short-scans",
            "50",
            "--overwrite-keys",
            "500",
            "--overwrite-passes",
            "2",
            "--reopen-keys",
            "3000",
            // sled is left out of reopen by default (memory at 10M keys); at toy size it runs
            "--reopen-engines",
            "caskdb,redb,fjall,sled",
        ])
        .arg("--dir")
        .arg(dir.path().join("data"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run caskdb-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed:\n{stdout}\n{stderr}");

    for workload in [
        "| fill |",
        "| read |",
        "| read-absent |",
        "| scan-full |",
        "| scan-short |",
        "| mixed-4t |",
        "| durable-1t |",
        "| durable-8t |",
        "| put-4KiB |",
        "| get-64KiB |",
        "| overwrite |",
        "| disk-after-compaction |",
        "| reopen |",
    ] {
        for engine in ["caskdb", "redb", "fjall", "sled"] {
            let row = format!("{workload} {engine} |");
            assert!(stdout.contains(&row), "no row `{row}` in:\n{stdout}");
        }
    }
    let results = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    assert!(results.contains("| fill | caskdb |"), "{results}");
    for chart in [
        "fill",
        "read",
        "scan",
        "mixed",
        "durable",
        "large",
        "overwrite",
        "reopen",
    ] {
        let svg = std::fs::read_to_string(out.join(format!("{chart}.svg")))
            .unwrap_or_else(|e| panic!("{chart}.svg: {e}"));
        assert!(svg.starts_with("<svg"), "{chart}.svg is not an SVG");
        assert!(svg.contains("caskdb"), "{chart}.svg has no caskdb bar");
    }
    // Every store directory was removed.
    assert!(
        !dir.path().join("data").exists()
            || std::fs::read_dir(dir.path().join("data"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn rocksdb_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "rocksdb") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_caskdb-bench"))
        .args(["fill", "--engines", "rocksdb", "--keys", "10"])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("run caskdb-bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--features rocksdb"), "{stderr}");
}
