//! The compliance blocks every message carries: sender identity (917/2014 §203), address
//! source, GDPR art. 14 privacy notice, and the separate art. 21 objection block with the
//! unsubscribe link. [`ComplianceBlocks`] can only be built complete, from config and the
//! recipient's register; the message layout cannot be rendered without it.

use askama::Template;

use super::wording::{Wording, fill, wording};
use crate::config::{Register, Settings};
use crate::model::EmailAddress;
use crate::model::{LegalBasis, Locale};

pub struct Link {
    pub label: String,
    pub url: String,
}

pub struct IdentityBlock {
    pub heading: &'static str,
    pub legal_name: String,
    pub business_id: String,
    pub postal_address: String,
    pub contact_email: String,
    pub website: Option<String>,
}

pub struct SourceBlock {
    pub heading: &'static str,
    pub sentence: String,
    pub purchased: Option<String>,
}

pub struct PrivacyBlock {
    pub heading: &'static str,
    pub controller: String,
    pub dpo: Option<String>,
    pub purpose_and_basis: String,
    pub categories: String,
    pub recipients: String,
    pub retention: String,
    pub rights: String,
    /// Only for a consent-based contact.
    pub withdraw_consent: Option<WithdrawConsent>,
    pub complaint: String,
    pub source: String,
    pub tracking: Option<String>,
    pub policy: Option<Link>,
}

/// GDPR art. 13(2)(c) / 14(2)(d): where processing rests on consent, the notice states the
/// right to withdraw it at any time (art. 7(3)); its own template, named after the article.
pub struct WithdrawConsent {
    pub sentence: String,
}

pub struct ObjectionBlock {
    pub heading: &'static str,
    pub right: String,
    pub unsubscribe: Link,
    pub reply: String,
}

/// What varies per recipient in the blocks.
pub struct BlockInputs<'a> {
    pub settings: &'a Settings,
    pub register: &'a Register,
    pub locale: Locale,
    pub legal_basis: LegalBasis,
    pub unsubscribe_url: &'a str,
    pub reply_to: &'a EmailAddress,
}

/// All four blocks, complete. Fields are private: the only way to get one is [`Self::new`].
pub struct ComplianceBlocks {
    identity: IdentityBlock,
    source: SourceBlock,
    privacy: PrivacyBlock,
    objection: ObjectionBlock,
}

/// The blocks rendered in one format, in the order they appear in a message.
#[derive(Clone)]
pub struct RenderedBlocks {
    pub identity: String,
    pub source: String,
    pub privacy: String,
    pub objection: String,
}

/// The art. 21 objection block: the one block that carries the recipient's own link.
fn objection_block(inputs: &BlockInputs<'_>) -> ObjectionBlock {
    let w: &Wording = wording(inputs.locale);
    ObjectionBlock {
        heading: w.objection_heading,
        right: w.objection_right.to_string(),
        unsubscribe: Link {
            label: w.objection_link_label.to_string(),
            url: inputs.unsubscribe_url.to_string(),
        },
        reply: fill(w.objection_reply, &[("reply_to", inputs.reply_to.as_str())]),
    }
}

/// The objection block alone, in text and HTML, exactly as [`ComplianceBlocks`] renders it.
pub fn render_objection(inputs: &BlockInputs<'_>) -> Result<(String, String), askama::Error> {
    let b = objection_block(inputs);
    Ok((
        ObjectionText { b: &b }.render()?,
        ObjectionHtml { b: &b }.render()?,
    ))
}

impl ComplianceBlocks {
    pub fn new(inputs: &BlockInputs<'_>) -> Self {
        let w: &Wording = wording(inputs.locale);
        let sender = &inputs.settings.sender;
        let privacy = &inputs.settings.privacy;
        let register = inputs.register;
        let register_title = register.title_in(inputs.locale);
        let identity = IdentityBlock {
            heading: w.identity_heading,
            legal_name: sender.legal_name.clone(),
            business_id: format!("{} {}", w.business_id_label, sender.business_id),
            postal_address: sender.postal_address.clone(),
            contact_email: sender.contact_email.to_string(),
            website: sender.website.clone(),
        };
        let source = SourceBlock {
            heading: w.source_heading,
            sentence: fill(
                w.source_sentence,
                &[
                    ("register", register_title),
                    ("controller", &register.controller),
                    ("controller_contact", &register.controller_contact),
                ],
            ),
            purchased: register.purchased.as_ref().map(|p| {
                fill(
                    w.purchased_sentence,
                    &[
                        ("provider", &p.provider),
                        ("acquired_on", &p.acquired_on.to_string()),
                        ("acquisition_method", &p.acquisition_method),
                        ("valid_until", &p.valid_until.to_string()),
                    ],
                )
            }),
        };
        let privacy_contact = sender.privacy_contact.to_string();
        let authority = privacy
            .supervisory_authority
            .as_deref()
            .unwrap_or(w.default_authority);
        let privacy = PrivacyBlock {
            heading: w.privacy_heading,
            controller: fill(
                w.privacy_controller,
                &[
                    ("controller", &sender.legal_name),
                    ("privacy_contact", &privacy_contact),
                ],
            ),
            dpo: sender
                .dpo_contact
                .as_deref()
                .map(|dpo| fill(w.privacy_dpo, &[("dpo", dpo)])),
            purpose_and_basis: fill(
                w.privacy_purpose,
                &[("basis", w.legal_basis(inputs.legal_basis))],
            ),
            categories: w.privacy_categories.to_string(),
            recipients: w.privacy_recipients.to_string(),
            retention: fill(
                w.privacy_retention,
                &[("months", &privacy.retention_months.to_string())],
            ),
            rights: fill(w.privacy_rights, &[("privacy_contact", &privacy_contact)]),
            withdraw_consent: (inputs.legal_basis == LegalBasis::Consent).then(|| {
                WithdrawConsent {
                    sentence: w.privacy_withdraw_consent.to_string(),
                }
            }),
            complaint: fill(
                w.privacy_complaint,
                &[
                    ("authority", authority),
                    ("authority_url", &privacy.supervisory_authority_url),
                ],
            ),
            source: fill(w.privacy_source, &[("register", register_title)]),
            tracking: privacy
                .declares_tracking
                .then(|| w.privacy_tracking.to_string()),
            policy: privacy.policy_url.as_ref().map(|url| Link {
                label: w.privacy_policy_label.to_string(),
                url: url.clone(),
            }),
        };
        let objection = objection_block(inputs);
        Self {
            identity,
            source,
            privacy,
            objection,
        }
    }

    pub fn render_text(&self) -> Result<RenderedBlocks, askama::Error> {
        Ok(RenderedBlocks {
            identity: IdentityText { b: &self.identity }.render()?,
            source: SourceText { b: &self.source }.render()?,
            privacy: PrivacyText { b: &self.privacy }.render()?,
            objection: ObjectionText { b: &self.objection }.render()?,
        })
    }

    pub fn render_html(&self) -> Result<RenderedBlocks, askama::Error> {
        Ok(RenderedBlocks {
            identity: IdentityHtml { b: &self.identity }.render()?,
            source: SourceHtml { b: &self.source }.render()?,
            privacy: PrivacyHtml { b: &self.privacy }.render()?,
            objection: ObjectionHtml { b: &self.objection }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "blocks/identity.txt")]
struct IdentityText<'a> {
    b: &'a IdentityBlock,
}

#[derive(Template)]
#[template(path = "blocks/identity.html")]
struct IdentityHtml<'a> {
    b: &'a IdentityBlock,
}

#[derive(Template)]
#[template(path = "blocks/source.txt")]
struct SourceText<'a> {
    b: &'a SourceBlock,
}

#[derive(Template)]
#[template(path = "blocks/source.html")]
struct SourceHtml<'a> {
    b: &'a SourceBlock,
}

#[derive(Template)]
#[template(path = "blocks/privacy.txt")]
struct PrivacyText<'a> {
    b: &'a PrivacyBlock,
}

#[derive(Template)]
#[template(path = "blocks/privacy.html")]
struct PrivacyHtml<'a> {
    b: &'a PrivacyBlock,
}

#[derive(Template)]
#[template(path = "blocks/objection.txt")]
struct ObjectionText<'a> {
    b: &'a ObjectionBlock,
}

#[derive(Template)]
#[template(path = "blocks/objection.html")]
struct ObjectionHtml<'a> {
    b: &'a ObjectionBlock,
}
