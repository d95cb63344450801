//! Fuzz target: see `caskdb::fuzzing::record` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| caskdb::fuzzing::record(data));
