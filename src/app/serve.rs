//! What `serve` must refuse before it listens: the development signing secret (known to
//! anyone with the source, so anyone could forge unsubscribe tokens and admin CSRF tokens)
//! may serve only the machine itself, and never the admin pages. The server itself is
//! `web/`'s; this module only decides whether it may start.

use std::net::SocketAddr;

use super::AppError;
use crate::config::ConfigDir;
use crate::suppress::Secret;

/// Refuses the development key with the admin pages enabled or on a non-loopback address.
pub fn refuse_development_key(
    config: &ConfigDir,
    secret: &Secret,
    listen: SocketAddr,
    admin_enabled: bool,
) -> Result<(), AppError> {
    if !secret.is_development() {
        return Ok(());
    }
    let var = &config.settings.signing_secret_env;
    if admin_enabled {
        return Err(AppError::BadInput(format!(
            "refusing to enable the admin pages with the development signing secret: set {var} \
             to at least 32 random bytes (for example `openssl rand -hex 32`), or unset \
             FAIRSEND_ADMIN_PASSWORD"
        )));
    }
    if !listen.ip().is_loopback() {
        return Err(AppError::BadInput(format!(
            "refusing to listen on {listen} with the development signing secret: set {var} \
             to at least 32 random bytes (for example `openssl rand -hex 32`), or listen on \
             a loopback address"
        )));
    }
    Ok(())
}
