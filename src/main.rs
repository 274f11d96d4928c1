//! The `fairsend` command line: parses arguments, calls the library, prints results.
//! Exit codes: 0 success, 1 the command ran and found problems, 2 bad usage or bad input.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

mod cli;
use cli::args::{Cli, Command, ConsentAction, DnsAction, LogFormat};
use cli::setup::load_secret;
use cli::terminal::tell;
use cli::{BadInput, Problems};

/// mimalloc instead of glibc's allocator: perf showed an import spending a third of its time
/// in glibc's free-list upkeep (unlink_chunk, malloc_consolidate) for the many small strings
/// a batch binds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `arena_eager_commit` off. On Linux it commits its arenas up front by default,
/// and freed pages then stay in the RSS: a 1M send peaked at 84–96 MiB, against the 100 MB it
/// must stay under; with arenas committed as used, 65 MiB at the same speed (20,000 at
/// concurrency 8, 4 alternating runs: 1.96 and 1.94 s). Set before the standard library's
/// start-up allocates (which reserves the first arena, before `main`): an ELF initialiser.
#[used]
#[unsafe(link_section = ".init_array")]
static COMMIT_ALLOCATOR_MEMORY_LAZILY: extern "C" fn() = commit_allocator_memory_lazily;

extern "C" fn commit_allocator_memory_lazily() {
    // `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_e` (v2 and v3): libmimalloc-sys
    // does not name it ("not exposed as constants for stability reasons").
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: initialisers run on the one thread there is, before any allocation of this
    // program (mimalloc's option setters are not thread-safe); it only sets an option's value.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

use fairsend::app::contacts::BadRows;
use fairsend::app::lifecycle::Action;
use fairsend::config::ConfigDir;
use fairsend::store::Store;

/// `send` runs on one thread: its work is a pipeline of small steps (compose, a socket write,
/// a database request) whose hand-offs between threads cost more than the steps themselves —
/// measured: 20,000 messages into smtp-sink took 6.9 s on the multi-threaded runtime and
/// 4.9 s on one thread, which leaves the other core to SQLite's own thread and the mail
/// server. Everything else (above all `serve`) gets the multi-threaded runtime.
fn runtime_for(command: &Command) -> tokio::runtime::Builder {
    match command {
        Command::Send(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match runtime_for(&cli.command).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(p) = refusal(&e) {
                tell!("{p}");
                return ExitCode::from(1);
            }
            tell!("error: {}", error_chain(e.chain()));
            if is_bad_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// An error and its causes on one line, each level adding what it knows: a cause whose text
/// the level above already ends with (libraries that print their source themselves) is not
/// repeated.
fn error_chain<'e>(chain: impl Iterator<Item = &'e (dyn std::error::Error + 'static)>) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in chain {
        let text = cause.to_string();
        if !previous.is_empty() && previous.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        previous = text;
    }
    line
}

/// The command ran and refused (its findings already printed): only the refusal is said.
fn refusal(e: &anyhow::Error) -> Option<&str> {
    if let Some(Problems(p)) = e.downcast_ref::<Problems>() {
        return Some(p);
    }
    match e.downcast_ref::<fairsend::app::AppError>() {
        Some(fairsend::app::AppError::Refused(p)) => Some(p),
        _ => None,
    }
}

fn is_bad_input(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause
                .downcast_ref::<fairsend::app::bounce_poll::PollError>()
                .is_some_and(|e| e.is_bad_input())
            || cause
                .downcast_ref::<fairsend::app::AppError>()
                .is_some_and(fairsend::app::AppError::is_bad_input)
            || cause.is::<fairsend::config::ConfigError>()
            || cause.is::<fairsend::audience::ImportError>()
            || cause.is::<fairsend::compose::ComposeError>()
            || cause.is::<fairsend::send::TransportError>()
            || cause.is::<fairsend::suppress::WeakSecret>()
            || matches!(
                cause.downcast_ref::<fairsend::suppress::KeyError>(),
                Some(
                    fairsend::suppress::KeyError::Mismatch { .. }
                        | fairsend::suppress::KeyError::SameSecret
                        | fairsend::suppress::KeyError::OldSecretWrong { .. }
                )
            )
            || cause.is::<fairsend::dns::DkimError>()
    })
}

fn init_logging(format: LogFormat) {
    let asked = std::env::var("FAIRSEND_LOG").unwrap_or_default();
    let mut filter = tracing_subscriber::EnvFilter::try_new(&asked)
        .ok()
        .filter(|_| !asked.trim().is_empty())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    // PostgreSQL reports harmless NOTICEs (the migrator's "relation _sqlx_migrations already
    // exists" on every start) that sqlx logs at INFO: show its warnings only, unless sqlx's
    // logs were asked for by name.
    if !asked.contains("sqlx")
        && let Ok(quiet) = "sqlx::postgres::notice=warn".parse()
    {
        filter = filter.add_directive(quiet);
    }
    // Colour only for a person at a terminal: a file or pipe would get the escape codes raw.
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Init { dir } = &cli.command {
        return cli::setup::init(dir);
    }
    let config = match ConfigDir::load(&cli.config) {
        Ok(config) => config,
        Err(e) => {
            if let Command::Check { json, campaign, .. } = &cli.command {
                let mut problems = ConfigDir::problems(&cli.config, campaign);
                if problems.is_empty() {
                    problems.push(e);
                }
                return Err(cli::check::config_problems(problems, *json));
            }
            return Err(e
                .hint_config_dir(&cli.config, cli.command.campaign_file())
                .into());
        }
    };
    let store = cli::setup::open(&config, cli.db.as_deref()).await?;
    // Every command but `keys` opens the data key first: one run with the wrong secret is
    // refused before it reads or writes anything.
    if !matches!(cli.command, Command::Keys { .. }) {
        load_secret(&config, &store).await?;
    }
    match cli.command {
        Command::Import {
            file,
            register,
            strict,
            skip_invalid,
            json,
        } => {
            let mode = match (strict, skip_invalid) {
                (true, _) => BadRows::Strict,
                (_, true) => BadRows::SetAside,
                _ => BadRows::Report,
            };
            cli::contacts::import(&config, &store, &file, &register, mode, json).await
        }
        Command::Optout { action } => cli::optout::run(&config, &store, action).await,
        Command::Consent {
            action: ConsentAction::Show { email, json },
        } => cli::consent::show(&config, &store, &email, json).await,
        Command::Erase { email } => cli::optout::erase(&config, &store, &email).await,
        Command::Bounces { action } => cli::bounces::run(&config, &store, action).await,
        Command::Hygiene { action } => cli::hygiene::run(&config, &store, action).await,
        Command::Audience { campaign, json } => {
            cli::audience::run(&config, &store, &campaign, json).await
        }
        Command::Pause { campaign, by } => {
            cli::lifecycle::run(&config, &store, &campaign, Action::Pause, &by).await
        }
        Command::Resume { campaign, by } => {
            cli::lifecycle::run(&config, &store, &campaign, Action::Resume, &by).await
        }
        Command::Cancel { campaign, by } => {
            cli::lifecycle::run(&config, &store, &campaign, Action::Cancel, &by).await
        }
        Command::Report {
            campaign,
            json,
            csv,
        } => cli::report::run(&config, &store, &campaign, json, csv).await,
        Command::Serve { listen, limits } => cli::setup::serve(config, store, listen, limits).await,
        Command::Keys { action } => cli::setup::keys(&config, &store, action).await,
        Command::Init { dir } => cli::setup::init(&dir),
        campaign_command => campaign(campaign_command, &config, &store).await,
    }
}

/// The campaign-side commands: each parses nothing more, calls its use case and prints.
async fn campaign(command: Command, config: &ConfigDir, store: &Store) -> anyhow::Result<()> {
    let secret = load_secret(config, store).await?;
    let secret = &secret;
    match command {
        Command::Send(args) => cli::send::run(config, store, secret, args).await,
        Command::Check {
            campaign,
            skip_invalid,
            resolver,
            json,
        } => {
            let resolver = resolver.as_deref();
            cli::check::run(
                config,
                store,
                secret,
                &campaign,
                resolver,
                skip_invalid,
                json,
            )
            .await
        }
        Command::Dns {
            action:
                DnsAction::Check {
                    campaign,
                    resolver,
                    json,
                },
        } => cli::check::dns(config, &campaign, resolver.as_deref(), json).await,
        Command::Review {
            campaign,
            out,
            json,
        } => cli::review::run_review(config, store, secret, &campaign, &out, json).await,
        Command::Approve { campaign, by } => {
            cli::review::run_approve(config, store, secret, &campaign, &by).await
        }
        Command::Preview {
            campaign,
            to,
            format,
        } => cli::review::run_preview(config, store, secret, &campaign, &to, format).await,
        Command::Status {
            campaign,
            recipients,
            state,
            json,
        } => {
            let (campaign, state) = (campaign.as_deref(), state.as_deref());
            cli::status::run(config, store, campaign, recipients, state, json).await
        }
        _ => unreachable!("run() dispatches the other commands"),
    }
}
