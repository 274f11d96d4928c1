//! The `fairsend` command line: parses arguments, calls the library, prints results.
//! Exit codes: 0 success, 1 the command ran and found problems, 2 bad usage or bad input.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;

mod terminal;
use terminal::{say, tell};

/// mimalloc instead of glibc's allocator: perf showed an import spending a third of its time
/// in glibc's free-list upkeep (unlink_chunk, malloc_consolidate) for the many small strings
/// a batch binds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand, ValueEnum};

use fairsend::audience::{ParsedImport, parse_contacts_csv};
use fairsend::compliance::review::{combined_hash, variant_hashes, write_review};
use fairsend::compliance::{
    CheckReport, Depth, Finding, Severity, check_campaign, footer_variants, insecure_link_findings,
};
use fairsend::compliance::{Eligibility, Exclusion};
use fairsend::compose::Composer;
use fairsend::config::{Campaign, ConfigDir, TransportUrl};
use fairsend::send::{ProgressFn, SendOptions, SendReport, run_campaign};
use fairsend::store::{OutboxState, Store};
use fairsend::suppress::{MasterSecret, Secret, address_hash, fingerprint};

/// Every environment variable fairsend reads, for `--help` (a test checks that each variable
/// named in the source is here).
const ENVIRONMENT: &str = "\
Environment variables:
  FAIRSEND_SECRET          master secret (32+ bytes) that opens the database's signing keys
                           (links, bounce addresses, sessions); the name is [secrets]
                           signing_secret_env; see `fairsend keys --help`
  FAIRSEND_SECRET_OLD      the previous master secret, for `keys rotate`
  FAIRSEND_ADMIN_PASSWORD  enables the admin pages of `serve` (/admin)
  FAIRSEND_METRICS_TOKEN   lets /metrics answer on the public listener to this bearer token
  FAIRSEND_DATABASE_URL    the database URL, as --db
  PGPASSWORD               the PostgreSQL password (never inside a URL or fairsend.toml)
  FAIRSEND_LOG             log filter: error, warn, info (default), debug, or per module
  NO_COLOR                 set to turn off coloured logs (logs are coloured only on a terminal)
  SMTP credentials and the DKIM key come from the variables that fairsend.toml names
  ([transport] username_env / password_env, [dkim] private_key_env).";

#[derive(Parser)]
#[command(
    name = "fairsend",
    version,
    about = "Compliance-aware B2B email campaign sender",
    after_help = ENVIRONMENT
)]
struct Cli {
    /// Configuration directory (fairsend.toml, registers.toml, campaigns/, content/).
    #[arg(long, global = true, default_value = "config")]
    config: PathBuf,
    /// Database URL (sqlite://FILE or postgres://USER@HOST/DB); defaults to [database] url in
    /// fairsend.toml (sqlite://fairsend.db).
    #[arg(
        long,
        global = true,
        env = "FAIRSEND_DATABASE_URL",
        hide_env_values = true
    )]
    db: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum PreviewFormat {
    Eml,
    Text,
    Html,
}

#[derive(Subcommand)]
enum HygieneAction {
    /// Companies that ceased (a CSV with a business_id column): their contacts become `ceased`.
    Ceased {
        /// The CSV file of ceased companies (a business_id column).
        file: PathBuf,
    },
    /// Persons who left their role (email, or business_id + first_name + last_name): `passive`.
    Passivate {
        /// The CSV file of departed persons (email, or business_id + first_name + last_name).
        file: PathBuf,
    },
    /// Delete the personal data of entries past retention and of expired purchased registers.
    Purge {
        /// Print what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Per register: contacts by status, ceased share, never sent to, unengaged, retention.
    Report {
        /// Sends without any engagement or bounce after which a contact counts as a spam-trap risk.
        #[arg(long, default_value_t = 5)]
        unengaged_after: i64,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DnsAction {
    /// SPF of the envelope domain for every sending IP, DMARC, alignment, the DKIM key.
    Check {
        /// The campaign file (for example config/campaigns/spring.toml).
        campaign: PathBuf,
        /// Ask this DNS server (IP:PORT) instead of the system's resolver.
        #[arg(long)]
        resolver: Option<String>,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BouncesAction {
    /// Read DSNs, complaints and replies: message files (.eml), `-` for one message on stdin
    /// (an MTA pipe), `--mbox PATH` (an mbox file or a Maildir), or `--maildir DIR`.
    Ingest {
        /// Message files (.eml: one message each; an mbox file is split), or `-` alone for one
        /// message on standard input.
        #[arg(value_name = "FILE", conflicts_with_all = ["mbox", "maildir"])]
        files: Vec<PathBuf>,
        /// An mbox file, or a Maildir (a directory: its new/ messages are processed and moved
        /// to cur/).
        #[arg(long, value_name = "PATH", conflicts_with = "maildir")]
        mbox: Option<PathBuf>,
        /// A Maildir: the messages in DIR/new are processed and moved to DIR/cur.
        #[arg(long, value_name = "DIR")]
        maildir: Option<PathBuf>,
        /// Print the summary as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The bounce queue, newest first.
    List {
        /// Show at most this many bounces.
        #[arg(long, default_value_t = 200)]
        limit: i64,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Confirm an unverified bounce or complaint (one fairsend could not tie to a message it
    /// sent): it then acts as a proven one (suppression, opt-out).
    Confirm {
        /// The bounce id (`bounces list` shows it).
        id: i64,
        /// Who decides (recorded in the audit log).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Dismiss an unverified bounce or complaint: it stays recorded and changes nothing.
    Dismiss {
        /// The bounce id (`bounces list` shows it).
        id: i64,
        /// Who decides (recorded in the audit log).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Parse messages and print what they are, changing nothing.
    Parse {
        /// Message files (.eml, or an mbox file) to parse.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Move the database to a new master secret: the new one from the secret's variable
    /// (FAIRSEND_SECRET), the old one from FAIRSEND_SECRET_OLD (or --from-development-key).
    /// Hashes, suppressions and links in mail already sent stay valid.
    Rotate {
        /// The database was used without a secret so far (the built-in development key).
        #[arg(long)]
        from_development_key: bool,
    },
    /// The fingerprint of the master secret the database is pinned to, and of the current one.
    Show,
}

#[derive(Subcommand)]
enum OptoutAction {
    /// Record an opt-out for EMAIL (suppressed at once, in every campaign).
    Add {
        /// The address to suppress.
        email: String,
        /// Why, in a few words (kept with the opt-out: "phone call", "letter" …).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The opt-out queue, newest first.
    List {
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Import or update contacts of a register from a CSV file.
    Import {
        /// The contacts CSV file (columns: email, first_name, last_name, company, …).
        file: PathBuf,
        /// The register (in registers.toml) the contacts belong to.
        #[arg(long)]
        register: String,
        /// Apply nothing if any row is bad.
        #[arg(long, conflicts_with = "skip_invalid")]
        strict: bool,
        /// Import the good rows, write the bad ones with their reasons to FILE.rejected.csv
        /// beside the input, and exit 0.
        #[arg(long)]
        skip_invalid: bool,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run (or resume) a campaign.
    Send {
        /// The campaign file (for example config/campaigns/spring.toml).
        campaign: PathBuf,
        /// Import the campaign's contacts and queue its outbox, then compose and check every
        /// due message without sending it or changing its state.
        #[arg(long)]
        dry_run: bool,
        /// Use this transport for this run instead of [transport] url.
        #[arg(long)]
        transport: Option<String>,
        /// Requeue messages an interrupted SMTP run may or may not have delivered.
        #[arg(long)]
        resend_interrupted: bool,
        /// Requeue the messages whose delivery is uncertain (no reply after the data was
        /// sent): their recipients may receive them twice.
        #[arg(long)]
        resend_uncertain: bool,
        /// Resume although messages are in flight through another kind of transport (smtp vs
        /// outbox); those messages become uncertain.
        #[arg(long)]
        force_transport: bool,
        /// Send even if SPF fails or the published DKIM key does not match (logged loudly).
        #[arg(long)]
        allow_dns_problems: bool,
        /// After an A/B test phase, exit instead of waiting; a later `send` decides and goes on.
        #[arg(long)]
        no_wait: bool,
        /// Ask this DNS server (IP:PORT) instead of the system's resolver.
        #[arg(long)]
        resolver: Option<String>,
        /// Send a test: the message of real contacts, marked [TEST] in the subject, to this
        /// address instead; nothing is recorded and no real contact is affected.
        #[arg(long, value_name = "ADDRESS")]
        test_to: Option<String>,
        /// With --test-to: how many contacts' messages to send (the first eligible ones).
        #[arg(long, default_value_t = 1, requires = "test_to")]
        sample: usize,
        /// Send to the good rows of the campaign's contact files; the bad ones are written,
        /// with their reasons, to FILE.rejected.csv beside each file.
        #[arg(long)]
        skip_invalid: bool,
        /// Send even though unsubscribe links point to a loopback or plain-http
        /// public_base_url while the transport reaches real mailboxes.
        #[arg(long)]
        allow_insecure_links: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every pre-flight check; exit 0 = sendable, 1 = problems listed.
    Check {
        /// The campaign file (for example config/campaigns/spring.toml).
        campaign: PathBuf,
        /// Check as `send --skip-invalid` would send: bad contact rows are set aside (and
        /// written to FILE.rejected.csv) instead of refusing the campaign.
        #[arg(long)]
        skip_invalid: bool,
        /// Ask this DNS server (IP:PORT) instead of the system's resolver.
        #[arg(long)]
        resolver: Option<String>,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// SPF, DKIM and DMARC pre-flight for a campaign.
    Dns {
        #[command(subcommand)]
        action: DnsAction,
    },
    /// Write every distinct footer variant for compliance review.
    Review {
        /// The campaign file (for example config/campaigns/spring.toml).
        campaign: PathBuf,
        /// Directory for index.html and the variant files.
        #[arg(long, default_value = "review")]
        out: PathBuf,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Record approval of the campaign's rendered compliance blocks.
    Approve {
        /// The campaign file (for example config/campaigns/spring.toml).
        campaign: PathBuf,
        /// Who approves (name as it should appear in the record).
        #[arg(long)]
        by: String,
    },
    /// Print exactly what one recipient would get.
    Preview {
        /// The campaign file (for example config/campaigns/spring.toml).
        campaign: PathBuf,
        /// The recipient's address (a contact in the campaign's audience).
        #[arg(long)]
        to: String,
        /// What to print: the whole message (eml), its text part or its HTML part.
        #[arg(long, value_enum, default_value_t = PreviewFormat::Eml)]
        format: PreviewFormat,
    },
    /// Opt-outs (GDPR art. 21): add one by hand, or list the opt-out queue.
    Optout {
        #[command(subcommand)]
        action: OptoutAction,
    },
    /// Erase a person's data (GDPR art. 17); the address stays suppressed as a keyed hash.
    Erase {
        /// The person's address.
        email: String,
    },
    /// Bounces, complaints and replies: ingest, list, or parse without changing anything.
    Bounces {
        #[command(subcommand)]
        action: BouncesAction,
    },
    /// Register hygiene: ceased companies, departed persons, retention, the report.
    Hygiene {
        #[command(subcommand)]
        action: HygieneAction,
    },
    /// Serve the unsubscribe pages, one-click unsubscribe, link tracking and the admin pages.
    ///
    /// Public: /u/TOKEN (the unsubscribe page, in the recipient's language, and the RFC 8058
    /// one-click POST), /c/TOKEN and /o/TOKEN (click and open tracking, only for A/B tests
    /// that measure them), /healthz, /metrics (Prometheus counts, no personal data).
    ///
    /// Admin pages: /admin (campaigns), /admin/bounces (re-classify), /admin/optouts (manual
    /// opt-out, erasure), /admin/review (footer variants, approval). They are enabled only when
    /// FAIRSEND_ADMIN_PASSWORD is set; log in at /admin/login with that password.
    ///
    /// Environment: FAIRSEND_SECRET (or the variable named by [secrets] signing_secret_env, at
    /// least 32 bytes) signs unsubscribe links and admin sessions: give every instance the same
    /// one. FAIRSEND_ADMIN_PASSWORD enables the admin pages.
    Serve {
        /// Address to listen on, IP:PORT (port 0 picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        limits: ServeArgs,
    },
    /// Write a commented starter configuration into DIR (new or empty): sender, one register,
    /// one campaign, one body. Fill in the values marked FILL IN, then run `check`.
    Init {
        /// The configuration directory to create.
        dir: PathBuf,
    },
    /// The signing keys: show the pin, rotate the master secret.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Per-state counts of one campaign or of all; with --recipients, who each row went to
    /// and how it ended.
    Status {
        /// The campaign's name or its file (campaigns/NAME.toml); all campaigns when omitted.
        campaign: Option<String>,
        /// List the campaign's recipients: address, state, attempts, last SMTP reply, time.
        #[arg(long, requires = "campaign")]
        recipients: bool,
        /// List only the recipients whose rows are in this state (queued, sending, sent,
        /// deferred, failed, suppressed, uncertain); implies --recipients.
        #[arg(long, requires = "campaign")]
        state: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `serve`'s listeners and limits (defaults in `fairsend::web::ServeLimits`; the README's
/// security section explains each).
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Where `/metrics` is served, without authentication ("none": not on a listener of its
    /// own; with FAIRSEND_METRICS_TOKEN set it is also served on --listen to bearers of it).
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics_listen: String,
    /// Open connections at once (keep it below the open-files limit, `ulimit -n`).
    #[arg(long, default_value_t = 768)]
    max_connections: usize,
    /// Open connections of one client address.
    #[arg(long, default_value_t = 64)]
    max_connections_per_client: usize,
    /// Seconds a client has to send a request's header.
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a client has to send a request's body and the server to answer.
    #[arg(long, default_value_t = 30)]
    request_timeout: u64,
    /// Requests per second one client address may make to /u, /c and /o (burst: 4×); 0: no limit.
    #[arg(long, default_value_t = 20)]
    public_rate_limit: u32,
    /// Failed admin logins of one client address before delays start (1 s, 2 s, 4 s…).
    #[arg(long, default_value_t = 5)]
    login_attempts_per_client: u32,
    /// Failed admin logins of all clients together before delays start for everyone.
    #[arg(long, default_value_t = 100)]
    login_attempts_global: u32,
    /// A reverse proxy (IP address) whose X-Forwarded-For names the client, for the
    /// per-client limits; repeat for several. Without it every client behind the proxy is one.
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl ServeArgs {
    fn limits(&self) -> Result<fairsend::web::ServeLimits, BadInput> {
        if self.max_connections == 0 || self.max_connections_per_client == 0 {
            return Err(BadInput(
                "--max-connections and --max-connections-per-client must be at least 1".into(),
            ));
        }
        if self.header_timeout == 0 || self.request_timeout == 0 {
            return Err(BadInput(
                "--header-timeout and --request-timeout must be at least 1 second".into(),
            ));
        }
        Ok(fairsend::web::ServeLimits {
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            header_timeout: std::time::Duration::from_secs(self.header_timeout),
            request_timeout: std::time::Duration::from_secs(self.request_timeout),
            public_rate_per_second: self.public_rate_limit,
            login: fairsend::web::LoginLimits {
                free_per_client: self.login_attempts_per_client,
                free_global: self.login_attempts_global,
                ..Default::default()
            },
            trusted_proxies: self.trusted_proxies.clone(),
            ..Default::default()
        })
    }

    fn metrics_listen(&self) -> Result<Option<std::net::SocketAddr>, BadInput> {
        if self.metrics_listen == "none" {
            return Ok(None);
        }
        self.metrics_listen.parse().map(Some).map_err(|_| {
            BadInput(format!(
                "--metrics-listen '{}': give IP:PORT or none",
                self.metrics_listen
            ))
        })
    }
}

/// An error that is the user's input, not the program's situation: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

/// The command ran and found problems: exit code 1, the problems already printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Problems(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(p) = e.downcast_ref::<Problems>() {
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

fn is_bad_input(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<BadInput>()
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
        return init(dir);
    }
    let config = match ConfigDir::load(&cli.config) {
        Ok(config) => config,
        Err(e) => {
            if let Command::Check { json, .. } = &cli.command {
                let json = *json;
                return Err(config_problem(e, json));
            }
            return Err(e.into());
        }
    };
    let db_url = cli
        .db
        .clone()
        .unwrap_or_else(|| config.settings.database.url.clone());
    note_new_sqlite_file(&db_url);
    let store = Store::open_with(
        &db_url,
        &fairsend::store::StoreOptions {
            max_connections: config.settings.database.max_connections,
        },
    )
    .await?;
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
            import(&config, &store, &file, &register, mode, json).await
        }
        Command::Send {
            campaign,
            transport,
            test_to: Some(test_to),
            sample,
            ..
        } => {
            send_test(
                &config,
                &store,
                &campaign,
                &test_to,
                sample,
                transport.as_deref(),
            )
            .await
        }
        Command::Send {
            campaign,
            dry_run,
            transport,
            resend_interrupted,
            resend_uncertain,
            force_transport,
            allow_dns_problems,
            no_wait,
            resolver,
            skip_invalid,
            allow_insecure_links,
            json,
            ..
        } => {
            let flags = SendFlags {
                dry_run,
                resend_interrupted,
                resend_uncertain,
                force_transport,
                allow_dns_problems,
                no_wait,
                skip_invalid,
                allow_insecure_links,
                json,
            };
            send(
                &config,
                &store,
                &campaign,
                transport.as_deref(),
                resolver.as_deref(),
                flags,
            )
            .await
        }
        Command::Check {
            campaign,
            skip_invalid,
            resolver,
            json,
        } => {
            check(
                &config,
                &store,
                &campaign,
                resolver.as_deref(),
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
        } => dns_check(&config, &campaign, resolver.as_deref(), json).await,
        Command::Review {
            campaign,
            out,
            json,
        } => review(&config, &store, &campaign, &out, json).await,
        Command::Approve { campaign, by } => approve(&config, &store, &campaign, &by).await,
        Command::Preview {
            campaign,
            to,
            format,
        } => preview(&config, &store, &campaign, &to, format).await,
        Command::Optout { action } => optout(&config, &store, action).await,
        Command::Erase { email } => erase(&config, &store, &email).await,
        Command::Bounces { action } => bounces(&config, &store, action).await,
        Command::Hygiene { action } => hygiene(&config, &store, action).await,
        Command::Serve { listen, limits } => serve(config, store, listen, limits).await,
        Command::Keys { action } => keys(&config, &store, action).await,
        Command::Init { dir } => init(&dir),
        Command::Status {
            campaign,
            recipients,
            state,
            json,
        } => {
            let name = match campaign.as_deref() {
                Some(arg) => Some(campaign_name_of(&config, arg)?),
                None => None,
            };
            if recipients || state.is_some() {
                let name = name.unwrap_or_default();
                status_recipients(&store, &name, state.as_deref(), json).await
            } else {
                status(&config, &store, name.as_deref(), json).await
            }
        }
    }
}

/// The working key: the master secret from the environment opens the data key pinned in the
/// database (refusing a different master).
async fn load_secret(config: &ConfigDir, store: &Store) -> anyhow::Result<Secret> {
    static UNLOCKED: tokio::sync::OnceCell<Secret> = tokio::sync::OnceCell::const_new();
    Ok(UNLOCKED
        .get_or_try_init(|| unlock_secret(config, store))
        .await?
        .clone())
}

async fn unlock_secret(config: &ConfigDir, store: &Store) -> anyhow::Result<Secret> {
    let master = MasterSecret::from_env(&config.settings.signing_secret_env)?;
    if master.is_development() {
        eprintln!(
            "warning: {} is not set: using the built-in DEVELOPMENT signing secret (outbox: \
             transport and loopback only; set {} to 32+ random bytes for real mail)",
            config.settings.signing_secret_env, config.settings.signing_secret_env
        );
    }
    Ok(fairsend::suppress::unlock(store, &master).await?)
}

async fn keys(config: &ConfigDir, store: &Store, action: KeysAction) -> anyhow::Result<()> {
    let var = &config.settings.signing_secret_env;
    match action {
        KeysAction::Show => {
            let pinned = store.key_pin().await?.map(|p| p.fingerprint);
            let current = fingerprint(&MasterSecret::from_env(var)?);
            println!(
                "pinned master fingerprint: {}",
                pinned
                    .as_deref()
                    .unwrap_or("(none yet: pinned by the first command)")
            );
            println!("current master ({var}):   {current}");
            if pinned.is_some_and(|p| p != current) {
                return Err(Problems(format!(
                    "{var} does not open this database: see `fairsend keys rotate --help`"
                ))
                .into());
            }
            Ok(())
        }
        KeysAction::Rotate {
            from_development_key,
        } => {
            let new = MasterSecret::from_env(var)?;
            if new.is_development() {
                return Err(BadInput(format!(
                    "keys rotate: set {var} to the new secret (32+ random bytes); the development key cannot be a rotation target"
                ))
                .into());
            }
            let old = if from_development_key {
                MasterSecret::development()
            } else {
                match std::env::var("FAIRSEND_SECRET_OLD") {
                    Ok(value) if !value.is_empty() => {
                        MasterSecret::from_value("FAIRSEND_SECRET_OLD", value)?
                    }
                    _ => {
                        return Err(BadInput(
                            "keys rotate: set FAIRSEND_SECRET_OLD to the secret the database was used with, or pass --from-development-key".to_string(),
                        )
                        .into());
                    }
                }
            };
            let fingerprint = fairsend::suppress::rotate_keys(store, &old, &new).await?;
            println!(
                "keys rotated: the database now opens with {var} (fingerprint {fingerprint}); \
                 hashes, suppressions and links already sent are unchanged"
            );
            Ok(())
        }
    }
}

/// What an import does with bad rows: refuse the file, report them (exit 1), or write them
/// to the rejected-rows file and go on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BadRows {
    Strict,
    Report,
    SetAside,
}

async fn import(
    config: &ConfigDir,
    store: &Store,
    file: &Path,
    register_name: &str,
    mode: BadRows,
    json: bool,
) -> anyhow::Result<()> {
    let register = config.registers.get(register_name).ok_or_else(|| {
        BadInput(format!(
            "register '{register_name}' is not defined in {} (defined: {})",
            config.registers.file.display(),
            config.registers.names().join(", ")
        ))
    })?;
    let parsed = parse_contacts_csv(file, register)?;
    for error in &parsed.errors {
        tell!("{error}");
    }
    if mode == BadRows::Strict && !parsed.errors.is_empty() {
        return Err(BadInput(format!(
            "{}: {} bad row(s); --strict: nothing was imported",
            file.display(),
            parsed.errors.len()
        ))
        .into());
    }
    let rejected_file = if mode == BadRows::SetAside {
        parsed.write_rejected(file)?
    } else {
        None
    };
    let secret = load_secret(config, store).await?;
    let outcome = store
        .import_contacts(register_name, &parsed.records, |a| address_hash(&secret, a))
        .await?;
    for (source, reason) in &outcome.refused {
        tell!("{source}: email: {}", reason.import_refusal());
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": file.display().to_string(),
                "register": register_name,
                "inserted": outcome.inserted,
                "updated": outcome.updated,
                "unchanged": outcome.unchanged,
                "merged_duplicates": parsed.merged_duplicates,
                "refused_suppressed": outcome.refused.len(),
                "errors": parsed.errors,
                "rejected_file": rejected_file.as_ref().map(|p| p.display().to_string()),
            })
        );
    } else {
        println!(
            "{}: register {register_name}: {} inserted, {} updated, {} unchanged, {} duplicate row(s) merged, {} rejected",
            file.display(),
            outcome.inserted,
            outcome.updated,
            outcome.unchanged,
            parsed.merged_duplicates,
            parsed.errors.len() + outcome.refused.len()
        );
    }
    if let Some(path) = &rejected_file {
        eprintln!(
            "{} rejected row(s) written, with the reason for each, to {}",
            parsed.errors.len(),
            path.display()
        );
        if outcome.refused.is_empty() {
            return Ok(());
        }
    }
    if !parsed.errors.is_empty() || !outcome.refused.is_empty() {
        return Err(Problems(format!(
            "{} row(s) were not imported; the other rows were",
            parsed.errors.len() + outcome.refused.len()
        ))
        .into());
    }
    Ok(())
}

/// The campaign's own contact files, all parsed before any is applied: one bad row refuses
/// the whole send and changes nothing, unless `skip_invalid` sets the bad rows aside (written
/// to a rejected-rows file beside each contact file).
fn parse_campaign_contacts<'c>(
    config: &ConfigDir,
    campaign: &'c Campaign,
    skip_invalid: bool,
) -> anyhow::Result<Vec<(&'c str, ParsedImport)>> {
    let mut parsed = Vec::new();
    let mut errors = 0;
    for import in &campaign.imports {
        let register = config
            .registers
            .get(&import.register)
            .ok_or_else(|| BadInput(format!("register '{}' is not defined", import.register)))?;
        let p = parse_contacts_csv(&import.file, register)?;
        for e in &p.errors {
            tell!("{e}");
        }
        if skip_invalid {
            if let Some(path) = p.write_rejected(&import.file)? {
                eprintln!(
                    "{}: {} bad row(s) set aside (--skip-invalid), written with the reason for each to {}",
                    import.file.display(),
                    p.errors.len(),
                    path.display()
                );
            }
        } else {
            errors += p.errors.len();
        }
        parsed.push((import.register.as_str(), p));
    }
    if errors > 0 {
        return Err(BadInput(format!(
            "{}: {errors} bad row(s) in the campaign's contact files; nothing was imported or sent \
             (--skip-invalid sends to the good rows and writes the bad ones to a file)",
            campaign.file.display()
        ))
        .into());
    }
    Ok(parsed)
}

/// The extra fields every recipient will have once `pending` is imported.
async fn fields_after_import(
    store: &Store,
    campaign: &Campaign,
    pending: &[(&str, ParsedImport)],
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let mut common = store.common_fields(&campaign.registers).await?;
    let stored_any = store.has_members(&campaign.registers).await?;
    let mut first = !stored_any;
    for (_, p) in pending {
        for record in &p.records {
            let keys: std::collections::BTreeSet<String> = record.fields.keys().cloned().collect();
            common = if first {
                keys
            } else {
                common.intersection(&keys).cloned().collect()
            };
            first = false;
        }
    }
    Ok(common)
}

async fn apply_campaign_contacts(
    store: &Store,
    pending: Vec<(&str, ParsedImport)>,
    secret: &Secret,
) -> anyhow::Result<()> {
    for (register, p) in pending {
        let outcome = store
            .import_contacts(register, &p.records, |a| address_hash(secret, a))
            .await?;
        for (source, reason) in &outcome.refused {
            tell!("{source}: skipped: {}", reason.import_refusal());
        }
        if outcome.inserted + outcome.updated > 0 {
            tracing::info!(
                register,
                inserted = outcome.inserted,
                updated = outcome.updated,
                "imported the campaign's contacts"
            );
        }
    }
    Ok(())
}

/// `--transport URL` for this run, else `[transport] url`.
fn chosen_transport(config: &ConfigDir, over: Option<&str>) -> anyhow::Result<TransportUrl> {
    Ok(match over {
        Some(url) => TransportUrl::parse(url).map_err(|e| BadInput(format!("--transport: {e}")))?,
        None => config.settings.transport.url.clone(),
    })
}

/// The development key signs links anyone with fairsend's source can forge: it may write into
/// an outbox directory, never send real mail.
fn refuse_development_key(
    config: &ConfigDir,
    secret: &Secret,
    transport_url: &TransportUrl,
) -> anyhow::Result<()> {
    if secret.is_development() && !transport_url.is_outbox() {
        return Err(BadInput(format!(
            "refusing to send through {transport_url} with the development signing secret: its \
             links and bounce addresses are forgeable by anyone who has fairsend's source. Set \
             {} to 32+ random bytes (e.g. `openssl rand -hex 32`); the development key works \
             with the outbox: transport only",
            config.settings.signing_secret_env
        ))
        .into());
    }
    Ok(())
}

/// `send --test-to`: the messages of the first `sample` eligible contacts, to `to`, marked
/// [TEST], through the campaign's transport, each passed through the compliance gate. No
/// outbox row is created and no state changes.
async fn send_test(
    config: &ConfigDir,
    store: &Store,
    campaign_file: &Path,
    to: &str,
    sample: usize,
    transport_override: Option<&str>,
) -> anyhow::Result<()> {
    let to = fairsend::audience::EmailAddress::parse(to)
        .map_err(|e| BadInput(format!("--test-to {to}: {e}")))?;
    let campaign = config.load_campaign(campaign_file)?;
    let transport_url = chosen_transport(config, transport_override)?;
    refuse_development_key(config, &load_secret(config, store).await?, &transport_url)?;
    let composer = prepare(config, store, &campaign, false).await?;
    let composer = with_tracking(composer, store, &campaign).await?;
    let mut chosen = Vec::new();
    let today = chrono::Utc::now().date_naive();
    store
        .for_each_audience_member(&campaign.registers, |gate| {
            let facts = fairsend::compliance::ContactFacts::of_member(config, &gate);
            if chosen.len() < sample
                && !fairsend::compliance::eligibility(&facts, today).is_excluded()
            {
                chosen.push(gate.recipient);
            }
        })
        .await?;
    if chosen.is_empty() {
        return Err(Problems(format!(
            "{}: no eligible contact to take a test message from",
            campaign.name
        ))
        .into());
    }
    let transport = fairsend::send::open(&transport_url, &config.settings.transport)?;
    for (n, recipient) in chosen.iter().enumerate() {
        let message = composer.compose_test(recipient, &to)?;
        let message = fairsend::compliance::gate(message, &config.settings)
            .map_err(|e| Problems(format!("the test message fails the compliance gate: {e}")))?;
        let label = format!("{}-test{}", campaign.name, n + 1);
        let reply = transport
            .deliver(&label, &message)
            .await
            .map_err(|e| Problems(format!("test message {}: {e:?}", n + 1)))?;
        // The outbox transport stages files in a directory of its own per run.
        let _ = transport.clean_up_after(&label, std::process::id());
        println!(
            "test message {} (as {}) sent to {to}: {reply}",
            n + 1,
            recipient.contact.email
        );
    }
    Ok(())
}

struct SendFlags {
    dry_run: bool,
    resend_interrupted: bool,
    resend_uncertain: bool,
    force_transport: bool,
    allow_dns_problems: bool,
    no_wait: bool,
    skip_invalid: bool,
    allow_insecure_links: bool,
    json: bool,
}

async fn send(
    config: &ConfigDir,
    store: &Store,
    campaign_file: &Path,
    transport_override: Option<&str>,
    resolver: Option<&str>,
    flags: SendFlags,
) -> anyhow::Result<()> {
    let SendFlags {
        dry_run,
        resend_interrupted,
        resend_uncertain,
        force_transport,
        allow_dns_problems,
        no_wait,
        skip_invalid,
        allow_insecure_links,
        json,
    } = flags;
    let campaign = config.load_campaign(campaign_file)?;
    let secret = load_secret(config, store).await?;
    let transport_url = chosen_transport(config, transport_override)?;
    if !dry_run {
        refuse_development_key(config, &secret, &transport_url)?;
    }
    let link_findings = insecure_link_findings(&config.settings, &transport_url);
    if !link_findings.is_empty() && !dry_run {
        print_findings(&link_findings);
        if !allow_insecure_links {
            return Err(Problems(format!(
                "send refused: recipients could not use the unsubscribe links of {}; set \
                 [links] public_base_url to the public https address of `fairsend serve` \
                 (or pass --allow-insecure-links)",
                config.settings.public_base_url
            ))
            .into());
        }
        eprintln!(
            "WARNING: sending with unusable unsubscribe links because of --allow-insecure-links"
        );
    }
    let dkim = load_dkim(config)?;
    let pending = parse_campaign_contacts(config, &campaign, skip_invalid)?;
    let composer = Composer::new(config, &campaign, secret.clone())?.with_dkim(dkim.as_ref());
    composer.check_fields(&fields_after_import(store, &campaign, &pending).await?)?;
    apply_campaign_contacts(store, pending, &secret).await?;
    let composer = with_tracking(composer, store, &campaign).await?;
    let mut report = check_campaign(
        config,
        &campaign,
        &composer,
        store,
        Depth::AudienceAndApproval,
    )
    .await?;
    let dns_findings =
        dns_preflight(config, &campaign, &transport_url, resolver, dkim.as_ref()).await?;
    let dns_errors = dns_findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if dns_errors > 0 && allow_dns_problems {
        print_findings(&dns_findings);
        eprintln!(
            "WARNING: sending despite {dns_errors} DNS problem(s) because of --allow-dns-problems: receivers are likely to reject or junk this campaign"
        );
        tracing::warn!(
            dns_errors,
            "sending despite DNS problems (--allow-dns-problems)"
        );
    } else {
        report.findings.extend(dns_findings);
    }
    if report.errors() > 0 {
        print_findings(&report.findings);
        return Err(Problems(format!(
            "send refused: `fairsend check {}` finds {} error(s){}",
            campaign.file.display(),
            report.errors(),
            if dns_errors > 0 {
                " (DNS problems can be overridden with --allow-dns-problems)"
            } else {
                ""
            }
        ))
        .into());
    }
    let transport = fairsend::send::open(&transport_url, &config.settings.transport)?;

    let options = SendOptions {
        dry_run,
        resend_interrupted,
        resend_uncertain,
        force_transport,
        no_wait,
        on_progress: Some(progress_display()),
        ..Default::default()
    };
    let stop = Arc::clone(&options.stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "stopping: finishing the messages in flight (run `fairsend send` again to resume)"
            );
            stop.store(true, Ordering::SeqCst);
        }
    });
    let report = run_campaign(config, &campaign, &composer, store, &*transport, &options)
        .await
        .map_err(|e| match e {
            fairsend::send::SendError::ExpiredRegister { .. }
            | fairsend::send::SendError::TransportSwitch { .. } => {
                anyhow::Error::new(Problems(format!("send refused: {e}")))
            }
            other => anyhow::Error::new(other),
        })?;
    print_report(&report, &transport_url, json);
    Ok(())
}

/// "1 message", "2 messages".
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A progress bar with sent/total, rate and ETA on a terminal; a log line every 100 messages
/// otherwise.
fn progress_display() -> ProgressFn {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Box::new(move |r: &SendReport, n: u64| {
            let total = r.due_at_start.max(n);
            bar.set_length(total);
            bar.set_position(n);
            let eta = bar.eta().as_secs();
            bar.set_message(format!(
                "{n}/{} · {:.0}/s · ETA {}m{:02}s · sent {}, deferred {}, failed {}, suppressed {}",
                plural(total, "message", "messages"),
                bar.per_sec(),
                eta / 60,
                eta % 60,
                r.sent,
                r.deferred,
                r.failed,
                r.suppressed
            ));
        })
    } else {
        Box::new(|r: &SendReport, n: u64| {
            if n.is_multiple_of(100) {
                tracing::info!(
                    processed = n,
                    total = r.due_at_start.max(n),
                    sent = r.sent,
                    deferred = r.deferred,
                    failed = r.failed,
                    suppressed = r.suppressed,
                    "progress"
                );
            }
        })
    }
}

fn print_report(report: &SendReport, transport: &TransportUrl, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    let verb = if report.dry_run { "would send" } else { "sent" };
    println!(
        "campaign {} via {transport}: {verb} {}, deferred {}, failed {}, suppressed {}",
        report.campaign,
        plural(report.sent, "message", "messages"),
        report.deferred,
        report.failed,
        report.suppressed
    );
    if report.interrupted_sent
        + report.interrupted_requeued
        + report.interrupted_failed
        + report.interrupted_uncertain
        > 0
    {
        println!(
            "  an earlier run was interrupted: {} found delivered, {} requeued, {} marked failed (not resent), {} uncertain (another transport kind)",
            report.interrupted_sent,
            report.interrupted_requeued,
            report.interrupted_failed,
            report.interrupted_uncertain
        );
    }
    if report.uncertain_requeued > 0 {
        println!(
            "  {} uncertain message(s) requeued by --resend-uncertain",
            report.uncertain_requeued
        );
    }
    if report.uncertain + report.interrupted_uncertain > 0 {
        println!(
            "  {} message(s) uncertain: the connection failed after the data was sent, so the server may have accepted them; \
             they are not resent (list them with `fairsend status {}`, resend with `fairsend send --resend-uncertain`)",
            report.uncertain + report.interrupted_uncertain,
            report.campaign
        );
    }
    if let Some(at) = report.ab_decision_at {
        let when = chrono::DateTime::from_timestamp_millis(at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        println!(
            "  A/B test phase sent; the winner is chosen at {when}: run `fairsend send` again then (without --no-wait it waits)"
        );
    } else if report.waiting_for_retry > 0 {
        let when = report
            .next_retry_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "later".into());
        println!(
            "  {} message(s) wait for a retry (next due {when}); run `fairsend send` again then",
            report.waiting_for_retry
        );
    }
}

fn init(dir: &Path) -> anyhow::Result<()> {
    let written = fairsend::config::write_starter(dir).map_err(|e| BadInput(e.to_string()))?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!(
        "next: fill in the values marked FILL IN, add contacts to {}, then run\n  \
         fairsend --config {} check {}",
        dir.join("contacts/customers.csv").display(),
        dir.display(),
        dir.join("campaigns/first.toml").display()
    );
    Ok(())
}

/// A campaign named on the command line by its name or by its file.
fn campaign_name_of(config: &ConfigDir, arg: &str) -> anyhow::Result<String> {
    let path = Path::new(arg);
    if arg.ends_with(".toml") || path.is_file() {
        return Ok(config.load_campaign(path)?.name);
    }
    Ok(arg.to_string())
}

/// A relative SQLite path is resolved from the current directory: a command run from another
/// directory would silently start an empty database, without the suppressions of the real one.
fn note_new_sqlite_file(url: &str) {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return;
    };
    let path = Path::new(path.split('?').next().unwrap_or(path));
    if !path.as_os_str().is_empty() && path != Path::new(":memory:") && !path.exists() {
        let shown = std::env::current_dir()
            .map(|dir| dir.join(path))
            .unwrap_or_else(|_| path.to_path_buf());
        tell!(
            "note: creating a new, empty database {} (a relative sqlite:// path is taken from the current directory)",
            shown.display()
        );
    }
}

/// "no campaign named X", with the names that exist (a file's stem is not its name).
async fn unknown_campaign(store: &Store, name: &str) -> anyhow::Error {
    let known: Vec<String> = store
        .campaign_counts(None)
        .await
        .map(|all| all.into_iter().map(|c| c.campaign).collect())
        .unwrap_or_default();
    let hint = if known.is_empty() {
        "no campaign has been sent from this database yet".to_string()
    } else {
        format!("campaigns in this database: {}", known.join(", "))
    };
    BadInput(format!(
        "no campaign named '{name}' has been sent yet ({hint}; a campaign's name is its `name =` line, or give its file)"
    ))
    .into()
}

async fn status_recipients(
    store: &Store,
    campaign: &str,
    state: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let state = match state {
        Some(s) => Some(OutboxState::parse(s).ok_or_else(|| {
            BadInput(format!(
                "--state {s}: not a state; use one of {}",
                OutboxState::ALL.map(OutboxState::as_str).join(", ")
            ))
        })?),
        None => None,
    };
    let Some(id) = store.find_campaign_id(campaign).await? else {
        return Err(unknown_campaign(store, campaign).await);
    };
    let rows = store.campaign_recipients(id, state).await?;
    if json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "email": r.email, "state": r.state, "attempts": r.attempts,
                    "last_reply": r.last_reply, "updated_at": format_millis(r.updated_at),
                })
            })
            .collect();
        print_json(&rows);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "no recipients{}",
            state
                .map(|s| format!(" in state {}", s.as_str()))
                .unwrap_or_default()
        );
    }
    if !rows.is_empty() {
        println!(
            "{:<40} {:<10} {:>8} {:<20}  last reply",
            "recipient", "state", "attempts", "updated"
        );
    }
    for r in &rows {
        say!(
            "{:<40} {:<10} {:>8} {:<20}  {}",
            r.email.as_deref().unwrap_or("(erased)"),
            r.state,
            r.attempts,
            format_millis(r.updated_at),
            r.last_reply.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

async fn status(
    config: &ConfigDir,
    store: &Store,
    campaign: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let counts = store
        .campaign_counts(campaign)
        .await
        .context("cannot read campaign status")?;
    if let Some(name) = campaign
        && counts.is_empty()
    {
        return Err(unknown_campaign(store, name).await);
    }
    let mut ab = Vec::new();
    let mut workers = Vec::new();
    let mut uncertain = Vec::new();
    for c in &counts {
        ab.push(match campaign_named(config, &c.campaign) {
            Some(file) => ab_status(store, &file).await?,
            None => None,
        });
        let id = store.find_campaign_id(&c.campaign).await?;
        workers.push(match id {
            Some(id) => {
                fairsend::send::campaign_workers(store, id, config.settings.database.lease).await?
            }
            None => Vec::new(),
        });
        uncertain.push(match id {
            Some(id) if c.count(OutboxState::Uncertain) > 0 => store.uncertain_rows(id).await?,
            _ => Vec::new(),
        });
    }
    if json {
        let objects: Vec<serde_json::Value> = counts
            .iter()
            .zip(&ab)
            .zip(&workers)
            .zip(&uncertain)
            .map(|(((c, ab), workers), uncertain)| {
                let mut object = serde_json::json!({"campaign": c.campaign, "states": c.states, "total": c.total(), "workers": workers, "uncertain": uncertain});
                if let Some(ab) = ab {
                    object["ab"] = ab.clone();
                }
                object
            })
            .collect();
        let value = match (campaign, objects.as_slice()) {
            (Some(_), [one]) => one.clone(),
            _ => serde_json::Value::Array(objects),
        };
        print_json(&value);
        return Ok(());
    }
    if counts.is_empty() {
        println!("no campaigns yet");
    }
    for (((c, ab), workers), uncertain) in counts.iter().zip(&ab).zip(&workers).zip(&uncertain) {
        let states: Vec<String> = OutboxState::ALL
            .iter()
            .map(|s| format!("{} {}", s.as_str(), c.count(*s)))
            .collect();
        println!(
            "{}: {} recipients — {}",
            c.campaign,
            c.total(),
            states.join(", ")
        );
        for w in workers {
            let ago = (fairsend::now_millis() - w.record.heartbeat_at).max(0) as f64 / 1000.0;
            println!(
                "  worker {} (host {}, pid {}): claimed {}, sent {}, last heartbeat {ago:.1} s ago{}",
                w.record.worker,
                w.record.host,
                w.record.pid,
                w.record.claimed,
                w.record.sent,
                if w.live {
                    ""
                } else {
                    " — presumed dead; the next live worker takes its rows"
                }
            );
        }
        print_uncertain(&c.campaign, uncertain);
        if let Some(ab) = ab {
            println!(
                "  A/B ({}), phase {}:",
                ab["metric"].as_str().unwrap_or(""),
                ab["phase"].as_str().unwrap_or("")
            );
            for v in ab["variants"].as_array().into_iter().flatten() {
                println!(
                    "    {:<50} group {:>5}, sent {:>5}, events {:>4}, rate {:.3}",
                    v["subject"].as_str().unwrap_or(""),
                    v["group_size"],
                    v["sent"],
                    v["events"],
                    v["rate"].as_f64().unwrap_or(0.0)
                );
            }
            if !ab["decision"].is_null() {
                let d = &ab["decision"];
                println!(
                    "    winner: {} (z = {:.3}, p = {:.4}{})",
                    d["subject"].as_str().unwrap_or(""),
                    d["statistic"].as_f64().unwrap_or(0.0),
                    d["p_value_or_probability"].as_f64().unwrap_or(1.0),
                    if d["fallback_used"] == true {
                        "; not significant, fallback used"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(())
}

/// The recipients whose delivery is uncertain, and what the operator can do about them.
fn print_uncertain(campaign: &str, rows: &[fairsend::store::UncertainRow]) {
    if rows.is_empty() {
        return;
    }
    println!(
        "  uncertain ({}): the server may have accepted these; not resent unless you run `fairsend send CAMPAIGN --resend-uncertain` for {campaign}",
        rows.len()
    );
    for row in rows {
        let when = chrono::DateTime::from_timestamp_millis(row.at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        println!("    {} ({when}): {}", row.email, row.reason);
    }
}

/// Loads a campaign, imports its contact files (as `send` would) and prepares its composer.
async fn prepare<'c>(
    config: &'c ConfigDir,
    store: &Store,
    campaign: &'c Campaign,
    skip_invalid: bool,
) -> anyhow::Result<Composer<'c>> {
    let secret = load_secret(config, store).await?;
    let pending = parse_campaign_contacts(config, campaign, skip_invalid)?;
    let composer = Composer::new(config, campaign, secret.clone())?;
    apply_campaign_contacts(store, pending, &secret).await?;
    Ok(composer)
}

fn config_problem(e: fairsend::config::ConfigError, json: bool) -> anyhow::Error {
    let finding = Finding {
        code: "CFG001",
        severity: Severity::Error,
        result: None,
        subject: match &e {
            fairsend::config::ConfigError::Field { file, field, .. } => {
                format!("{}: {field}", file.display())
            }
            fairsend::config::ConfigError::Read { file, .. }
            | fairsend::config::ConfigError::Syntax { file, .. } => file.display().to_string(),
        },
        // The subject already names the file and field: the message adds only the reason.
        message: match &e {
            fairsend::config::ConfigError::Field { reason, .. } => reason.clone(),
            fairsend::config::ConfigError::Syntax { message, .. } => message.clone(),
            fairsend::config::ConfigError::Read { source, .. } => {
                format!("cannot read the file: {source}")
            }
        },
    };
    if json {
        println!("{}", serde_json::json!({"findings": [finding]}));
    } else {
        print_findings(std::slice::from_ref(&finding));
    }
    Problems("check: the configuration has an error; nothing else was checked".into()).into()
}

fn print_findings(findings: &[Finding]) {
    const SHOWN_PER_CODE: usize = 20;
    let mut shown: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for f in findings {
        let n = shown.entry(f.code).or_default();
        *n += 1;
        if *n <= SHOWN_PER_CODE {
            println!(
                "{}",
                terminal::printable_lines(&format!(
                    "{}[{}] {}: {}",
                    f.severity.as_str(),
                    f.code,
                    f.subject,
                    f.message
                ))
            );
        }
    }
    for (code, n) in shown {
        if n > SHOWN_PER_CODE {
            println!(
                "… and {} more {code} finding(s) (all of them with --json)",
                n - SHOWN_PER_CODE
            );
        }
    }
}

async fn check(
    config: &ConfigDir,
    store: &Store,
    file: &Path,
    resolver: Option<&str>,
    skip_invalid: bool,
    json: bool,
) -> anyhow::Result<()> {
    let campaign = match config.load_campaign(file) {
        Ok(c) => c,
        Err(e) => return Err(config_problem(e, json)),
    };
    let dkim = load_dkim(config)?;
    let composer = prepare(config, store, &campaign, skip_invalid)
        .await?
        .with_dkim(dkim.as_ref());
    let mut report: CheckReport =
        check_campaign(config, &campaign, &composer, store, Depth::EveryMessage).await?;
    let transport = &config.settings.transport.url;
    report
        .findings
        .extend(insecure_link_findings(&config.settings, transport));
    report
        .findings
        .extend(dns_preflight(config, &campaign, transport, resolver, dkim.as_ref()).await?);
    if json {
        print_json(&report);
    } else {
        print_findings(&report.findings);
        let a = &report.audience;
        let warnings = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count();
        println!(
            "check {}: {} selected, {} eligible ({} passive, {} ceased, {} suppressed excluded); {} message(s) rendered and checked; {} footer variant(s); {} error(s), {} warning(s)",
            campaign.name,
            a.selected,
            a.eligible,
            a.excluded_passive,
            a.excluded_ceased,
            a.excluded_suppressed,
            report.messages_checked,
            report.variants,
            report.errors(),
            warnings
        );
    }
    if report.errors() > 0 {
        return Err(Problems(format!("{}: not sendable", campaign.name)).into());
    }
    Ok(())
}

async fn review(
    config: &ConfigDir,
    store: &Store,
    file: &Path,
    out: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let campaign = config.load_campaign(file)?;
    prepare(config, store, &campaign, false).await?;
    let variants = footer_variants(config, &campaign, store).await?;
    let index = write_review(out, &campaign, &variants)?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "campaign": campaign.name,
                "index": index.display().to_string(),
                "combined_hash": combined_hash(&variants),
                "variants": variants.iter().map(|v| serde_json::json!({
                    "id": v.key.id(), "register": v.key.register, "locale": v.key.locale,
                    "legal_basis": v.key.legal_basis, "recipients": v.recipients, "sha256": v.hash,
                })).collect::<Vec<_>>(),
            })
        );
    } else {
        for v in &variants {
            println!(
                "{:<50} {:>6} recipient(s)  {}",
                v.key.id(),
                v.recipients,
                &v.hash[..12]
            );
        }
        println!(
            "{} variant(s) written; open {}",
            variants.len(),
            index.display()
        );
    }
    Ok(())
}

async fn approve(config: &ConfigDir, store: &Store, file: &Path, by: &str) -> anyhow::Result<()> {
    let by = by.trim();
    if by.is_empty() || by.chars().any(char::is_control) {
        return Err(BadInput("--by needs the approver's name".into()).into());
    }
    let campaign = config.load_campaign(file)?;
    prepare(config, store, &campaign, false).await?;
    let variants = footer_variants(config, &campaign, store).await?;
    if variants.is_empty() {
        return Err(
            Problems("nothing to approve: the campaign has no eligible recipient".into()).into(),
        );
    }
    let combined = combined_hash(&variants);
    store
        .record_approval(&campaign.name, by, &combined, &variant_hashes(&variants))
        .await?;
    println!(
        "approved {} ({} footer variant(s), sha256 {}) by {by}",
        campaign.name,
        variants.len(),
        &combined[..16]
    );
    Ok(())
}

async fn preview(
    config: &ConfigDir,
    store: &Store,
    file: &Path,
    to: &str,
    format: PreviewFormat,
) -> anyhow::Result<()> {
    let address =
        fairsend::audience::EmailAddress::parse(to).map_err(|e| BadInput(format!("--to: {e}")))?;
    let campaign = config.load_campaign(file)?;
    let composer = prepare(config, store, &campaign, false).await?;
    let campaign_id = store.campaign_id(&campaign.name).await?;
    store
        .materialise_outbox(campaign_id, &campaign.registers)
        .await?;
    let Some(outbox_id) = store.outbox_row_for(campaign_id, &address).await? else {
        return Err(BadInput(format!(
            "{address} is not in the audience of {}",
            campaign.name
        ))
        .into());
    };
    let Some(gate) = store.recipient(outbox_id).await? else {
        return Err(BadInput(format!(
            "{address} is not in the audience of {}",
            campaign.name
        ))
        .into());
    };
    let facts = fairsend::compliance::ContactFacts::of_member(config, &gate);
    match fairsend::compliance::eligibility(&facts, chrono::Utc::now().date_naive()) {
        Eligibility::Excluded(Exclusion::Suppressed(reason)) => {
            return Err(Problems(format!(
                "{address} would receive nothing: suppressed ({})",
                reason.as_str()
            ))
            .into());
        }
        Eligibility::Excluded(_) => {
            return Err(Problems(format!(
                "{address} would receive nothing: the contact is {}",
                gate.status.as_str()
            ))
            .into());
        }
        Eligibility::Eligible | Eligibility::Blocked(_) => {}
    }
    let composer = with_tracking(composer, store, &campaign).await?;
    let message = composer.compose(&gate.recipient)?;
    match format {
        PreviewFormat::Eml => {
            use std::io::Write;
            std::io::stdout().write_all(&message.bytes)?;
        }
        PreviewFormat::Text => print!("{}", message.text),
        PreviewFormat::Html => print!("{}", message.html),
    }
    Ok(())
}

fn parse_address(text: &str) -> anyhow::Result<fairsend::audience::EmailAddress> {
    fairsend::audience::EmailAddress::parse(text)
        .map_err(|e| BadInput(format!("{text}: {e}")).into())
}

async fn optout(config: &ConfigDir, store: &Store, action: OptoutAction) -> anyhow::Result<()> {
    match action {
        OptoutAction::Add { email, reason } => {
            let address = parse_address(&email)?;
            if reason
                .as_deref()
                .is_some_and(|r| r.chars().any(char::is_control))
            {
                return Err(BadInput("--reason may not contain line breaks".into()).into());
            }
            let secret = load_secret(config, store).await?;
            let created = fairsend::suppress::opt_out(
                store,
                &secret,
                &address,
                fairsend::suppress::OptOutSource::Manual,
                None,
                reason.as_deref(),
            )
            .await?;
            if created {
                println!("{address} opted out: suppressed in every campaign from now on");
            } else {
                println!("{address} had already opted out; nothing changed");
            }
        }
        OptoutAction::List { json } => {
            let entries = store.optouts().await?;
            if json {
                let rows: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "at": format_millis(e.at), "email": e.email, "source": e.source,
                            "campaign": e.campaign, "detail": e.detail,
                        })
                    })
                    .collect();
                print_json(&rows);
            } else {
                if entries.is_empty() {
                    say!("no opt-outs");
                }
                for e in entries {
                    say!(
                        "{}  {:<40} {:<10} {}{}",
                        format_millis(e.at),
                        e.email.as_deref().unwrap_or("(erased)"),
                        e.source.as_str(),
                        e.campaign.as_deref().unwrap_or("-"),
                        e.detail.map(|d| format!("  ({d})")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

async fn erase(config: &ConfigDir, store: &Store, email: &str) -> anyhow::Result<()> {
    let address = parse_address(email)?;
    let secret = load_secret(config, store).await?;
    let report = fairsend::suppress::erase(store, &secret, &address).await?;
    if report.contact_found {
        println!(
            "erased {address}: contact, {} register entr(ies), {} outbox row(s) deleted; only a keyed hash remains, suppressed",
            report.memberships_deleted, report.outbox_rows_deleted
        );
    } else {
        println!(
            "{address} was not a contact; its keyed hash is now suppressed so that it can never be imported"
        );
    }
    Ok(())
}

async fn serve(
    config: ConfigDir,
    store: Store,
    listen: std::net::SocketAddr,
    args: ServeArgs,
) -> anyhow::Result<()> {
    let limits = args.limits()?;
    let metrics_listen = args.metrics_listen()?;
    let secret = load_secret(&config, &store).await?;
    let admin_password = fairsend::web::admin::AdminPassword::from_env("FAIRSEND_ADMIN_PASSWORD")
        .map_err(BadInput)?;
    let metrics_token =
        fairsend::web::admin::MetricsToken::from_env("FAIRSEND_METRICS_TOKEN").map_err(BadInput)?;
    // Anyone with the source knows the development secret, and with it can forge tokens and
    // CSRF tokens: it may serve only the machine itself, and never the admin pages.
    if secret.is_development() {
        let var = &config.settings.signing_secret_env;
        if admin_password.is_some() {
            return Err(BadInput(format!(
                "refusing to enable the admin pages with the development signing secret: set {var} \
                 to at least 32 random bytes (for example `openssl rand -hex 32`), or unset \
                 FAIRSEND_ADMIN_PASSWORD"
            ))
            .into());
        }
        if !listen.ip().is_loopback() {
            return Err(BadInput(format!(
                "refusing to listen on {listen} with the development signing secret: set {var} \
                 to at least 32 random bytes (for example `openssl rand -hex 32`), or listen on \
                 a loopback address"
            ))
            .into());
        }
    }
    match &admin_password {
        None => {
            eprintln!("note: FAIRSEND_ADMIN_PASSWORD is not set: the /admin pages are disabled")
        }
        Some(password) => {
            let ended =
                fairsend::web::admin::end_sessions_of_other_passwords(&store, &secret, password)
                    .await?;
            if ended > 0 {
                eprintln!("the admin password changed: {ended} earlier session(s) ended");
            }
        }
    }
    let state = fairsend::web::AppState {
        store,
        secret,
        config: Arc::new(config),
        admin_password,
        metrics_token,
        limits: Arc::new(limits),
    };
    fairsend::web::serve(listen, metrics_listen, state)
        .await
        .with_context(|| format!("cannot serve on {listen}"))
}

fn format_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

async fn decide_bounce(
    config: &ConfigDir,
    store: &Store,
    id: i64,
    by: &str,
    confirm: bool,
) -> anyhow::Result<()> {
    use fairsend::store::{BounceDecision, DecisionOutcome};
    let settings = &config.settings.bounces;
    let decision = if confirm {
        BounceDecision::Confirm
    } else {
        BounceDecision::Dismiss
    };
    let soft_limit = (
        i64::from(settings.soft_bounce_limit),
        i64::from(settings.soft_bounce_days),
    );
    match store.decide_bounce(id, decision, by, soft_limit).await? {
        DecisionOutcome::NoSuchBounce => {
            Err(BadInput(format!("bounce {id}: no such bounce (see `bounces list`)")).into())
        }
        DecisionOutcome::NotUnverified => Err(Problems(format!(
            "bounce {id} is not waiting for a decision (only unverified bounces are confirmed or dismissed)"
        ))
        .into()),
        DecisionOutcome::Done { suppressed } => {
            let what = match (confirm, suppressed) {
                (true, true) => "confirmed; the address is suppressed",
                (true, false) => "confirmed; recorded (no suppression follows from it yet)",
                (false, _) => "dismissed; it changes nothing",
            };
            println!("bounce {id} {what}");
            Ok(())
        }
    }
}

async fn bounces(config: &ConfigDir, store: &Store, action: BouncesAction) -> anyhow::Result<()> {
    match action {
        BouncesAction::Ingest {
            files,
            mbox,
            maildir,
            json,
        } => {
            let secret = load_secret(config, store).await?;
            let stdin = files.len() == 1 && files[0] == Path::new("-");
            let summary = match (files.as_slice(), mbox, maildir) {
                ([], None, Some(dir)) => ingest_maildir(config, store, &secret, &dir).await?,
                ([], Some(path), None) if is_maildir(&path) => {
                    ingest_maildir(config, store, &secret, &path).await?
                }
                ([], Some(file), None) => {
                    ingest_all(config, store, &secret, read_messages(&file)?).await?
                }
                (_, None, None) if stdin => {
                    let mut raw = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw)?;
                    ingest_all(config, store, &secret, vec![raw]).await?
                }
                ([_, ..], None, None) if !files.iter().any(|f| f == Path::new("-")) => {
                    // Read them all first: a missing file refuses the run before anything is
                    // recorded.
                    let mut messages = Vec::new();
                    for file in &files {
                        messages.extend(read_messages(file)?);
                    }
                    ingest_all(config, store, &secret, messages).await?
                }
                _ => {
                    return Err(BadInput(
                        "give message files (FILE.eml …), `-` alone (stdin), --mbox PATH or --maildir DIR"
                            .into(),
                    )
                    .into());
                }
            };
            if json {
                print_json(&summary);
            } else {
                println!(
                    "{} message(s): {} new, {} already seen; {} DSN, {} complaint(s), {} auto-reply(ies), {} reply(ies), {} unknown; {} hard-bounced address(es) suppressed, {} after repeated soft bounces, {} opt-out(s); {} unverified report(s) waiting for `bounces confirm|dismiss`",
                    summary.messages,
                    summary.new,
                    summary.duplicates,
                    summary.dsn,
                    summary.complaints,
                    summary.auto_replies,
                    summary.replies,
                    summary.unknown,
                    summary.suppressed_hard,
                    summary.suppressed_soft_limit,
                    summary.optouts,
                    summary.unverified
                );
            }
        }
        BouncesAction::List { limit, json } => {
            let entries = store.bounces(limit).await?;
            if json {
                let rows: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|b| serde_json::json!({
                        "id": b.id, "verification": b.verification,
                        "at": format_millis(b.at), "recipient": b.recipient, "campaign": b.campaign,
                        "kind": b.kind, "class": b.class, "reason": b.reason, "status": b.status,
                        "reply_code": b.reply_code, "diagnostic": b.diagnostic, "action": b.action,
                    }))
                    .collect();
                print_json(&rows);
            } else {
                if entries.is_empty() {
                    say!("no bounces");
                }
                for b in entries {
                    say!(
                        "{:>6} {}  {:<10} {:<36} {:<20} {:<4} {:<20} {:<7} {:<22} {}",
                        b.id,
                        format_millis(b.at),
                        b.verification,
                        b.recipient.as_deref().unwrap_or("(unknown)"),
                        b.campaign.as_deref().unwrap_or("-"),
                        b.class.as_deref().unwrap_or("-"),
                        b.reason,
                        b.status.as_deref().unwrap_or("-"),
                        b.action,
                        b.diagnostic
                            .as_deref()
                            .unwrap_or("")
                            .chars()
                            .take(80)
                            .collect::<String>()
                    );
                }
            }
        }
        BouncesAction::Confirm { id, by } => decide_bounce(config, store, id, &by, true).await?,
        BouncesAction::Dismiss { id, by } => decide_bounce(config, store, id, &by, false).await?,
        BouncesAction::Parse { files, json } => {
            let secret = load_secret(config, store).await?;
            let keys = fairsend::inbound::Keys {
                secret: &secret,
                bounces: &config.settings.bounces,
            };
            for file in files {
                let raw = std::fs::read(&file)
                    .map_err(|e| BadInput(format!("{}: cannot read: {e}", file.display())))?;
                let parsed = fairsend::inbound::parse(&raw, &keys);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "file": file.display().to_string(),
                            "kind": parsed.kind,
                            "recipients": parsed.recipients.iter().map(|r| serde_json::json!({
                                "address": r.address, "action": r.action, "status": r.status,
                                "reply_code": r.reply_code, "diagnostic": r.diagnostic,
                                "class": r.class, "reason": r.reason,
                            })).collect::<Vec<_>>(),
                        })
                    );
                } else {
                    say!("{}: {}", file.display(), parsed.kind.as_str());
                    for r in &parsed.recipients {
                        say!(
                            "  {} {} status={} code={} {}",
                            r.address.as_deref().unwrap_or("(unknown recipient)"),
                            r.class.map(|c| c.as_str()).unwrap_or("-"),
                            r.status.as_deref().unwrap_or("-"),
                            r.reply_code
                                .map(|c| c.to_string())
                                .unwrap_or_else(|| "-".into()),
                            r.reason.as_str()
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[derive(Default, serde::Serialize)]
struct IngestSummary {
    messages: usize,
    new: usize,
    duplicates: usize,
    dsn: usize,
    complaints: usize,
    auto_replies: usize,
    replies: usize,
    unknown: usize,
    suppressed_hard: usize,
    suppressed_soft_limit: usize,
    optouts: usize,
    /// Reports that name no message fairsend sent: recorded, waiting for an operator.
    unverified: usize,
}

async fn ingest_all(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    messages: Vec<Vec<u8>>,
) -> anyhow::Result<IngestSummary> {
    let mut summary = IngestSummary::default();
    for raw in messages {
        ingest_one(config, store, secret, &raw, &mut summary).await?;
    }
    Ok(summary)
}

async fn ingest_one(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    raw: &[u8],
    summary: &mut IngestSummary,
) -> anyhow::Result<()> {
    use fairsend::inbound::Kind;
    let done =
        fairsend::inbound::ingest::ingest(store, secret, &config.settings.bounces, raw).await?;
    summary.messages += 1;
    if done.applied.duplicate {
        summary.duplicates += 1;
        return Ok(());
    }
    summary.new += 1;
    match done.parsed.kind {
        Kind::Dsn => summary.dsn += 1,
        Kind::Complaint => summary.complaints += 1,
        Kind::AutoReply => summary.auto_replies += 1,
        Kind::Reply => summary.replies += 1,
        Kind::Unknown => summary.unknown += 1,
    }
    summary.suppressed_hard += done.applied.suppressed_hard;
    summary.suppressed_soft_limit += done.applied.suppressed_soft_limit;
    summary.optouts += done.applied.optouts;
    summary.unverified += done.applied.unverified;
    Ok(())
}

/// What `--mbox` was given: a directory is a Maildir (its `new/` is required), a file an mbox.
fn is_maildir(path: &Path) -> bool {
    path.is_dir()
}

/// The messages of one file: an mbox is split, any other file is one message.
fn read_messages(file: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let raw = std::fs::read(file)
        .map_err(|e| BadInput(format!("{}: cannot read: {e}", file.display())))?;
    Ok(fairsend::inbound::split_mbox(&raw)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect())
}

/// Processes `DIR/new/*` and moves each handled file to `DIR/cur/` (maildir convention).
async fn ingest_maildir(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    dir: &Path,
) -> anyhow::Result<IngestSummary> {
    let new = dir.join("new");
    let cur = dir.join("cur");
    let entries = std::fs::read_dir(&new)
        .map_err(|e| BadInput(format!("{}: not a maildir: {e}", new.display())))?;
    std::fs::create_dir_all(&cur)?;
    let mut total = IngestSummary::default();
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in files {
        let raw =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        ingest_one(config, store, secret, &raw, &mut total).await?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = if name.contains(":2,") {
            cur.join(&name)
        } else {
            cur.join(format!("{name}:2,"))
        };
        std::fs::rename(&file, &target)
            .with_context(|| format!("cannot move {} to {}", file.display(), target.display()))?;
    }
    Ok(total)
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn load_dkim(config: &ConfigDir) -> anyhow::Result<Option<fairsend::dns::DkimSigning>> {
    Ok(config
        .settings
        .dkim
        .as_ref()
        .map(fairsend::dns::DkimSigning::load)
        .transpose()?)
}

fn resolver_for(config: &ConfigDir, flag: Option<&str>) -> anyhow::Result<fairsend::dns::Dns> {
    let server = match flag {
        Some(text) => Some(
            fairsend::config::parse_socket_addr(text)
                .ok_or_else(|| BadInput(format!("--resolver: '{text}' is not IP:PORT")))?,
        ),
        None => config.settings.dns.resolver,
    };
    Ok(fairsend::dns::Dns::new(
        server,
        config.settings.dns.timeout,
    )?)
}

/// The DNS pre-flight as `check` and `send` run it: for mail that goes out over SMTP, or when
/// a resolver is named; an outbox transport reaches no one, so DNS is skipped (and said so).
async fn dns_preflight(
    config: &ConfigDir,
    campaign: &Campaign,
    transport: &TransportUrl,
    resolver: Option<&str>,
    dkim: Option<&fairsend::dns::DkimSigning>,
) -> anyhow::Result<Vec<Finding>> {
    let asked = resolver.is_some() || config.settings.dns.resolver.is_some();
    if matches!(transport, TransportUrl::Outbox(_)) && !asked {
        return Ok(vec![Finding::new(
            "DNS000",
            Severity::Info,
            "[transport] url",
            format!(
                "DNS checks skipped: {transport} delivers nowhere (run `fairsend dns check` to check anyway)"
            ),
        )]);
    }
    let dns = resolver_for(config, resolver)?;
    Ok(fairsend::dns::preflight(&config.settings, campaign, transport, &dns, dkim).await)
}

async fn dns_check(
    config: &ConfigDir,
    file: &Path,
    resolver: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let campaign = config.load_campaign(file)?;
    let dkim = load_dkim(config)?;
    let dns = resolver_for(config, resolver)?;
    let findings = fairsend::dns::preflight(
        &config.settings,
        &campaign,
        &config.settings.transport.url,
        &dns,
        dkim.as_ref(),
    )
    .await;
    if json {
        for f in &findings {
            println!(
                "{}",
                serde_json::json!({
                    "code": f.code, "severity": f.severity, "subject": f.subject, "result": f.result, "message": f.message,
                })
            );
        }
    } else {
        print_findings(&findings);
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 {
        return Err(Problems(format!("dns check: {errors} error(s)")).into());
    }
    Ok(())
}

async fn hygiene(config: &ConfigDir, store: &Store, action: HygieneAction) -> anyhow::Result<()> {
    use fairsend::audience::hygiene::{
        Departed, parse_ceased_file, parse_departed_file, plan_purge, retention_end,
    };
    let report_errors = |errors: &[fairsend::audience::RowError]| {
        for e in errors {
            tell!("{e}");
        }
    };
    match action {
        HygieneAction::Ceased { file } => {
            let (ids, errors) = parse_ceased_file(&file)?;
            report_errors(&errors);
            let (mut changed, mut matched, mut unknown) = (0, 0, 0);
            for id in &ids {
                let (c, m) = store.mark_ceased(id.as_str()).await?;
                changed += c;
                matched += m;
                if m == 0 {
                    unknown += 1;
                }
            }
            println!(
                "{}: {} ceased business ID(s): {changed} contact(s) newly ceased, {} already ceased; {unknown} ID(s) match no contact; {} row(s) rejected",
                file.display(),
                ids.len(),
                matched - changed,
                errors.len()
            );
            if !errors.is_empty() {
                return Err(Problems(format!(
                    "{} row(s) were not applied; the others were",
                    errors.len()
                ))
                .into());
            }
        }
        HygieneAction::Passivate { file } => {
            let (people, errors) = parse_departed_file(&file)?;
            report_errors(&errors);
            let (mut changed, mut already, mut unknown) = (0, 0, 0);
            for person in &people {
                let addresses = match person {
                    Departed::Email(a) => vec![a.clone()],
                    Departed::Name {
                        business_id,
                        first_name,
                        last_name,
                    } => {
                        store
                            .contacts_by_name(business_id.as_str(), first_name, last_name)
                            .await?
                    }
                };
                if addresses.is_empty() {
                    unknown += 1;
                }
                for address in addresses {
                    match store.mark_passive(&address).await? {
                        (true, _) => changed += 1,
                        (false, true) => already += 1,
                        (false, false) => unknown += 1,
                    }
                }
            }
            println!(
                "{}: {changed} contact(s) made passive, {already} already passive or ceased, {unknown} not found; {} row(s) rejected",
                file.display(),
                errors.len()
            );
            if !errors.is_empty() {
                return Err(Problems(format!(
                    "{} row(s) were not applied; the others were",
                    errors.len()
                ))
                .into());
            }
        }
        HygieneAction::Purge { dry_run, json } => {
            let entries = store.entry_ages().await?;
            let now = chrono::Utc::now();
            let expired = fairsend::compliance::eligibility::expired_register_names(
                &config.registers,
                now.date_naive(),
            );
            let plan = plan_purge(
                &entries,
                &config.registers,
                &expired,
                config.settings.privacy.retention_months,
                now,
            );
            let outcome = if dry_run {
                None
            } else {
                Some(
                    store
                        .purge_entries(&plan.iter().map(|p| p.membership_id).collect::<Vec<_>>())
                        .await?,
                )
            };
            if json {
                print_json(
                    &serde_json::json!({"dry_run": dry_run, "entries": plan, "deleted": outcome}),
                );
            } else {
                for item in &plan {
                    println!(
                        "{} {:<40} register {:<16} {}",
                        if dry_run { "would delete" } else { "deleted" },
                        item.email,
                        item.register,
                        match item.reason {
                            fairsend::audience::hygiene::PurgeReason::PastRetention => format!(
                                "retention ended {}",
                                item.retention_end.as_deref().unwrap_or("?")
                            ),
                            fairsend::audience::hygiene::PurgeReason::PurchasedRegisterExpired =>
                                "purchased register expired".into(),
                        }
                    );
                }
                match outcome {
                    None => println!(
                        "dry run: {} register entr(ies) would be deleted; nothing was changed",
                        plan.len()
                    ),
                    Some(o) => println!(
                        "{} register entr(ies) deleted; {} contact(s) left with no entry were deleted ({} outbox row(s)); suppressions keep only keyed hashes",
                        o.entries_deleted, o.contacts_deleted, o.outbox_rows_deleted
                    ),
                }
            }
        }
        HygieneAction::Report {
            unengaged_after,
            json,
        } => {
            let counts = store.register_counts(unengaged_after).await?;
            let entries = store.entry_ages().await?;
            let now = chrono::Utc::now();
            let soon = now + chrono::Duration::days(30);
            let mut rows = Vec::new();
            for (register, c) in &counts {
                let (mut near, mut past) = (0, 0);
                for e in entries.iter().filter(|e| &e.register == register) {
                    match retention_end(
                        e,
                        &config.registers,
                        config.settings.privacy.retention_months,
                    ) {
                        Some(end) if end <= now => past += 1,
                        Some(end) if end <= soon => near += 1,
                        _ => {}
                    }
                }
                let total = c.active + c.passive + c.ceased;
                rows.push(serde_json::json!({
                    "register": register,
                    "kind": config.registers.get(register).map(|r| r.kind.as_str()),
                    "contacts": total,
                    "by_status": {"active": c.active, "passive": c.passive, "ceased": c.ceased},
                    "ceased_share": if total > 0 { c.ceased as f64 / total as f64 } else { 0.0 },
                    "never_sent": c.never_sent,
                    "unengaged": c.unengaged,
                    "unengaged_after_sends": unengaged_after,
                    "near_retention_end": near,
                    "past_retention": past,
                }));
            }
            if json {
                print_json(&rows);
            } else {
                for r in &rows {
                    println!(
                        "{:<16} {:>6} contacts: {} active, {} passive, {} ceased ({:.1}% ceased); {} never sent to; {} unengaged after {} sends; retention: {} within 30 days, {} past",
                        r["register"].as_str().unwrap_or(""),
                        r["contacts"],
                        r["by_status"]["active"],
                        r["by_status"]["passive"],
                        r["by_status"]["ceased"],
                        r["ceased_share"].as_f64().unwrap_or(0.0) * 100.0,
                        r["never_sent"],
                        r["unengaged"],
                        unengaged_after,
                        r["near_retention_end"],
                        r["past_retention"]
                    );
                }
            }
        }
    }
    Ok(())
}

/// Fixes the campaign's trackable links (the first send stores them; the redirect endpoint
/// allows only these) and makes the composer rewrite them.
async fn with_tracking<'c>(
    composer: Composer<'c>,
    store: &Store,
    campaign: &Campaign,
) -> anyhow::Result<Composer<'c>> {
    if !campaign.tracks_clicks() {
        return Ok(composer);
    }
    let campaign_id = store.campaign_id(&campaign.name).await?;
    let links = store
        .set_campaign_links(campaign_id, &composer.trackable_links())
        .await?;
    Ok(composer.with_click_tracking(links))
}

/// The campaign file whose `name` is `name`, among `config/campaigns/*.toml`.
fn campaign_named(config: &ConfigDir, name: &str) -> Option<Campaign> {
    std::fs::read_dir(config.dir.join("campaigns"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| config.load_campaign(&p).ok())
        .find(|c| c.name == name)
}

/// The `"ab"` object of `status --json` for an A/B campaign.
async fn ab_status(
    store: &Store,
    campaign: &Campaign,
) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(ab) = &campaign.ab else {
        return Ok(None);
    };
    let Some(campaign_id) = store.find_campaign_id(&campaign.name).await? else {
        return Ok(None);
    };
    let state = store.ab_state(campaign_id).await?;
    let groups = store.ab_group_counts(campaign_id).await?;
    let observed = fairsend::abtest::observe(
        &store.ab_test_messages(campaign_id).await?,
        ab.metric,
        ab.subjects.len(),
    );
    let phase = match (&state.decision, state.test_finished_at) {
        (Some(_), _) => "remainder",
        (None, Some(_)) => "waiting",
        (None, None) if groups.is_empty() => "not_started",
        (None, None) => "test",
    };
    let variants: Vec<serde_json::Value> = ab
        .subjects
        .iter()
        .enumerate()
        .map(|(i, subject)| {
            let (size, sent) = groups.iter().find(|(v, _, _)| *v == i).map(|(_, s, n)| (*s, *n)).unwrap_or((0, 0));
            let o = observed.get(i).copied().unwrap_or(fairsend::abtest::Observed { sent: 0, events: 0 });
            serde_json::json!({"subject": subject, "group_size": size, "sent": sent, "events": o.events, "rate": o.rate()})
        })
        .collect();
    Ok(Some(serde_json::json!({
        "phase": phase,
        "metric": ab.metric,
        "variants": variants,
        "decision": state.decision.map(|(_, d)| serde_json::json!({
            "winner": d.winner, "subject": ab.subjects.get(d.winner), "method": d.method, "statistic": d.statistic,
            "p_value_or_probability": d.p_value_or_probability, "fallback_used": d.fallback_used,
        })),
    })))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every subcommand, with the path of subcommands leading to it.
    fn arguments(command: &clap::Command, path: String, out: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments() {
            out.push((path.clone(), arg.clone()));
        }
        for sub in command.get_subcommands() {
            arguments(sub, format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_option_and_subcommand_has_a_description() {
        let cli = super::Cli::command();
        cli.clone().debug_assert();
        let mut all = Vec::new();
        arguments(&cli, "fairsend".into(), &mut all);
        let undescribed: Vec<String> = all
            .iter()
            .filter(|(_, a)| {
                !matches!(a.get_id().as_str(), "help" | "version")
                    && a.get_help().is_none_or(|h| h.to_string().trim().is_empty())
            })
            .map(|(path, a)| format!("{path} {}", a.get_id()))
            .collect();
        assert!(
            undescribed.is_empty(),
            "options without help: {undescribed:#?}"
        );

        fn subcommands(c: &clap::Command, path: &str, out: &mut Vec<String>) {
            for sub in c.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    out.push(path.clone());
                }
                subcommands(sub, &path, out);
            }
        }
        let mut missing = Vec::new();
        subcommands(&cli, "fairsend", &mut missing);
        assert!(
            missing.is_empty(),
            "subcommands without a description: {missing:#?}"
        );
    }

    /// Every `FAIRSEND_…` variable named anywhere in the source is listed in `--help`.
    #[test]
    fn every_environment_variable_is_in_the_help() {
        let help = super::Cli::command().render_long_help().to_string();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut names = std::collections::BTreeSet::new();
        let mut dirs = vec![src];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).expect("read src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read");
                    for (at, _) in text.match_indices("\"FAIRSEND_") {
                        let name: String = text[at + 1..]
                            .chars()
                            .take_while(|c| {
                                c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit()
                            })
                            .collect();
                        names.insert(name);
                    }
                }
            }
        }
        names.extend(["PGPASSWORD".to_string(), "NO_COLOR".to_string()]);
        assert!(names.len() >= 6, "{names:?}");
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !help.contains(n.as_str()))
            .collect();
        assert!(missing.is_empty(), "not in --help: {missing:?}");
    }
}
