//! The `fairsend` command line: parses arguments, calls the library, prints results.
//! Exit codes: 0 success, 1 the command ran and found problems, 2 bad usage or bad input.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

mod cli;
use cli::args::{BouncesAction, Cli, Command, DnsAction, HygieneAction, LogFormat, OptoutAction};
use cli::output::{format_millis, print_json};
use cli::setup::load_secret;
use cli::terminal::{say, tell};
use cli::{BadInput, Problems};

/// mimalloc instead of glibc's allocator: perf showed an import spending a third of its time
/// in glibc's free-list upkeep (unlink_chunk, malloc_consolidate) for the many small strings
/// a batch binds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use fairsend::audience::parse_contacts_csv;
use fairsend::config::ConfigDir;
use fairsend::store::Store;
use fairsend::suppress::{Secret, address_hash};

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
            if let Command::Check { json, .. } = &cli.command {
                return Err(cli::check::config_problem(e, *json));
            }
            return Err(e.into());
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
            import(&config, &store, &file, &register, mode, json).await
        }
        Command::Optout { action } => optout(&config, &store, action).await,
        Command::Erase { email } => erase(&config, &store, &email).await,
        Command::Bounces { action } => bounces(&config, &store, action).await,
        Command::Hygiene { action } => hygiene(&config, &store, action).await,
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
            let plan = plan_purge(
                &entries,
                &config.registers,
                config.settings.privacy.retention_months,
                chrono::Utc::now(),
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
