//! Replays the fuzz corpora in `fuzz/corpus/` (`record`, `hint`, `ops`) through
//! `caskdb::fuzzing`, so every input the fuzzer kept — and every crash it found, which stays in
//! the corpus — is checked again on stable, in CI, without cargo-fuzz.

use caskdb::fuzzing::replay_corpus as replay;

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
