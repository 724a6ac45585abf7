// The binary's allocator; the library leaves the choice to whoever links it. Why
// mimalloc: server/Cargo.toml and docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Not part of the library either, for the same reason: the binary's allocator for
// SQLite's C code too.
mod sqlite_memory;

fn main() -> std::process::ExitCode {
    sqlite_memory::use_binary_allocator();
    mdm_server::cli::main()
}
