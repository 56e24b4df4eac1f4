//! The `cfql` binary: see `cfql --help`.

fn main() -> std::process::ExitCode {
    cfql::cli::main()
}
