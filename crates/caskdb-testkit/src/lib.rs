//! What caskdb's tests, fuzz targets and benchmarks share, so that none keeps a copy:
//!
//! - [`rng`]: the seeded generator (SplitMix64);
//! - [`model`]: a plain model of the store (values, expiries, a clock) and state comparison;
//! - [`simfs`]: an in-memory file system that knows what a power loss keeps, with fault plans;
//! - [`faulty`]: fault injection over the real file system;
//! - [`corpus`]: replaying the fuzz corpora as tests;
//! - [`child`]: tests that kill a child process;
//! - [`fuzz`]: the fuzz harnesses of the engine (`fuzz/` runs them, the tests replay them).
//!
//! Not published; it depends on caskdb's `testing` feature.

pub mod child;
pub mod corpus;
pub mod faulty;
pub mod fuzz;
pub mod model;
pub mod rng;
pub mod simfs;
