//! The commands around the campaigns on the command line: the shared start of every command
//! (open the database, unlock its keys, warn about the development key or a new SQLite file),
//! `init`, `keys show|rotate`, and `serve`'s start (the web server itself is `web/`'s).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use fairsend::app::session::{database_url, master_secret, new_sqlite_file, open_store, unlock};
use fairsend::config::ConfigDir;
use fairsend::store::Store;
use fairsend::suppress::Secret;

use super::args::{KeysAction, ServeArgs};
use super::terminal::tell;
use super::{BadInput, Problems};

/// Opens the database of `--db`, else of `[database] url`, noting a new SQLite file.
pub async fn open(config: &ConfigDir, db: Option<&str>) -> anyhow::Result<Store> {
    let url = database_url(config, db);
    if let Some(shown) = new_sqlite_file(&url) {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        // The reminder matters only where the current directory chose the file.
        let why = if Path::new(path).is_absolute() {
            ""
        } else {
            " (a relative sqlite:// path is taken from the current directory)"
        };
        tell!(
            "note: creating a new, empty database {}{why}",
            shown.display()
        );
    }
    Ok(open_store(config, &url).await?)
}

/// The working key: the master secret from the environment opens the data key pinned in the
/// database (refusing a different master). Unlocked once per run.
pub async fn load_secret(config: &ConfigDir, store: &Store) -> anyhow::Result<Secret> {
    static UNLOCKED: tokio::sync::OnceCell<Secret> = tokio::sync::OnceCell::const_new();
    Ok(UNLOCKED
        .get_or_try_init(|| unlock_secret(config, store))
        .await?
        .clone())
}

async fn unlock_secret(config: &ConfigDir, store: &Store) -> anyhow::Result<Secret> {
    let master = master_secret(config)?;
    if master.is_development() {
        eprintln!(
            "warning: {} is not set: using the built-in DEVELOPMENT signing secret (outbox: \
             transport and loopback only; set {} to 32+ random bytes for real mail)",
            config.settings.signing_secret_env, config.settings.signing_secret_env
        );
    }
    Ok(unlock(store, &master).await?)
}

/// `init DIR`: the starter configuration, and what to do next.
pub fn init(dir: &Path) -> anyhow::Result<()> {
    let written = fairsend::config::write_starter(dir).map_err(|e| BadInput(e.to_string()))?;
    for path in &written {
        crate::cli::terminal::outln!("wrote {}", path.display());
    }
    crate::cli::terminal::outln!(
        "next: fill in the values marked FILL IN, add contacts to {}, then run\n  \
         fairsend --config {} check {}",
        dir.join("contacts/customers.csv").display(),
        dir.display(),
        dir.join("campaigns/first.toml").display()
    );
    Ok(())
}

/// `keys show` (exit 1 when the current master does not open the database) and `keys rotate`.
pub async fn keys(config: &ConfigDir, store: &Store, action: KeysAction) -> anyhow::Result<()> {
    match action {
        KeysAction::Show => {
            let keys = fairsend::app::keys::show(config, store).await?;
            crate::cli::terminal::outln!(
                "pinned master fingerprint: {}",
                keys.pinned
                    .as_deref()
                    .unwrap_or("(none yet: pinned by the first command)")
            );
            crate::cli::terminal::outln!("current master ({}):   {}", keys.var, keys.current);
            if !keys.opens() {
                return Err(Problems(format!(
                    "{} does not open this database: see `fairsend keys rotate --help`",
                    keys.var
                ))
                .into());
            }
            Ok(())
        }
        KeysAction::Rotate {
            from_development_key,
        } => {
            let fingerprint =
                fairsend::app::keys::rotate(config, store, from_development_key).await?;
            crate::cli::terminal::outln!(
                "keys rotated: the database now opens with {} (fingerprint {fingerprint}); \
                 hashes, suppressions and links already sent are unchanged",
                config.settings.signing_secret_env
            );
            Ok(())
        }
    }
}

/// `serve`: the limits and secrets checked, earlier admin sessions of another password ended,
/// then the web server until it stops.
pub async fn serve(
    config: ConfigDir,
    store: Store,
    listen: SocketAddr,
    args: ServeArgs,
) -> anyhow::Result<()> {
    let limits = args.limits()?;
    let metrics_listen = args.metrics_listen()?;
    let secret = load_secret(&config, &store).await?;
    let admin_password = fairsend::web::admin::AdminPassword::from_env("FAIRSEND_ADMIN_PASSWORD")
        .map_err(BadInput)?;
    let metrics_token =
        fairsend::web::admin::MetricsToken::from_env("FAIRSEND_METRICS_TOKEN").map_err(BadInput)?;
    fairsend::app::serve::refuse_development_key(
        &config,
        &secret,
        listen,
        admin_password.is_some(),
    )?;
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
    let signup_mailer = signup_mailer(&config, &secret)?;
    let config = Arc::new(config);
    if let Some(seconds) = args.poll_bounces {
        start_bounce_polling(&config, &store, &secret, seconds)?;
    }
    let webhooks =
        fairsend::app::webhooks::Webhooks::from_settings(&config.settings.webhooks, |name| {
            std::env::var(name).ok()
        })
        .map_err(|e| BadInput(format!("{}: {e}", config.settings.file.display())))?;
    let state = fairsend::web::AppState {
        webhooks: Arc::new(webhooks),
        store,
        secret,
        config,
        admin_password,
        metrics_token,
        limits: Arc::new(limits),
        signup_mailer,
    };
    fairsend::web::serve(listen, metrics_listen, state)
        .await
        .with_context(|| format!("cannot serve on {listen}"))
}

/// The transport of signup confirmation mail, when some register has a signup form.
fn signup_mailer(
    config: &ConfigDir,
    secret: &fairsend::suppress::Secret,
) -> anyhow::Result<Option<Arc<fairsend::app::signup::Mailer>>> {
    if !config.registers.iter().any(|r| r.signup.is_some()) {
        return Ok(None);
    }
    let settings = &config.settings.transport;
    fairsend::app::campaign::refuse_development_key(config, secret, &settings.url)?;
    Ok(Some(Arc::new(fairsend::app::signup::Mailer {
        transport: fairsend::send::open(&settings.url, settings)?,
        dkim: fairsend::app::campaign::load_dkim(config)?,
    })))
}

/// `serve --poll-bounces`: reads the bounce mailbox in the background for as long as serve
/// runs.
fn start_bounce_polling(
    config: &ConfigDir,
    store: &Store,
    secret: &fairsend::suppress::Secret,
    seconds: u64,
) -> anyhow::Result<()> {
    if config.settings.bounce_mailbox.is_none() {
        return Err(BadInput(format!(
            "{}: --poll-bounces needs a [bounces.imap] table naming the mailbox",
            config.settings.file.display()
        ))
        .into());
    }
    tokio::spawn(fairsend::app::bounce_poll::run(
        store.clone(),
        secret.clone(),
        Arc::new(config.settings.clone()),
        std::time::Duration::from_secs(seconds),
    ));
    Ok(())
}
