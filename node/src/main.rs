//! The `lawmesh` command.

fn main() -> std::process::ExitCode {
    lawmesh_node::cli::main()
}
