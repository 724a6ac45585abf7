#![recursion_limit = "256"]
//! The `mdm` server: configuration, storage, services, HTTP and the CLI.
//!
//! Requests flow HTTP adapter -> service -> storage trait; see docs/architecture.md.

pub mod android;
pub mod cache;
pub mod cli;
pub mod config;
pub mod console;
pub mod directory;
pub mod domain;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod plist_json;
pub mod push;
pub mod serve;
pub mod services;
pub mod storage;
pub mod tls;
pub mod trust_roots;
