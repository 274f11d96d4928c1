//! The words of the compliance blocks in fi, sv and en. The sentences themselves are askama
//! templates under `templates/compliance/`, one file per article and locale (named after the
//! article they satisfy), so that a legal reviewer reads each article's wording in one place
//! and a missing sentence is a compile error (each file matches every sentence of its
//! article). This file names the sentences and renders one with its values; it holds no
//! wording of its own.
//!
//! Each text is a whole sentence with `{{ v.placeholders }}`, so that word order stays natural
//! in every language. The block templates under `templates/blocks/` only lay the sentences out.

use askama::Template;

use crate::model::{LegalBasis, Locale};

/// The values a sentence may name; a sentence uses only its own (see its template).
#[derive(Debug, Default, Clone, Copy)]
pub struct Values<'a> {
    pub register: &'a str,
    pub controller: &'a str,
    pub controller_contact: &'a str,
    pub provider: &'a str,
    pub acquired_on: &'a str,
    pub acquisition_method: &'a str,
    pub valid_until: &'a str,
    pub privacy_contact: &'a str,
    pub dpo: &'a str,
    pub basis: &'a str,
    pub months: &'a str,
    pub authority: &'a str,
    pub authority_url: &'a str,
    pub reply_to: &'a str,
}

/// 917/2014 §203(1): the sender identity block.
#[derive(Debug, Clone, Copy)]
pub enum Identity {
    Heading,
    BusinessIdLabel,
}

/// The address-source block.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    Heading,
    /// {register}, {controller}, {controller_contact}
    Sentence,
    /// {provider}, {acquired_on}, {acquisition_method}, {valid_until}
    Purchased,
}

/// GDPR art. 14: the privacy notice.
#[derive(Debug, Clone, Copy)]
pub enum Art14 {
    Heading,
    /// {controller}, {privacy_contact}
    Controller,
    /// {dpo}
    Dpo,
    /// {basis}
    Purpose,
    BasisConsent,
    BasisCustomer,
    BasisJobRole,
    Categories,
    Recipients,
    /// {months}
    Retention,
    /// {privacy_contact}
    Rights,
    /// {authority}, {authority_url}
    Complaint,
    DefaultAuthority,
    /// {register}
    Source,
    Tracking,
    PolicyLabel,
}

/// GDPR art. 13(2)(c) / 14(2)(d): for a consent-based contact, the right to withdraw it.
#[derive(Debug, Clone, Copy)]
pub enum WithdrawConsent {
    Sentence,
}

/// GDPR art. 21: the objection block.
#[derive(Debug, Clone, Copy)]
pub enum Art21 {
    Heading,
    Right,
    LinkLabel,
    /// {reply_to}
    Reply,
}

/// One article's sentences, one template per locale.
macro_rules! article {
    ($article:ident, $fi:literal, $sv:literal, $en:literal) => {
        impl $article {
            /// This sentence in `locale`, with `v`'s values in its placeholders.
            pub fn say(self, locale: Locale, v: &Values<'_>) -> Result<String, askama::Error> {
                #[derive(Template)]
                #[template(path = $fi)]
                struct Fi<'a> {
                    s: $article,
                    // Read by the template, when its article's sentences name a value.
                    #[allow(dead_code)]
                    v: &'a Values<'a>,
                }
                #[derive(Template)]
                #[template(path = $sv)]
                struct Sv<'a> {
                    s: $article,
                    // Read by the template, when its article's sentences name a value.
                    #[allow(dead_code)]
                    v: &'a Values<'a>,
                }
                #[derive(Template)]
                #[template(path = $en)]
                struct En<'a> {
                    s: $article,
                    // Read by the template, when its article's sentences name a value.
                    #[allow(dead_code)]
                    v: &'a Values<'a>,
                }
                match locale {
                    Locale::Fi => Fi { s: self, v }.render(),
                    Locale::Sv => Sv { s: self, v }.render(),
                    Locale::En => En { s: self, v }.render(),
                }
            }
        }
    };
}

article!(
    Identity,
    "compliance/sender_identity_917_2014_s203.fi.txt",
    "compliance/sender_identity_917_2014_s203.sv.txt",
    "compliance/sender_identity_917_2014_s203.en.txt"
);
article!(
    Source,
    "compliance/address_source.fi.txt",
    "compliance/address_source.sv.txt",
    "compliance/address_source.en.txt"
);
article!(
    Art14,
    "compliance/gdpr_art14_notice.fi.txt",
    "compliance/gdpr_art14_notice.sv.txt",
    "compliance/gdpr_art14_notice.en.txt"
);
article!(
    WithdrawConsent,
    "compliance/gdpr_art13_2c_14_2d_withdraw_consent.fi.txt",
    "compliance/gdpr_art13_2c_14_2d_withdraw_consent.sv.txt",
    "compliance/gdpr_art13_2c_14_2d_withdraw_consent.en.txt"
);
article!(
    Art21,
    "compliance/gdpr_art21_objection.fi.txt",
    "compliance/gdpr_art21_objection.sv.txt",
    "compliance/gdpr_art21_objection.en.txt"
);

/// The art. 14 wording of a legal basis.
pub fn legal_basis(basis: LegalBasis) -> Art14 {
    match basis {
        LegalBasis::Consent => Art14::BasisConsent,
        LegalBasis::CustomerRelationship => Art14::BasisCustomer,
        LegalBasis::JobRole => Art14::BasisJobRole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCALES: [Locale; 3] = [Locale::Fi, Locale::Sv, Locale::En];
    const ART14: [Art14; 16] = [
        Art14::Heading,
        Art14::Controller,
        Art14::Dpo,
        Art14::Purpose,
        Art14::BasisConsent,
        Art14::BasisCustomer,
        Art14::BasisJobRole,
        Art14::Categories,
        Art14::Recipients,
        Art14::Retention,
        Art14::Rights,
        Art14::Complaint,
        Art14::DefaultAuthority,
        Art14::Source,
        Art14::Tracking,
        Art14::PolicyLabel,
    ];

    fn values() -> Values<'static> {
        Values {
            register: "R",
            controller: "C",
            controller_contact: "CC",
            provider: "P",
            acquired_on: "2026-01-01",
            acquisition_method: "M",
            valid_until: "2026-12-31",
            privacy_contact: "PC",
            dpo: "D",
            basis: "B",
            months: "24",
            authority: "A",
            authority_url: "https://a.example",
            reply_to: "reply@example.com",
        }
    }

    /// Every sentence, in every locale, is a finished sentence: not empty, no template syntax
    /// left, no surrounding whitespace from the template's layout.
    fn assert_finished(text: &str, what: &str) {
        assert!(!text.is_empty(), "{what} is empty");
        assert_eq!(text.trim(), text, "{what} has layout whitespace");
        assert!(!text.contains('{') && !text.contains('}'), "{what}: {text}");
    }

    #[test]
    fn every_sentence_renders_in_every_locale() {
        let v = values();
        for locale in LOCALES {
            for s in [Identity::Heading, Identity::BusinessIdLabel] {
                assert_finished(&s.say(locale, &v).unwrap(), &format!("{s:?} {locale:?}"));
            }
            for s in [Source::Heading, Source::Sentence, Source::Purchased] {
                assert_finished(&s.say(locale, &v).unwrap(), &format!("{s:?} {locale:?}"));
            }
            for s in [Art21::Heading, Art21::Right, Art21::LinkLabel, Art21::Reply] {
                assert_finished(&s.say(locale, &v).unwrap(), &format!("{s:?} {locale:?}"));
            }
            for s in ART14 {
                assert_finished(&s.say(locale, &v).unwrap(), &format!("{s:?} {locale:?}"));
            }
            let withdraw = WithdrawConsent::Sentence.say(locale, &v).unwrap();
            assert_finished(&withdraw, &format!("withdraw consent {locale:?}"));
        }
    }

    #[test]
    fn placeholders_take_the_values() {
        let v = values();
        for locale in LOCALES {
            let reply = Art21::Reply.say(locale, &v).unwrap();
            assert!(reply.contains("reply@example.com"), "{reply}");
            let complaint = Art14::Complaint.say(locale, &v).unwrap();
            assert!(complaint.contains("A, https://a.example"), "{complaint}");
            let purchased = Source::Purchased.say(locale, &v).unwrap();
            for value in ["P", "2026-01-01", "M", "2026-12-31"] {
                assert!(purchased.contains(value), "{purchased}");
            }
        }
        // A value is inserted as given (the HTML layout escapes it later), and is not itself
        // read as a placeholder.
        let odd = Values {
            reply_to: "{{ v.dpo }} & <x>",
            ..values()
        };
        let reply = Art21::Reply.say(Locale::En, &odd).unwrap();
        assert!(reply.contains("{{ v.dpo }} & <x>"), "{reply}");
    }
}
