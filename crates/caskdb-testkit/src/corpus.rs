//! Replaying the fuzz corpora (`fuzz/corpus/<target>`) as ordinary tests.

use std::path::{Path, PathBuf};

/// Runs `run` on every input of the repository's `fuzz/corpus/<target>`, as the corpus replay
/// tests of this crate and the server do. Panics if the corpus has fewer than `min` inputs, so
/// that a missing or emptied corpus cannot pass silently, and names the input that failed.
pub fn replay_corpus(target: &str, min: usize, run: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "{}: {} inputs, expected at least {min}",
        dir.display(),
        files.len()
    );
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data))) {
            eprintln!("fuzz corpus input failed: {}", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}
