//! Fuzz target: see `caskdb_server::fuzzing::resp` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| caskdb_server::fuzzing::resp(data));
