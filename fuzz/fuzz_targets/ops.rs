//! Fuzz target: see `caskdb_testkit::fuzz::ops` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| caskdb_testkit::fuzz::ops(data));
