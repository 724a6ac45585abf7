fn main() -> std::process::ExitCode {
    mdm_server::cli::main()
}
