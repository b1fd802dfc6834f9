use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use chatstudio::cli::{self, Cli};

// Heap accounting for code nodes' sandbox workers; in the server it only
// checks a flag that stays off.
#[global_allocator]
static ALLOCATOR: sandbox::Accounting = sandbox::Accounting;

fn init_tracing(format: &str) {
    let filter = EnvFilter::try_from_env("CHATSTUDIO_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    // A code node's worker (started by the server, not by people): before
    // anything else, so it holds no runtime, logger or configuration.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "sandbox-worker")
    {
        return ExitCode::from(u8::try_from(sandbox::worker::serve_stdio()).unwrap_or(1));
    }
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, outermost first.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
