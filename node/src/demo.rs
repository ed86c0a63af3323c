//! The Huiyang demo (being built).

/// Demo options.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Seed for the residents' requests.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Run the demo.
pub async fn run(_args: DemoArgs, _json: bool) -> Result<(), String> {
    Err("the demo is not built yet".into())
}
