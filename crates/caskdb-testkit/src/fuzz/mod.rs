//! The engine's fuzz harnesses. Each takes arbitrary bytes and returns normally for every
//! input; a panic is a finding: the engine broke an invariant asserted here, or disagreed with
//! the reference these harnesses keep (a plain replay of the record format, or the [`Model`]).
//! The targets in `fuzz/` call them; `crates/caskdb/tests/fuzz_corpus.rs` replays their corpora.
//!
//! [`Model`]: crate::model::Model

mod hint;
mod ops;
mod ops_env;
mod record;

pub use hint::hint;
pub use ops::ops;
pub use record::record;
