//! The `lawmesh` command, for end-to-end tests that run nodes as child processes.

fn main() -> std::process::ExitCode {
    lawmesh_node::cli::main()
}
