//! Fuzz target: see `caskdb::fuzzing::hint` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| caskdb::fuzzing::hint(data));
