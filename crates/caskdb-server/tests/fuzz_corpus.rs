//! Replays the fuzz corpus in `fuzz/corpus/resp` through `caskdb_server::fuzzing`, so every
//! input the fuzzer kept — and every crash it found, which stays in the corpus — is checked
//! again on stable, in CI, without cargo-fuzz.

use std::path::{Path, PathBuf};

/// Corpus inputs that fail because of a known, still open bug: (file name, the bug). Remove an
/// entry once its bug is fixed.
const SKIP: &[(&str, &str)] = &[];

#[test]
fn resp_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/resp");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // A missing or emptied corpus must not pass silently.
    assert!(
        files.len() >= 100,
        "{}: only {} inputs",
        dir.display(),
        files.len()
    );
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        if SKIP.iter().any(|&(n, _)| n == name) {
            continue;
        }
        let data = std::fs::read(path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| caskdb_server::fuzzing::resp(&data)) {
            eprintln!("fuzz corpus input failed: {}", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}
