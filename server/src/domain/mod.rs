//! Platform-neutral domain types: what the services and the admin API work with.
//! Storage maps its rows into these; HTTP serialises them. Secrets never appear here
//! in clear: a device says whether it has an unlock token, not what it is.

pub mod command;
pub mod device;
pub mod enrollment;
pub mod event;
pub mod incident;

pub use command::{CommandRecord, CommandStatus, NewCommand};
pub use device::{Device, DeviceFilter, Platform};
pub use event::{Event, EventFilter, NewEvent};

use serde::Serialize;

/// One page of a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}
