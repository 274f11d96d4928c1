//! Footer variants for compliance review and approval.
//!
//! Footers differ per recipient: the address source and the legal basis come from the
//! recipient's register, the language from their locale. A variant is one (register, locale,
//! legal basis); review shows each exactly as recipients will see it, and approval records a
//! SHA-256 of each, so that any later change to what a variant says is detected before sending.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::compose::{BlockInputs, ComplianceBlocks, recipient_locale};
use crate::config::{Campaign, ConfigDir};
use crate::model::{LegalBasis, Locale};
use crate::store::{Approval, RecipientGate};

/// The placeholder that stands for each recipient's own signed token in reviewed footers.
pub const EXAMPLE_TOKEN: &str = "RECIPIENT-SPECIFIC-TOKEN";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct VariantKey {
    pub register: String,
    pub locale: Locale,
    pub legal_basis: LegalBasis,
}

impl VariantKey {
    /// `customers/fi/customer_relationship`: stable, used in approvals and file names.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.register,
            self.locale.as_str(),
            self.legal_basis.as_str()
        )
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FooterVariant {
    pub key: VariantKey,
    pub recipients: usize,
    pub text: String,
    pub html: String,
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("register '{0}' is not defined in registers.toml")]
    UnknownRegister(String),
    #[error("cannot render the compliance blocks")]
    Render(#[from] askama::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Every distinct footer the eligible part of the campaign's audience will receive, with
/// recipient counts, from one streaming pass over the audience.
pub async fn footer_variants(
    config: &ConfigDir,
    campaign: &Campaign,
    store: &crate::store::Store,
) -> Result<Vec<FooterVariant>, ReviewError> {
    let mut counter = VariantCounter::default();
    let scope = super::audience::current_scope(store, campaign).await?;
    store
        .for_each_member(&scope, |gate| counter.add(config, campaign, &gate))
        .await?;
    counter.finish(config, campaign)
}

/// Counts recipients per footer variant as an audience streams past.
#[derive(Default)]
pub struct VariantCounter {
    counts: BTreeMap<VariantKey, usize>,
    unknown_register: Option<String>,
}

impl VariantCounter {
    pub fn add(&mut self, config: &ConfigDir, campaign: &Campaign, gate: &RecipientGate) {
        let today = chrono::Utc::now().date_naive();
        let facts = super::eligibility::ContactFacts::of_member(config, gate);
        if super::eligibility::eligibility(&facts, today).is_excluded() {
            return;
        }
        let r = &gate.recipient;
        let Some(register) = config.registers.get(&r.register) else {
            self.unknown_register = Some(r.register.clone());
            return;
        };
        let key = VariantKey {
            register: r.register.clone(),
            locale: recipient_locale(r.contact.locale, campaign, register),
            legal_basis: r.contact.legal_basis,
        };
        *self.counts.entry(key).or_default() += 1;
    }

    /// Renders each variant once.
    pub fn finish(
        self,
        config: &ConfigDir,
        campaign: &Campaign,
    ) -> Result<Vec<FooterVariant>, ReviewError> {
        if let Some(register) = self.unknown_register {
            return Err(ReviewError::UnknownRegister(register));
        }
        self.counts
            .into_iter()
            .map(|(key, recipients)| render_variant(config, campaign, key, recipients))
            .collect()
    }
}

fn render_variant(
    config: &ConfigDir,
    campaign: &Campaign,
    key: VariantKey,
    recipients: usize,
) -> Result<FooterVariant, ReviewError> {
    let register = config
        .registers
        .get(&key.register)
        .ok_or_else(|| ReviewError::UnknownRegister(key.register.clone()))?;
    let url = format!("{}/u/{EXAMPLE_TOKEN}", config.settings.public_base_url);
    let blocks = ComplianceBlocks::new(&BlockInputs {
        settings: &config.settings,
        register,
        locale: key.locale,
        legal_basis: key.legal_basis,
        unsubscribe_url: &url,
        reply_to: &campaign.reply_to,
    })?;
    let t = blocks.render_text()?;
    let h = blocks.render_html()?;
    let text = [t.identity, t.source, t.privacy, t.objection].join("\n\n");
    let html = [h.identity, h.source, h.privacy, h.objection].join("\n");
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    hasher.update([0]);
    hasher.update(html.as_bytes());
    let hash = data_encoding::HEXLOWER.encode(&hasher.finalize());
    Ok(FooterVariant {
        key,
        recipients,
        text,
        html,
        hash,
    })
}

/// The hash over all variants that an approval records.
pub fn combined_hash(variants: &[FooterVariant]) -> String {
    let mut hasher = Sha256::new();
    for v in variants {
        hasher.update(format!("{}={}\n", v.key.id(), v.hash).as_bytes());
    }
    data_encoding::HEXLOWER.encode(&hasher.finalize())
}

pub fn variant_hashes(variants: &[FooterVariant]) -> BTreeMap<String, String> {
    variants
        .iter()
        .map(|v| (v.key.id(), v.hash.clone()))
        .collect()
}

/// Why the current variants are not covered by `approval`, one line per variant; empty when
/// every variant is approved exactly as it renders now.
pub fn approval_gaps(approval: &Approval, variants: &[FooterVariant]) -> Vec<(String, String)> {
    let mut gaps = Vec::new();
    for v in variants {
        let id = v.key.id();
        match approval.variants.get(&id) {
            None => gaps.push((id, "is new since the approval: it was never approved".to_string())),
            Some(hash) if *hash != v.hash => gaps.push((
                id,
                "changed since the approval: its rendered compliance blocks differ from what was approved"
                    .to_string(),
            )),
            Some(_) => {}
        }
    }
    gaps
}

/// The file name (without extension) of a variant in a review directory.
pub fn file_stem(v: &FooterVariant) -> String {
    v.key.id().replace('/', "-")
}

#[derive(askama::Template)]
#[template(path = "review/index.html")]
struct IndexPage<'a> {
    campaign: &'a str,
    campaign_file: String,
    variants: &'a [FooterVariant],
    total: usize,
    combined: String,
    token: &'a str,
}

#[derive(askama::Template)]
#[template(path = "review/variant.html")]
struct VariantPage<'a> {
    campaign: &'a str,
    v: &'a FooterVariant,
}

/// Writes `index.html` and, per variant, an HTML page and a text file into `dir`; returns the
/// index path.
pub fn write_review(
    dir: &std::path::Path,
    campaign: &Campaign,
    variants: &[FooterVariant],
) -> Result<std::path::PathBuf, ReviewWriteError> {
    use askama::Template;
    std::fs::create_dir_all(dir).map_err(|e| ReviewWriteError::Io(dir.to_path_buf(), e))?;
    let write = |name: String, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| ReviewWriteError::Io(path.clone(), e))?;
        Ok::<_, ReviewWriteError>(path)
    };
    for v in variants {
        let page = VariantPage {
            campaign: &campaign.name,
            v,
        }
        .render()?;
        write(format!("{}.html", file_stem(v)), page)?;
        write(format!("{}.txt", file_stem(v)), v.text.clone())?;
    }
    let index = IndexPage {
        campaign: &campaign.name,
        campaign_file: campaign.file.display().to_string(),
        variants,
        total: variants.iter().map(|v| v.recipients).sum(),
        combined: combined_hash(variants),
        token: EXAMPLE_TOKEN,
    }
    .render()?;
    write("index.html".to_string(), index)
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewWriteError {
    #[error("cannot write {0}: {1}")]
    Io(std::path::PathBuf, std::io::Error),
    #[error("cannot render the review page")]
    Render(#[from] askama::Error),
}
