// The binary's allocator; the library leaves the choice to whoever links it. Why
// mimalloc: server/Cargo.toml and docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mdm_server::cli::main()
}
