//! Replays the fuzz corpus in `fuzz/corpus/resp` through `caskdb_server::fuzzing`, so every
//! input the fuzzer kept — and every crash it found, which stays in the corpus — is checked
//! again on stable, in CI, without cargo-fuzz.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[test]
fn resp_corpus() {
    caskdb_testkit::corpus::replay_corpus("resp", 100, caskdb_server::fuzzing::resp);
}
