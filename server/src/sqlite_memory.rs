//! SQLite allocates from the binary's allocator (mimalloc) instead of libc's.
//!
//! SQLite's C code calls libc's `malloc` and `free` whatever Rust's global allocator
//! is. In a profile of the command cycle (docs/benchmarks.md) that was a sixth of the
//! SQLite writer's thread: glibc's bins and consolidation, its heap trimming (with TLB
//! shootdowns to the other core), and SQLite's own lock around every allocation, which
//! it takes to keep memory statistics nobody here reads. SQLite lets the application
//! replace its allocator and drop the statistics, once, before it is first used.

use libmimalloc_sys::{mi_free, mi_malloc, mi_realloc, mi_usable_size};
use rusqlite::ffi;
use std::ffi::{c_int, c_void};

// SQLite asks for positive sizes only and frees only what these returned.
unsafe extern "C" fn allocate(size: c_int) -> *mut c_void {
    unsafe { mi_malloc(size as usize) }
}

unsafe extern "C" fn free(p: *mut c_void) {
    unsafe { mi_free(p) }
}

unsafe extern "C" fn reallocate(p: *mut c_void, size: c_int) -> *mut c_void {
    unsafe { mi_realloc(p, size as usize) }
}

/// What an allocation can hold (at least what was asked), as glibc's
/// `malloc_usable_size` answers for SQLite's default allocator.
unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    unsafe { mi_usable_size(p) as c_int }
}

/// The size an allocation of `n` bytes gets: mimalloc's smallest classes are 8 bytes.
unsafe extern "C" fn round_up(n: c_int) -> c_int {
    (n + 7) & !7
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

/// Hands SQLite the binary's allocator and turns its memory statistics off. Called
/// first in `main`: SQLite refuses both once it has been initialised (then it keeps
/// libc's, which is only slower, and this says so).
pub fn use_binary_allocator() {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(allocate),
        xFree: Some(free),
        xRealloc: Some(reallocate),
        xSize: Some(size),
        xRoundup: Some(round_up),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: both options take their argument as SQLite documents (a pointer to the
    // methods, which SQLite copies; an int), and SQLite checks it is not yet running.
    let codes = unsafe {
        [
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_MALLOC,
                &methods as *const ffi::sqlite3_mem_methods,
            ),
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
        ]
    };
    if codes.iter().any(|&code| code != ffi::SQLITE_OK) {
        eprintln!("SQLite keeps libc's allocator (sqlite3_config answered {codes:?})");
    }
}
