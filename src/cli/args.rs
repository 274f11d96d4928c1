//! The command line's grammar: clap definitions of every subcommand, its flags and their
//! help, and the `--help` list of environment variables. Parsing only: no use case runs here,
//! and nothing is printed but clap's own help and usage errors.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::BadInput;

/// Every environment variable fairsend reads, for `--help` (a test checks that each variable
/// named in the source is here).
pub const ENVIRONMENT: &str = "\
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
  FAIRSEND_WEBHOOK_TEST_ONLY  =1 only in fairsend's own tests: allows [webhooks.ses] test_ca_file
                           and test_connect (a test CA for the SNS certificate); never in production
  FAIRSEND_TEST_CRASH_AFTER_COMMIT  debug builds only, fairsend's own tests: `bounces poll`
                           aborts after N committed messages (a crash before the IMAP move)
  FAIRSEND_TEST_NOW        debug builds only, fairsend's own tests: the moment (RFC 3339) the
                           clock of send windows starts from (`send`, `status`)
  FAIRSEND_IMPORT_BATCH_ROWS  debug builds only, fairsend's own tests: rows per batch of
                           `import` (batch boundaries inside a test's small file)
  SMTP and IMAP credentials, the DKIM key and the provider webhooks' secrets come from the
  variables that fairsend.toml names ([transport] and [bounces.imap] username_env /
  password_env, [dkim] private_key_env, [webhooks.*] *_env).";

#[derive(Parser)]
#[command(
    name = "fairsend",
    version,
    about = "Compliance-aware B2B email campaign sender",
    after_help = ENVIRONMENT
)]
pub struct Cli {
    /// Configuration directory (fairsend.toml, registers.toml, campaigns/, content/).
    #[arg(long, global = true, default_value = "config")]
    pub config: PathBuf,
    /// Database URL (sqlite://FILE or postgres://USER@HOST/DB); defaults to [database] url in
    /// fairsend.toml (sqlite://fairsend.db).
    #[arg(
        long,
        global = true,
        env = "FAIRSEND_DATABASE_URL",
        hide_env_values = true
    )]
    pub db: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PreviewFormat {
    Eml,
    Text,
    Html,
}

#[derive(Subcommand)]
pub enum HygieneAction {
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
pub enum DnsAction {
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
pub enum BouncesAction {
    /// Read the IMAP mailbox of [bounces.imap] once: each message is ingested as `ingest`
    /// would, then moved to the configured folder (or flagged) once its effects are committed.
    Poll {
        /// Print the summary as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
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
pub enum KeysAction {
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
pub enum ConsentAction {
    /// The proof of EMAIL's consents: when asked for and confirmed, the notice's SHA-256,
    /// version and text, the form's language and the truncated IP addresses.
    Show {
        /// The person's address.
        email: String,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum OptoutAction {
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
pub enum Command {
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
    Send(SendArgs),
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
    /// Pause a campaign: no worker starts a new transaction (within a second, in every
    /// process) until `resume`; messages already on the wire finish.
    Pause {
        /// The campaign's name or its file (campaigns/NAME.toml).
        campaign: String,
        /// Who pauses (for the audit log).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Resume a paused campaign: waiting workers go on; a stopped run goes on with `send`.
    Resume {
        /// The campaign's name or its file (campaigns/NAME.toml).
        campaign: String,
        /// Who resumes (for the audit log).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Cancel a campaign for good: every message not yet sent becomes `cancelled` and is
    /// never sent; it cannot be undone.
    Cancel {
        /// The campaign's name or its file (campaigns/NAME.toml).
        campaign: String,
        /// Who cancels (for the audit log).
        #[arg(long, default_value = "cli")]
        by: String,
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
    /// Consents given through signup forms: the proof kept for each.
    Consent {
        #[command(subcommand)]
        action: ConsentAction,
    },
    /// Who the campaign would be sent to now, and who of its registers is left out by which
    /// rule (suppressed, passive, ceased, expired register, consumer address without consent,
    /// or outside the segment: where, not_sent_within, engaged_within, exclude_campaigns),
    /// with counts per rule; --json adds the lists. Changes nothing.
    Audience {
        /// The campaign's file (campaigns/NAME.toml) or its name.
        campaign: String,
        /// Print JSON, with the lists of selected and excluded contacts.
        #[arg(long)]
        json: bool,
    },
    /// A campaign's results: sent, delivered, bounces by reason, complaints, opt-outs by
    /// source, clicks per link, replies and (unreliable) opens, per A/B variant and per
    /// register, with complaint and opt-out rates against mailbox providers' limits. Only
    /// verified bounces and complaints count. Delivered: no bounce after [report]
    /// delivered_after (default 3d).
    Report {
        /// The campaign's name or its file (campaigns/NAME.toml).
        campaign: String,
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV (scope, name, metric, key, value) instead of text.
        #[arg(long)]
        csv: bool,
    },
    /// Serve the unsubscribe pages, one-click unsubscribe, link tracking and the admin pages.
    ///
    /// Public: /u/TOKEN (the unsubscribe page, in the recipient's language, and the RFC 8058
    /// one-click POST), /c/TOKEN and /o/TOKEN (click and open tracking, only for A/B tests
    /// that measure them), /s/REGISTER (the signup form of a register with `signup` in
    /// registers.toml, double opt-in), /hooks/ses|sendgrid|mailgun|postmark (provider
    /// webhooks of [webhooks]), /healthz, /metrics (Prometheus counts, no personal data).
    ///
    /// Admin pages: /admin (campaigns), /admin/campaigns/NAME (results report with charts),
    /// /admin/bounces (re-classify), /admin/optouts (manual opt-out, erasure), /admin/review
    /// (footer variants, approval). They are enabled only when FAIRSEND_ADMIN_PASSWORD is set;
    /// log in at /admin/login with that password.
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
    /// Per-state counts of one campaign or of all, its run state (active, paused, cancelled)
    /// and when its send window next opens; with --recipients, who each row went to and how
    /// it ended.
    Status {
        /// The campaign's name or its file (campaigns/NAME.toml); all campaigns when omitted.
        campaign: Option<String>,
        /// List the campaign's recipients: address, state, attempts, last SMTP reply, time.
        #[arg(long, requires = "campaign")]
        recipients: bool,
        /// List only the recipients whose rows are in this state (queued, sending, sent,
        /// deferred, failed, suppressed, uncertain, cancelled); implies --recipients.
        #[arg(long, requires = "campaign")]
        state: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    /// The campaign file or name the command was given, if any: where it lies tells a
    /// forgotten `--config` apart from a missing configuration.
    pub fn campaign_file(&self) -> Option<&std::path::Path> {
        match self {
            Command::Send(args) => Some(&args.campaign),
            Command::Check { campaign, .. }
            | Command::Review { campaign, .. }
            | Command::Approve { campaign, .. }
            | Command::Preview { campaign, .. }
            | Command::Dns {
                action: DnsAction::Check { campaign, .. },
            } => Some(campaign),
            Command::Report { campaign, .. } => Some(std::path::Path::new(campaign)),
            Command::Status { campaign, .. } => campaign.as_deref().map(std::path::Path::new),
            _ => None,
        }
    }
}

// `send`'s flags, one struct so the command can be handed on whole. (No doc comment: the
// subcommand's help is the variant's.)
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The campaign file (for example config/campaigns/spring.toml).
    pub campaign: PathBuf,
    /// Import the campaign's contacts and queue its outbox, then compose and check every
    /// due message without sending it or changing its state.
    #[arg(long)]
    pub dry_run: bool,
    /// Use this transport for this run instead of [transport] url.
    #[arg(long)]
    pub transport: Option<String>,
    /// Requeue messages an interrupted SMTP run may or may not have delivered.
    #[arg(long)]
    pub resend_interrupted: bool,
    /// Requeue the messages whose delivery is uncertain (no reply after the data was
    /// sent): their recipients may receive them twice.
    #[arg(long)]
    pub resend_uncertain: bool,
    /// Resume although messages are in flight through another kind of transport (smtp vs
    /// outbox); those messages become uncertain.
    #[arg(long)]
    pub force_transport: bool,
    /// Send even if SPF fails or the published DKIM key does not match (logged loudly).
    #[arg(long)]
    pub allow_dns_problems: bool,
    /// After an A/B test phase, or outside the send window, exit instead of waiting; a later
    /// `send` goes on.
    #[arg(long)]
    pub no_wait: bool,
    /// Send no earlier than this local time of the campaign's time zone ([schedule]
    /// timezone, default Europe/Helsinki), e.g. 2026-12-07T09:00; the run waits until then.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Ask this DNS server (IP:PORT) instead of the system's resolver.
    #[arg(long)]
    pub resolver: Option<String>,
    /// Send a test: the message of real contacts, marked [TEST] in the subject, to this
    /// address instead; nothing is recorded and no real contact is affected.
    #[arg(long, value_name = "ADDRESS")]
    pub test_to: Option<String>,
    /// With --test-to: how many contacts' messages to send (the first eligible ones).
    #[arg(long, default_value_t = 1, requires = "test_to")]
    pub sample: usize,
    /// Send to the good rows of the campaign's contact files; the bad ones are written,
    /// with their reasons, to FILE.rejected.csv beside each file.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Send even though unsubscribe links point to a loopback or plain-http
    /// public_base_url while the transport reaches real mailboxes.
    #[arg(long)]
    pub allow_insecure_links: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `serve`'s listeners and limits (defaults in `fairsend::web::ServeLimits`; the README's
/// security section explains each).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Where `/metrics` is served, without authentication ("none": not on a listener of its
    /// own; with FAIRSEND_METRICS_TOKEN set it is also served on --listen to bearers of it).
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_listen: String,
    /// Open connections at once (keep it below the open-files limit, `ulimit -n`).
    #[arg(long, default_value_t = 768)]
    pub max_connections: usize,
    /// Open connections of one client address.
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_client: usize,
    /// Seconds a client has to send a request's header.
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body and the server to answer.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Requests per second one client address may make to /u, /c and /o (burst: 4×); 0: no limit.
    #[arg(long, default_value_t = 20)]
    pub public_rate_limit: u32,
    /// Failed admin logins of one client address before delays start (1 s, 2 s, 4 s…).
    #[arg(long, default_value_t = 5)]
    pub login_attempts_per_client: u32,
    /// Failed admin logins of all clients together before delays start for everyone.
    #[arg(long, default_value_t = 100)]
    pub login_attempts_global: u32,
    /// A reverse proxy (IP address) whose X-Forwarded-For names the client, for the
    /// per-client limits; repeat for several. Without it every client behind the proxy is one.
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Signup form submissions (POST /s/REGISTER) per minute of one client address; 0: no limit.
    #[arg(long, default_value_t = 10)]
    pub signup_rate_limit: u32,
    /// Also read the bounce mailbox of [bounces.imap]: at once, then waiting in IMAP IDLE when
    /// the server offers it, else every SECONDS. Failures are logged and retried, never fatal.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_bounces: Option<u64>,
}

impl ServeArgs {
    pub fn limits(&self) -> Result<fairsend::web::ServeLimits, BadInput> {
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
            signup_posts_per_minute: self.signup_rate_limit,
            ..Default::default()
        })
    }

    pub fn metrics_listen(&self) -> Result<Option<std::net::SocketAddr>, BadInput> {
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
