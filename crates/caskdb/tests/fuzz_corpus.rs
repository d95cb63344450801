//! Replays the fuzz corpora in `fuzz/corpus/` (`record`, `hint`, `ops`) through the test kit's
//! harnesses (`caskdb_testkit::fuzz`), so every input the fuzzer kept — and every crash it
//! found, which stays in the corpus — is checked again on stable, in CI, without cargo-fuzz.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use caskdb_testkit::corpus::replay_corpus as replay;
use caskdb_testkit::fuzz;

#[test]
fn record_corpus() {
    replay("record", 100, fuzz::record);
}

#[test]
fn hint_corpus() {
    replay("hint", 40, fuzz::hint);
}

#[test]
fn ops_corpus() {
    replay("ops", 200, fuzz::ops);
}
