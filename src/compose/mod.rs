//! One recipient → one message.
//!
//! The marketer's body is rendered at run time ([`body`]); the layout and the compliance blocks
//! are askama templates compiled into the binary ([`blocks`]). A [`ComposedMessage`] can only be
//! made by [`Composer::compose`], which always includes every block in both the text and the
//! HTML part. This module builds bytes; it never sends them and never touches the database.

mod blocks;
mod body;
mod qp;
pub mod signup;
mod wording;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use askama::Template;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox as LettreMailbox, MultiPart, SinglePart};
use minijinja::Value;

pub use blocks::{BlockInputs, ComplianceBlocks, RenderedBlocks};
pub use body::{BodyTemplate, EmptyField, FUEL, escape_markdown};

use crate::config::{Campaign, ConfigDir, Mailbox, Register};
use crate::model::Locale;
use crate::model::{EmailAddress, Recipient, STANDARD_FIELDS};
use crate::suppress::{Secret, TokenPurpose, sign};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{file}: {message}")]
    Template { file: PathBuf, message: String },
    #[error("{file}{}: the template uses the field '{field}', which not every recipient has (fields available: {available})", line.map(|l| format!(": line {l}")).unwrap_or_default())]
    UnknownField {
        file: PathBuf,
        line: Option<usize>,
        field: String,
        available: String,
    },
    #[error(
        "the {header} header would contain a line break or control character (header injection refused): {value:?}"
    )]
    HeaderInjection { header: &'static str, value: String },
    #[error("register '{0}' of a recipient is not defined in registers.toml")]
    UnknownRegister(String),
    #[error("cannot render the {0} template: {1}")]
    Layout(&'static str, askama::Error),
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// A message ready for the transport: the envelope of its own and the bytes.
#[derive(Debug, Clone)]
pub struct ComposedMessage {
    pub outbox_id: i64,
    /// `MAIL FROM`: the VERP address whose token identifies the outbox row.
    pub envelope_from: EmailAddress,
    /// The one and only `RCPT TO`.
    pub recipient: EmailAddress,
    pub message_id: String,
    pub subject: String,
    pub unsubscribe_url: String,
    pub text: String,
    pub html: String,
    pub bytes: Vec<u8>,
}

/// Everything needed to compose one campaign's messages, prepared once. It owns what it
/// needs (shared, not copied, by its clones), so that a clone can compose on another thread
/// while the send loop's thread keeps the wire busy.
pub struct Composer {
    config: Arc<ConfigDir>,
    campaign: Arc<Campaign>,
    body: BodyTemplate,
    secret: Secret,
    dkim: Option<Arc<crate::dns::DkimSigning>>,
    /// The body's trackable links (by index), when the campaign tracks clicks.
    links: Vec<String>,
    /// Identity, source and privacy blocks per footer variant (register, locale, legal
    /// basis), rendered and quoted-printable encoded once: they are the same for every
    /// recipient of the variant; rendering them was a tenth of composing a message, and
    /// encoding them again most of its encoding.
    shared_blocks: std::sync::Mutex<SharedBlocks>,
}

type SharedBlocks =
    std::collections::HashMap<(String, Locale, crate::model::LegalBasis), Arc<Footers>>;

/// A footer variant's shared blocks in both parts.
struct Footers {
    text: SharedFooter,
    html: SharedFooter,
}

/// The blocks every recipient of a footer variant gets, in one part (text or HTML), each with
/// its quoted-printable encoding: they are most of a message, and encoding them again for
/// every message was most of its encoding.
struct SharedFooter {
    identity: qp::Encoded,
    source: qp::Encoded,
    privacy: qp::Encoded,
}

impl SharedFooter {
    fn new(blocks: RenderedBlocks) -> Self {
        Self {
            identity: qp::Encoded::new(blocks.identity),
            source: qp::Encoded::new(blocks.source),
            privacy: qp::Encoded::new(blocks.privacy),
        }
    }

    /// `part` encoded, these blocks copied from their encodings (see [`qp::encode_with`]):
    /// the layouts put them after the body, which is `body_len` bytes long.
    fn encode(&self, part: &str, body_len: usize) -> Vec<u8> {
        qp::encode_with(
            part,
            &[&self.identity, &self.source, &self.privacy],
            body_len,
        )
    }
}

#[derive(Template)]
#[template(path = "message.txt")]
struct TextLayout<'a> {
    body: &'a str,
    blocks: &'a SharedFooter,
    objection: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct HtmlLayout<'a> {
    lang: &'a str,
    subject: &'a str,
    body: &'a str,
    blocks: &'a SharedFooter,
    objection: &'a str,
}

impl Clone for Composer {
    /// A composer of the same messages; its cache of shared blocks starts empty.
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            campaign: self.campaign.clone(),
            body: self.body.clone(),
            secret: self.secret.clone(),
            dkim: self.dkim.clone(),
            links: self.links.clone(),
            shared_blocks: std::sync::Mutex::new(SharedBlocks::new()),
        }
    }
}

impl Composer {
    pub fn new(
        config: &ConfigDir,
        campaign: &Campaign,
        secret: Secret,
    ) -> Result<Self, ComposeError> {
        let body = BodyTemplate::load(&campaign.body, &campaign.subjects(), &campaign.file)?;
        Ok(Self {
            config: Arc::new(config.clone()),
            campaign: Arc::new(campaign.clone()),
            body,
            secret,
            dkim: None,
            links: Vec::new(),
            shared_blocks: std::sync::Mutex::new(SharedBlocks::new()),
        })
    }

    /// The settings the messages are composed (and gated) under.
    pub fn settings(&self) -> &crate::config::Settings {
        &self.config.settings
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The body links a click may redirect to, in index order (`/c/{token}` names the index).
    pub fn trackable_links(&self) -> Vec<String> {
        self.body.static_links()
    }

    /// Rewrites the body's links to tracked redirects through `fairsend serve`.
    pub fn with_click_tracking(mut self, links: Vec<String>) -> Self {
        self.links = links;
        self
    }

    /// Signs every composed message with this DKIM key.
    pub fn with_dkim(mut self, dkim: Option<Arc<crate::dns::DkimSigning>>) -> Self {
        self.dkim = dkim;
        self
    }

    /// Checks that every field the templates use is one every recipient has: the standard
    /// fields plus `custom_fields` (the extra columns common to the whole audience).
    pub fn check_fields(&self, custom_fields: &BTreeSet<String>) -> Result<(), ComposeError> {
        let mut available: BTreeSet<String> =
            STANDARD_FIELDS.iter().map(|s| s.to_string()).collect();
        available.extend(custom_fields.iter().cloned());
        self.body.check_fields(&available)
    }

    /// The fields this recipient has empty where the subject or body would print nothing.
    pub fn empty_fields(&self, recipient: &Recipient) -> Vec<EmptyField> {
        let Some(register) = self.config.registers.get(&recipient.register) else {
            return Vec::new();
        };
        let locale = self.locale_for(recipient, register);
        self.body
            .empty_fields(&template_field_map(recipient, locale))
    }

    pub fn locale_for(&self, recipient: &Recipient, register: &Register) -> Locale {
        recipient_locale(recipient.contact.locale, &self.campaign, register)
    }

    pub fn compose(&self, recipient: &Recipient) -> Result<ComposedMessage, ComposeError> {
        self.compose_for(recipient, None)
    }

    /// The message `recipient` would get, sent to `test_to` instead for a test send: subject
    /// marked `[TEST]`, and every token (unsubscribe, envelope, tracking) made for no outbox
    /// row, so that clicking or bouncing it affects no real contact.
    pub fn compose_test(
        &self,
        recipient: &Recipient,
        test_to: &EmailAddress,
    ) -> Result<ComposedMessage, ComposeError> {
        let inert = Recipient {
            outbox_id: 0,
            ..recipient.clone()
        };
        self.compose_for(&inert, Some(test_to))
    }

    /// The message of one recipient: body, envelope and tokens, the layout with the
    /// compliance blocks in both parts, the headers, the DKIM signature.
    fn compose_for(
        &self,
        recipient: &Recipient,
        test_to: Option<&EmailAddress>,
    ) -> Result<ComposedMessage, ComposeError> {
        let register = self
            .config
            .registers
            .get(&recipient.register)
            .ok_or_else(|| ComposeError::UnknownRegister(recipient.register.clone()))?;
        let locale = self.locale_for(recipient, register);
        let (subject, body_text, body_html) = self.render_body(recipient, locale, test_to)?;
        let ids = self.identifiers(recipient.outbox_id)?;
        let (text, html, footers) = self.layout(
            recipient,
            register,
            locale,
            &ids.unsubscribe_url,
            (&subject, &body_text, &body_html),
        )?;
        let to = to_mailbox(recipient, test_to)?;
        let message = self.headers(&to, &subject, &ids)?.multipart(
            MultiPart::alternative()
                .singlepart(quoted_printable_part(
                    ContentType::TEXT_PLAIN,
                    footers.text.encode(&text, body_text.trim_end().len()),
                ))
                .singlepart(quoted_printable_part(
                    ContentType::TEXT_HTML,
                    footers.html.encode(&html, body_html.len()),
                )),
        );
        let message = message.map_err(|e| ComposeError::Build(e.to_string()))?;
        Ok(ComposedMessage {
            outbox_id: recipient.outbox_id,
            envelope_from: ids.envelope_from,
            recipient: to.address,
            message_id: ids.message_id,
            subject,
            unsubscribe_url: ids.unsubscribe_url,
            text,
            html,
            bytes: self.signed(message.formatted())?,
        })
    }

    /// Subject (marked `[TEST]` for a test send), text and HTML of the marketer's body, its
    /// links tracked.
    fn render_body(
        &self,
        recipient: &Recipient,
        locale: Locale,
        test_to: Option<&EmailAddress>,
    ) -> Result<(String, String, String), ComposeError> {
        let (subject, body_text, body_html) = self
            .body
            .render(&template_fields(recipient, locale), recipient.variant)?;
        let body_html = self.track(body_html, recipient.outbox_id);
        let subject = match test_to {
            Some(_) => format!("[TEST] {subject}"),
            None => subject,
        };
        reject_control("Subject", &subject)?;
        Ok((subject, body_text, body_html))
    }

    /// The signed tokens of one outbox row, and the addresses made of them.
    fn identifiers(&self, outbox_id: i64) -> Result<Identifiers, ComposeError> {
        let settings = &self.config.settings;
        let unsubscribe_token = sign(&self.secret, TokenPurpose::Unsubscribe, outbox_id);
        let bounce_token = sign(&self.secret, TokenPurpose::Bounce, outbox_id);
        let domain = &settings.bounces.domain;
        Ok(Identifiers {
            unsubscribe_url: format!("{}/u/{}", settings.public_base_url, unsubscribe_token),
            envelope_from: address(&format!(
                "{}+{}@{}",
                settings.bounces.local_part, bounce_token, domain
            ))?,
            mailto: format!(
                "mailto:{}+{}@{}?subject=unsubscribe",
                settings.bounces.unsubscribe_local_part, unsubscribe_token, domain
            ),
            message_id: format!("<{bounce_token}@{domain}>"),
        })
    }

    /// The text and HTML layouts around the body, with the recipient's compliance blocks, and
    /// the blocks they share with the other recipients of their footer variant.
    fn layout(
        &self,
        recipient: &Recipient,
        register: &Register,
        locale: Locale,
        unsubscribe_url: &str,
        (subject, body_text, body_html): (&str, &str, &str),
    ) -> Result<(String, String, Arc<Footers>), ComposeError> {
        let inputs = BlockInputs {
            settings: &self.config.settings,
            register,
            locale,
            legal_basis: recipient.contact.legal_basis,
            unsubscribe_url,
            reply_to: &self.campaign.reply_to,
        };
        let footers = self.shared_blocks(&inputs, &recipient.register)?;
        let (objection_text, objection_html) =
            blocks::render_objection(&inputs).map_err(|e| ComposeError::Layout("text", e))?;
        let text = TextLayout {
            body: body_text.trim_end(),
            blocks: &footers.text,
            objection: &objection_text,
        }
        .render()
        .map_err(|e| ComposeError::Layout("text", e))?;
        let html = HtmlLayout {
            lang: locale.as_str(),
            subject,
            body: body_html,
            blocks: &footers.html,
            objection: &objection_html,
        }
        .render()
        .map_err(|e| ComposeError::Layout("HTML", e))?;
        Ok((text, html, footers))
    }

    /// From, Reply-To, the one To, Subject, Date, Message-ID and the one-click unsubscribe
    /// headers (RFC 2369, RFC 8058).
    fn headers(
        &self,
        to: &Mailbox,
        subject: &str,
        ids: &Identifiers,
    ) -> Result<lettre::message::MessageBuilder, ComposeError> {
        let list_unsubscribe = format!("<{}>, <{}>", ids.unsubscribe_url, ids.mailto);
        reject_control("List-Unsubscribe", &list_unsubscribe)?;
        let to = lettre_mailbox(to)?;
        // Given, lettre does not derive the envelope by parsing the From and To it was just
        // handed (a tenth of composing a message); the transport uses the message's own.
        let envelope = lettre::address::Envelope::new(
            Some(lettre_address(&ids.envelope_from)?),
            vec![to.email.clone()],
        )
        .map_err(|e| ComposeError::Build(e.to_string()))?;
        Ok(lettre::Message::builder()
            .envelope(envelope)
            .from(lettre_mailbox(&self.campaign.from)?)
            .reply_to(lettre_mailbox(&Mailbox {
                name: None,
                address: self.campaign.reply_to.clone(),
            })?)
            .to(to)
            .subject(subject.to_string())
            .date_now()
            .message_id(Some(ids.message_id.clone()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                list_unsubscribe,
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_string(),
            )))
    }

    /// The formatted message, DKIM-signed when a key is configured.
    fn signed(&self, formatted: Vec<u8>) -> Result<Vec<u8>, ComposeError> {
        match &self.dkim {
            Some(dkim) => dkim
                .signed(&formatted)
                .map_err(|e| ComposeError::Build(e.to_string())),
            None => Ok(formatted),
        }
    }
}

/// The tokens of one outbox row as the message carries them.
struct Identifiers {
    unsubscribe_url: String,
    /// `MAIL FROM`: the VERP address.
    envelope_from: EmailAddress,
    mailto: String,
    message_id: String,
}

/// The `To` mailbox: the contact with their name, or the test address alone.
fn to_mailbox(
    recipient: &Recipient,
    test_to: Option<&EmailAddress>,
) -> Result<Mailbox, ComposeError> {
    let contact = &recipient.contact;
    let to_name = [contact.first_name.as_str(), contact.last_name.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    reject_control("To", &to_name)?;
    Ok(match test_to {
        Some(address) => Mailbox {
            name: None,
            address: address.clone(),
        },
        None => Mailbox {
            name: (!to_name.is_empty()).then_some(to_name),
            address: contact.email.clone(),
        },
    })
}

/// A text part in UTF-8, quoted-printable: readable where it is ASCII, safe through any relay.
fn quoted_printable_part(content_type: ContentType, encoded: Vec<u8>) -> SinglePart {
    SinglePart::builder()
        .header(content_type)
        .body(Body::dangerous_pre_encoded(
            encoded,
            ContentTransferEncoding::QuotedPrintable,
        ))
}

impl Composer {
    /// The three blocks a footer variant shares (identity, source, privacy), in text and HTML,
    /// from the cache (rendered and encoded on first use); the objection block carries each
    /// recipient's own link and is rendered per message.
    fn shared_blocks(
        &self,
        inputs: &BlockInputs<'_>,
        register: &str,
    ) -> Result<Arc<Footers>, ComposeError> {
        let key = (register.to_string(), inputs.locale, inputs.legal_basis);
        let cached = self
            .shared_blocks
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key).cloned());
        if let Some(shared) = cached {
            return Ok(shared);
        }
        let blocks = ComplianceBlocks::new(inputs).map_err(|e| ComposeError::Layout("text", e))?;
        let shared = Arc::new(Footers {
            text: SharedFooter::new(
                blocks
                    .render_text()
                    .map_err(|e| ComposeError::Layout("text", e))?,
            ),
            html: SharedFooter::new(
                blocks
                    .render_html()
                    .map_err(|e| ComposeError::Layout("HTML", e))?,
            ),
        });
        if let Ok(mut cache) = self.shared_blocks.lock() {
            cache.insert(key, shared.clone());
        }
        Ok(shared)
    }

    /// Replaces each trackable link of the body with its signed redirect, and adds the open
    /// pixel when opens are the A/B metric. The compliance blocks are never rewritten.
    fn track(&self, mut html: String, outbox_id: i64) -> String {
        let base = &self.config.settings.public_base_url;
        for (index, url) in self.links.iter().enumerate().take(64) {
            let token = sign(
                &self.secret,
                TokenPurpose::Click,
                outbox_id.saturating_mul(64) + index as i64,
            );
            let tracked = format!("{base}/c/{token}");
            html = html
                .replace(
                    &format!("href=\"{}\"", url.replace('&', "&amp;")),
                    &format!("href=\"{tracked}\""),
                )
                .replace(&format!("href=\"{url}\""), &format!("href=\"{tracked}\""));
        }
        if self.campaign.tracks_opens() {
            let token = sign(&self.secret, TokenPurpose::Open, outbox_id);
            html.push_str(&format!("<img src=\"{base}/o/{token}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">"));
        }
        html
    }
}

/// The language of a recipient's compliance blocks: the contact's own, else the campaign's,
/// else the register's default.
pub fn recipient_locale(
    contact: Option<Locale>,
    campaign: &Campaign,
    register: &Register,
) -> Locale {
    contact
        .or(campaign.locale)
        .unwrap_or(register.default_locale)
}

/// The fields a body template sees: the standard ones and the register's extra columns.
fn template_fields(recipient: &Recipient, locale: Locale) -> Value {
    // The map's own strings move into the template's values: no pass through serde.
    template_field_map(recipient, locale).into_iter().collect()
}

fn template_field_map(
    recipient: &Recipient,
    locale: Locale,
) -> std::collections::BTreeMap<String, String> {
    let c = &recipient.contact;
    let mut fields = c.fields.clone();
    let full_name = [c.first_name.as_str(), c.last_name.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    for (k, v) in [
        ("email", c.email.to_string()),
        ("first_name", c.first_name.clone()),
        ("last_name", c.last_name.clone()),
        ("full_name", full_name),
        ("company", c.company.clone()),
        ("business_id", c.business_id.clone()),
        ("title", c.title.clone()),
        ("locale", locale.as_str().to_string()),
        ("register", recipient.register.clone()),
    ] {
        fields.insert(k.to_string(), v);
    }
    fields
}

fn reject_control(header: &'static str, value: &str) -> Result<(), ComposeError> {
    if value.chars().any(char::is_control) {
        return Err(ComposeError::HeaderInjection {
            header,
            value: value.to_string(),
        });
    }
    Ok(())
}

fn address(text: &str) -> Result<EmailAddress, ComposeError> {
    EmailAddress::parse(text).map_err(|e| ComposeError::Build(e.to_string()))
}

fn lettre_mailbox(m: &Mailbox) -> Result<LettreMailbox, ComposeError> {
    Ok(LettreMailbox::new(
        m.name.clone(),
        lettre_address(&m.address)?,
    ))
}

fn lettre_address(address: &EmailAddress) -> Result<lettre::Address, ComposeError> {
    address
        .as_str()
        .parse::<lettre::Address>()
        .map_err(|e| ComposeError::Build(format!("{address}: {e}")))
}
