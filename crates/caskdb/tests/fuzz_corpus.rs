//! Replays the fuzz corpora in `fuzz/corpus/` (`record`, `hint`, `ops`) through
//! `caskdb::fuzzing`, so every input the fuzzer kept — and every crash it found, which stays in
//! the corpus — is checked again on stable, in CI, without cargo-fuzz.

use std::path::{Path, PathBuf};

/// Runs `run` on every input of `fuzz/corpus/<target>`. Fails if the corpus has fewer than
/// `min` inputs, so that a missing or emptied corpus cannot pass silently. (The whole `ops`
/// corpus replays in about 2 s in a debug build, so no subset is needed.)
fn replay(target: &str, min: usize, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "{}: {} inputs, expected at least {min}",
        dir.display(),
        files.len()
    );
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            eprintln!("fuzz corpus input failed: {}", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn record_corpus() {
    replay("record", 100, caskdb::fuzzing::record);
}

#[test]
fn hint_corpus() {
    replay("hint", 40, caskdb::fuzzing::hint);
}

#[test]
fn ops_corpus() {
    replay("ops", 200, caskdb::fuzzing::ops);
}
