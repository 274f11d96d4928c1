//! Signup with double opt-in and the proof of consent (issue 23, part 3): a register that opts
//! in (`signup` in registers.toml) gets a public form; a submission sends one confirmation
//! message with a signed link that expires; only the confirmation, made on a POST so that link
//! scanners cannot make it, creates the contact with legal basis `consent` and stores the proof
//! (times, the notice's SHA-256 and version, the language, the truncated IP address).
//!
//! Abuse: a honeypot field, and no mail to an address that is suppressed, already consenting,
//! or mailed within `[signup] resend_after` — so the form cannot bomb a mailbox. Every
//! submission that passes validation gets the same answer, and the mail leaves in the
//! background, so neither the page nor its timing tells whether an address is known.

use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::compose::ComposeError;
use crate::compose::signup::{ConfirmationMail, confirmation_message, signup_notice};
use crate::config::{ConfigDir, Mailbox, Register};
use crate::model::Locale;
use crate::model::{AddressError, EmailAddress};
use crate::send::Transport;
use crate::store::{
    Confirmation, ConsentProof, NewSignup, PendingSignup, Reservation, Store, StoreError,
};
use crate::suppress::{Secret, TokenPurpose, address_hash, sign_timed, verify_timed};

/// The longest name or company a form accepts.
const MAX_FIELD_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("email: {0}")]
    Address(#[from] AddressError),
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signup mail: {0}")]
    Mail(String),
}

/// What sends confirmation messages: the configured transport (and the DKIM key, if any).
pub struct Mailer {
    pub transport: Box<dyn Transport>,
    pub dkim: Option<std::sync::Arc<crate::dns::DkimSigning>>,
}

/// What the use cases need, shared by every request of `serve`.
#[derive(Clone)]
pub struct Signup {
    pub store: Store,
    pub secret: Secret,
    pub config: Arc<ConfigDir>,
    pub mailer: Option<Arc<Mailer>>,
}

/// A register's notice as the form shows it.
#[derive(Debug, Clone)]
pub struct Notice {
    pub html: String,
    pub sha256: String,
    pub version: String,
}

/// One form submission.
#[derive(Debug, Clone, Default)]
pub struct SignupInput {
    pub email: String,
    pub name: String,
    pub company: String,
    /// The hidden field people do not see; bots fill it.
    pub honeypot: String,
    /// The hash of the notice the form showed.
    pub notice_sha256: String,
    pub client: Option<IpAddr>,
}

/// How a valid submission was answered (the page is the same for each; the kind is logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Mailed,
    NotMailed,
    /// The notice changed since the form was shown: show the form again.
    NoticeChanged,
}

/// What a confirmation link leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Valid {
        locale: Locale,
    },
    Confirmed {
        locale: Locale,
    },
    /// Tampered, expired, replaced by a newer link, or for another register.
    Invalid,
}

/// The register `name` if it has a signup form.
pub fn form_register<'a>(config: &'a ConfigDir, name: &str) -> Option<&'a Register> {
    config.registers.get(name).filter(|r| r.signup.is_some())
}

/// The notice of `register`'s form in `locale`, with its hash and version.
pub fn notice(
    config: &ConfigDir,
    register: &Register,
    locale: Locale,
) -> Result<Notice, SignupError> {
    let html = signup_notice(config, register, locale, validity_hours(config))?;
    let sha256 = data_encoding::HEXLOWER.encode(&Sha256::digest(html.as_bytes()));
    let version = register
        .signup
        .as_ref()
        .map(|s| s.notice_version.clone())
        .unwrap_or_default();
    Ok(Notice {
        html,
        sha256,
        version,
    })
}

/// How long a confirmation link is valid, in whole hours (as the notice and the mail say).
pub fn validity_hours(config: &ConfigDir) -> u64 {
    config
        .settings
        .signup
        .link_validity
        .as_secs()
        .div_ceil(3600)
}

impl Signup {
    /// Handles a submission of `register`'s form in `locale`. Errors of the input are for the
    /// person (shown on the form); everything else ends in the same answer.
    pub async fn submit(
        &self,
        register: &Register,
        locale: Locale,
        input: &SignupInput,
    ) -> Result<Submitted, SignupError> {
        let email = EmailAddress::parse(input.email.trim())?;
        let name = field("name", &input.name)?;
        let company = field("company", &input.company)?;
        if !input.honeypot.trim().is_empty() {
            tracing::info!(register = %register.name, "signup: honeypot filled; ignored");
            return Ok(Submitted::NotMailed);
        }
        let notice = notice(&self.config, register, locale)?;
        if input.notice_sha256.trim() != notice.sha256 {
            return Ok(Submitted::NoticeChanged);
        }
        let hash = address_hash(&self.secret, &email);
        let ip = input
            .client
            .and_then(|ip| self.config.settings.signup.ip_truncation.apply(ip));
        let new = NewSignup {
            email_hash: &hash,
            register: &register.name,
            email: email.as_str(),
            name: &name,
            company: &company,
            locale,
            notice_sha256: &notice.sha256,
            notice_version: &notice.version,
            notice_text: &notice.html,
            request_ip: ip.as_deref(),
        };
        let settings = &self.config.settings.signup;
        let now = crate::now_millis();
        let reservation = self
            .store
            .reserve_signup(
                &new,
                millis(settings.resend_after),
                now.saturating_sub(millis(settings.link_validity)),
            )
            .await?;
        let Reservation::Mail { id, mailed_at } = reservation else {
            tracing::info!(register = %register.name, outcome = ?reservation, "signup: no mail");
            return Ok(Submitted::NotMailed);
        };
        let message = self.confirmation(register, locale, &email, id, mailed_at)?;
        let message = crate::compliance::gate_confirmation(message, &self.config.settings)
            .map_err(|e| SignupError::Mail(e.to_string()))?;
        self.deliver_in_background(message, id, mailed_at);
        Ok(Submitted::Mailed)
    }

    fn confirmation(
        &self,
        register: &Register,
        locale: Locale,
        email: &EmailAddress,
        id: i64,
        mailed_at: i64,
    ) -> Result<crate::compose::ComposedMessage, SignupError> {
        let settings = &self.config.settings;
        let token = sign_timed(&self.secret, TokenPurpose::SignupConfirm, id, mailed_at);
        let link = format!(
            "{}/s/{}/confirm/{token}",
            settings.public_base_url, register.name
        );
        let from = match &settings.signup.from {
            Some(text) => Mailbox::parse(text).map_err(SignupError::Mail)?,
            None => Mailbox {
                name: Some(settings.sender.legal_name.clone()),
                address: settings.sender.contact_email.clone(),
            },
        };
        let envelope_from = EmailAddress::parse(&format!(
            "{}@{}",
            settings.bounces.local_part, settings.bounces.domain
        ))?;
        let nonce = crate::suppress::mac_hex(&self.secret, "signup-message-id", token.as_bytes());
        let mut message = confirmation_message(
            &self.config,
            &ConfirmationMail {
                request_id: id,
                from: &from,
                to: email,
                envelope_from,
                locale,
                register_title: register.title_in(locale),
                link: &link,
                link_validity_hours: validity_hours(&self.config),
                domain: &settings.bounces.domain,
                nonce: &nonce[..16],
            },
        )?;
        if let Some(dkim) = self.mailer.as_ref().and_then(|m| m.dkim.as_ref()) {
            message.bytes = dkim
                .signed(&message.bytes)
                .map_err(|e| SignupError::Mail(e.to_string()))?;
        }
        Ok(message)
    }

    /// Sends in a task of its own, so that the answer does not wait for (or reveal) the
    /// mail. A failed delivery gives the reservation back, so a new submission may retry.
    fn deliver_in_background(&self, message: crate::compliance::GatedMessage, id: i64, at: i64) {
        let Some(mailer) = self.mailer.clone() else {
            tracing::error!("signup: no transport configured; the confirmation was not sent");
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            match mailer.transport.deliver("signup", &message).await {
                Ok(reply) => tracing::info!(request = id, %reply, "signup: confirmation sent"),
                Err(e) => {
                    tracing::warn!(request = id, error = ?e, "signup: confirmation not sent");
                    if let Err(e) = store.release_signup(id, at).await {
                        tracing::error!(error = %e, "signup: cannot release the reservation");
                    }
                }
            }
        });
    }

    /// Deletes the unconfirmed signups whose links have expired: an unconfirmed address is
    /// kept no longer than the notice says.
    pub async fn sweep(&self) -> Result<u64, SignupError> {
        let validity = millis(self.config.settings.signup.link_validity);
        Ok(self
            .store
            .delete_expired_signups(crate::now_millis().saturating_sub(validity))
            .await?)
    }

    /// Runs [`Self::sweep`] every ten minutes, for as long as the process runs.
    pub fn sweep_periodically(self) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                every.tick().await;
                match self.sweep().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "signup: expired requests deleted"),
                    Err(e) => tracing::warn!(error = %e, "signup: cannot delete expired requests"),
                }
            }
        });
    }

    /// What the link `token` of `register` leads to; nothing is changed.
    pub async fn link(&self, register: &Register, token: &str) -> Result<LinkState, SignupError> {
        Ok(match self.pending(register, token).await? {
            None => LinkState::Invalid,
            Some(p) if p.confirmed => LinkState::Confirmed { locale: p.locale },
            Some(p) => LinkState::Valid { locale: p.locale },
        })
    }

    /// Confirms the signup of link `token`: the contact and its consent proof. An invalid or
    /// expired link changes nothing.
    pub async fn confirm(
        &self,
        register: &Register,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<LinkState, SignupError> {
        let Some(pending) = self.pending(register, token).await? else {
            return Ok(LinkState::Invalid);
        };
        let ip = client.and_then(|ip| self.config.settings.signup.ip_truncation.apply(ip));
        let locale = pending.locale;
        Ok(
            match self
                .store
                .confirm_signup(pending.id, pending.mailed_at, ip.as_deref())
                .await?
            {
                Confirmation::Confirmed { register, .. } => {
                    tracing::info!(%register, request = pending.id, "signup confirmed: consent recorded");
                    LinkState::Confirmed { locale }
                }
                Confirmation::AlreadyConfirmed => LinkState::Confirmed { locale },
                Confirmation::Unknown | Confirmation::Suppressed => LinkState::Invalid,
            },
        )
    }

    /// The pending request of a valid, unexpired link of `register`.
    async fn pending(
        &self,
        register: &Register,
        token: &str,
    ) -> Result<Option<PendingSignup>, SignupError> {
        let Some((id, mailed_at)) = verify_timed(&self.secret, TokenPurpose::SignupConfirm, token)
        else {
            return Ok(None);
        };
        let validity = millis(self.config.settings.signup.link_validity);
        if crate::now_millis().saturating_sub(mailed_at) > validity {
            return Ok(None);
        }
        Ok(self
            .store
            .pending_signup(id)
            .await?
            .filter(|p| p.register == register.name && p.mailed_at == mailed_at))
    }
}

/// `fairsend consent show EMAIL`: the proofs of the address's consents.
pub async fn consent_proofs(
    store: &Store,
    secret: &Secret,
    email: &EmailAddress,
) -> Result<Vec<ConsentProof>, StoreError> {
    store.consent_proofs(&address_hash(secret, email)).await
}

/// A name or company: one line, not too long.
fn field(name: &'static str, value: &str) -> Result<String, SignupError> {
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(SignupError::Field {
            field: name,
            reason: "contains a line break or control character".into(),
        });
    }
    if value.chars().count() > MAX_FIELD_CHARS {
        return Err(SignupError::Field {
            field: name,
            reason: format!("is longer than {MAX_FIELD_CHARS} characters"),
        });
    }
    Ok(value.to_string())
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
