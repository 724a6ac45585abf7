//! Support for the malformed-input corpus test (tests/hostile_input.rs): seeded
//! mutation, hand-made hostile plists, raw HTTP for targets no URL library sends, the
//! server process's liveness and memory, and database snapshots to prove that a
//! refused request wrote nothing.

pub mod mutate;
pub mod plists;
pub mod process;
pub mod raw_http;
pub mod snapshot;
