//! The compliance blocks every message carries: sender identity (917/2014 §203), address
//! source, GDPR art. 14 privacy notice, and the separate art. 21 objection block with the
//! unsubscribe link. [`ComplianceBlocks`] can only be built complete, from config and the
//! recipient's register; the message layout cannot be rendered without it.

use askama::Template;

use super::wording::{
    Art14, Art21, Identity, Source, Values, WithdrawConsent as WithdrawWording, legal_basis,
};
use crate::config::{Register, Settings};
use crate::model::EmailAddress;
use crate::model::{LegalBasis, Locale};

pub struct Link {
    pub label: String,
    pub url: String,
}

pub struct IdentityBlock {
    pub heading: String,
    pub legal_name: String,
    pub business_id: String,
    pub postal_address: String,
    pub contact_email: String,
    pub website: Option<String>,
}

pub struct SourceBlock {
    pub heading: String,
    pub sentence: String,
    pub purchased: Option<String>,
}

pub struct PrivacyBlock {
    pub heading: String,
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
    pub heading: String,
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
fn objection_block(inputs: &BlockInputs<'_>) -> Result<ObjectionBlock, askama::Error> {
    let say = |s: Art21| {
        s.say(
            inputs.locale,
            &Values {
                reply_to: inputs.reply_to.as_str(),
                ..Values::default()
            },
        )
    };
    Ok(ObjectionBlock {
        heading: say(Art21::Heading)?,
        right: say(Art21::Right)?,
        unsubscribe: Link {
            label: say(Art21::LinkLabel)?,
            url: inputs.unsubscribe_url.to_string(),
        },
        reply: say(Art21::Reply)?,
    })
}

/// The objection block alone, in text and HTML, exactly as [`ComplianceBlocks`] renders it.
pub fn render_objection(inputs: &BlockInputs<'_>) -> Result<(String, String), askama::Error> {
    let b = objection_block(inputs)?;
    Ok((
        ObjectionText { b: &b }.render()?,
        ObjectionHtml { b: &b }.render()?,
    ))
}

/// 917/2014 §203(1): who sends, never hidden.
fn identity_block(inputs: &BlockInputs<'_>) -> Result<IdentityBlock, askama::Error> {
    let sender = &inputs.settings.sender;
    let say = |s: Identity| s.say(inputs.locale, &Values::default());
    Ok(IdentityBlock {
        heading: say(Identity::Heading)?,
        legal_name: sender.legal_name.clone(),
        business_id: format!("{} {}", say(Identity::BusinessIdLabel)?, sender.business_id),
        postal_address: sender.postal_address.clone(),
        contact_email: sender.contact_email.to_string(),
        website: sender.website.clone(),
    })
}

/// Where the address came from: the recipient's register (and a purchased list's provider).
fn source_block(inputs: &BlockInputs<'_>) -> Result<SourceBlock, askama::Error> {
    let register = inputs.register;
    let values = Values {
        register: register.title_in(inputs.locale),
        controller: &register.controller,
        controller_contact: &register.controller_contact,
        ..Values::default()
    };
    let purchased = match &register.purchased {
        None => None,
        Some(p) => Some(Source::Purchased.say(
            inputs.locale,
            &Values {
                provider: &p.provider,
                acquired_on: &p.acquired_on.to_string(),
                acquisition_method: &p.acquisition_method,
                valid_until: &p.valid_until.to_string(),
                ..Values::default()
            },
        )?),
    };
    Ok(SourceBlock {
        heading: Source::Heading.say(inputs.locale, &values)?,
        sentence: Source::Sentence.say(inputs.locale, &values)?,
        purchased,
    })
}

/// The GDPR art. 14 notice.
fn privacy_block(inputs: &BlockInputs<'_>) -> Result<PrivacyBlock, askama::Error> {
    let locale = inputs.locale;
    let sender = &inputs.settings.sender;
    let privacy = &inputs.settings.privacy;
    let privacy_contact = sender.privacy_contact.to_string();
    let default_authority = Art14::DefaultAuthority.say(locale, &Values::default())?;
    let basis = legal_basis(inputs.legal_basis).say(locale, &Values::default())?;
    let months = privacy.retention_months.to_string();
    let v = Values {
        register: inputs.register.title_in(locale),
        controller: &sender.legal_name,
        privacy_contact: &privacy_contact,
        dpo: sender.dpo_contact.as_deref().unwrap_or_default(),
        basis: &basis,
        months: &months,
        authority: privacy
            .supervisory_authority
            .as_deref()
            .unwrap_or(&default_authority),
        authority_url: &privacy.supervisory_authority_url,
        ..Values::default()
    };
    let say = |s: Art14| s.say(locale, &v);
    Ok(PrivacyBlock {
        heading: say(Art14::Heading)?,
        controller: say(Art14::Controller)?,
        dpo: sender
            .dpo_contact
            .as_ref()
            .map(|_| say(Art14::Dpo))
            .transpose()?,
        purpose_and_basis: say(Art14::Purpose)?,
        categories: say(Art14::Categories)?,
        recipients: say(Art14::Recipients)?,
        retention: say(Art14::Retention)?,
        rights: say(Art14::Rights)?,
        withdraw_consent: (inputs.legal_basis == LegalBasis::Consent)
            .then(|| WithdrawWording::Sentence.say(locale, &v))
            .transpose()?
            .map(|sentence| WithdrawConsent { sentence }),
        complaint: say(Art14::Complaint)?,
        source: say(Art14::Source)?,
        tracking: privacy
            .declares_tracking
            .then(|| say(Art14::Tracking))
            .transpose()?,
        policy: privacy
            .policy_url
            .as_ref()
            .map(|url| {
                Ok::<_, askama::Error>(Link {
                    label: say(Art14::PolicyLabel)?,
                    url: url.clone(),
                })
            })
            .transpose()?,
    })
}

impl ComplianceBlocks {
    /// All four blocks; an error only if a wording template fails to render.
    pub fn new(inputs: &BlockInputs<'_>) -> Result<Self, askama::Error> {
        Ok(Self {
            identity: identity_block(inputs)?,
            source: source_block(inputs)?,
            privacy: privacy_block(inputs)?,
            objection: objection_block(inputs)?,
        })
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
