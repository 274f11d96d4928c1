//! The texts of double opt-in: the GDPR art. 13 notice a signup form shows before its button
//! (an askama block, so that the exact rendered text can be hashed into each consent's proof),
//! and the confirmation message with its link, in fi, sv and en.

use askama::Template;
use lettre::message::MultiPart;
use lettre::message::header::ContentType;

use super::wording::{Art14, Identity, Values};
use super::{ComposeError, ComposedMessage, lettre_mailbox, quoted_printable_part, reject_control};
use crate::config::{ConfigDir, Mailbox, Register};
use crate::model::EmailAddress;
use crate::model::Locale;

/// The signup texts of one locale that the message blocks do not already have.
pub struct SignupWording {
    pub notice_heading: &'static str,
    pub identity: &'static str,
    pub default_purposes: &'static str,
    /// {basis}
    pub basis: &'static str,
    pub categories: &'static str,
    pub voluntary: &'static str,
    /// {months}, {hours}
    pub retention: &'static str,
    /// {privacy_contact}
    pub withdraw: &'static str,
    /// {register}
    pub subject: &'static str,
    /// {email}, {register}, {sender}
    pub mail_intro: &'static str,
    pub mail_action: &'static str,
    pub mail_button: &'static str,
    /// {hours}
    pub mail_expiry: &'static str,
    pub mail_ignore: &'static str,
}

pub fn signup_wording(locale: Locale) -> &'static SignupWording {
    match locale {
        Locale::Fi => &FI,
        Locale::Sv => &SV,
        Locale::En => &EN,
    }
}

static FI: SignupWording = SignupWording {
    notice_heading: "Tietosuojailmoitus (EU:n tietosuoja-asetus, 13 artikla)",
    identity: "Rekisterinpitäjä",
    default_purposes: "Lähetämme sinulle sähköpostitse uutiskirjeitä sekä tietoa tuotteistamme, palveluistamme ja tapahtumistamme.",
    basis: "Käsittelyn peruste: {basis}.",
    categories: "Käsiteltävät tiedot: sähköpostiosoitteesi, nimesi ja yrityksesi, jos annat ne, sekä suostumuksesi todisteet: tilauksen ja vahvistuksen ajat, tämän ilmoituksen versio ja lyhennetty IP-osoite.",
    voluntary: "Tilaaminen on vapaaehtoista. Sähköpostiosoite tarvitaan viestien lähettämiseen; nimi ja yritys ovat valinnaisia.",
    retention: "Säilytämme tietoja {months} kuukautta viimeisestä viestistä tai kunnes peruutat suostumuksesi. Vahvistamaton tilaus poistetaan {hours} tunnin kuluttua.",
    withdraw: "Voit peruuttaa suostumuksesi milloin tahansa maksutta jokaisen viestimme peruutuslinkillä tai kirjoittamalla osoitteeseen {privacy_contact}. Peruuttaminen ei vaikuta ennen sitä tehdyn käsittelyn lainmukaisuuteen.",
    subject: "Vahvista tilauksesi: {register}",
    mail_intro: "Joku – toivottavasti sinä – pyysi liittämään osoitteen {email} rekisteriin {register} (lähettäjä {sender}).",
    mail_action: "Vahvista tilaus avaamalla linkki ja painamalla sivun vahvistuspainiketta:",
    mail_button: "Vahvista tilaus",
    mail_expiry: "Linkki on voimassa {hours} tuntia.",
    mail_ignore: "Jos et pyytänyt tätä, jätä viesti huomiotta: osoitettasi ei lisätä rekisteriin eikä sinulle lähetetä muuta.",
};

static SV: SignupWording = SignupWording {
    notice_heading: "Dataskyddsmeddelande (EU:s dataskyddsförordning, artikel 13)",
    identity: "Personuppgiftsansvarig",
    default_purposes: "Vi skickar dig nyhetsbrev och information om våra produkter, tjänster och evenemang per e-post.",
    basis: "Rättslig grund: {basis}.",
    categories: "Uppgifter som behandlas: din e-postadress, ditt namn och ditt företag om du anger dem, samt bevis på ditt samtycke: tidpunkterna för beställningen och bekräftelsen, versionen av detta meddelande och en förkortad IP-adress.",
    voluntary: "Beställningen är frivillig. E-postadressen behövs för att skicka meddelandena; namn och företag är valfria.",
    retention: "Vi sparar uppgifterna i {months} månader efter det senaste meddelandet eller tills du återkallar ditt samtycke. En obekräftad beställning raderas efter {hours} timmar.",
    withdraw: "Du kan när som helst och kostnadsfritt återkalla ditt samtycke med avregistreringslänken i varje meddelande eller genom att skriva till {privacy_contact}. Återkallelsen påverkar inte lagligheten av behandlingen innan dess.",
    subject: "Bekräfta din beställning: {register}",
    mail_intro: "Någon – förhoppningsvis du – bad att adressen {email} ska läggas till i registret {register} (avsändare {sender}).",
    mail_action: "Bekräfta beställningen genom att öppna länken och trycka på bekräftelseknappen på sidan:",
    mail_button: "Bekräfta beställningen",
    mail_expiry: "Länken gäller i {hours} timmar.",
    mail_ignore: "Om du inte bad om detta kan du lämna meddelandet utan åtgärd: din adress läggs inte till och du får inget mer.",
};

static EN: SignupWording = SignupWording {
    notice_heading: "Privacy notice (EU General Data Protection Regulation, Article 13)",
    identity: "Controller",
    default_purposes: "We send you newsletters and information about our products, services and events by email.",
    basis: "Legal basis: {basis}.",
    categories: "Data processed: your email address, your name and company if you give them, and the proof of your consent: the times of your signup and confirmation, the version of this notice and a shortened IP address.",
    voluntary: "Signing up is voluntary. The email address is needed to send the messages; name and company are optional.",
    retention: "We keep the data for {months} months after the last message or until you withdraw your consent. An unconfirmed signup is deleted after {hours} hours.",
    withdraw: "You may withdraw your consent at any time, free of charge, with the unsubscribe link in every message or by writing to {privacy_contact}. Withdrawal does not affect the lawfulness of processing before it.",
    subject: "Confirm your subscription: {register}",
    mail_intro: "Someone – hopefully you – asked for the address {email} to be added to {register} (sender {sender}).",
    mail_action: "Confirm the subscription by opening the link and pressing the confirm button on the page:",
    mail_button: "Confirm subscription",
    mail_expiry: "The link is valid for {hours} hours.",
    mail_ignore: "If you did not ask for this, ignore this message: your address is not added and you will get nothing more.",
};

#[derive(Template)]
#[template(path = "blocks/art13_signup.html")]
struct NoticeBlock<'a> {
    heading: &'a str,
    identity_label: &'a str,
    identity: String,
    controller: String,
    dpo: Option<String>,
    purposes: &'a str,
    basis: String,
    categories: &'a str,
    recipients: String,
    voluntary: &'a str,
    retention: String,
    rights: String,
    withdraw: String,
    complaint: String,
    policy_label: String,
    policy_url: Option<&'a str>,
}

/// The art. 13 notice of `register`'s signup form in `locale`, as HTML: exactly the text that
/// the form shows and that a consent's proof hashes.
pub fn signup_notice(
    config: &ConfigDir,
    register: &Register,
    locale: Locale,
    link_validity_hours: u64,
) -> Result<String, ComposeError> {
    let w = signup_wording(locale);
    let sender = &config.settings.sender;
    let privacy = &config.settings.privacy;
    let privacy_contact = sender.privacy_contact.as_str();
    let purposes = register
        .signup
        .as_ref()
        .and_then(|s| s.purposes.get(&locale))
        .map_or(w.default_purposes, String::as_str);
    let months = register
        .retention_months
        .unwrap_or(privacy.retention_months)
        .to_string();
    let b = BlockSentences::new(config, register, locale)?;
    NoticeBlock {
        heading: w.notice_heading,
        identity_label: w.identity,
        identity: format!(
            "{}, {} {}, {}",
            sender.legal_name, b.business_id_label, sender.business_id, sender.postal_address
        ),
        controller: b.controller,
        dpo: b.dpo,
        purposes,
        basis: fill(w.basis, &[("basis", &b.basis_consent)]),
        categories: w.categories,
        recipients: b.recipients,
        voluntary: w.voluntary,
        retention: fill(
            w.retention,
            &[
                ("months", &months),
                ("hours", &link_validity_hours.to_string()),
            ],
        ),
        rights: b.rights,
        withdraw: fill(w.withdraw, &[("privacy_contact", privacy_contact)]),
        complaint: b.complaint,
        policy_label: b.policy_label,
        policy_url: privacy.policy_url.as_deref(),
    }
    .render()
    .map_err(|e| ComposeError::Layout("signup notice", e))
}

/// The sentences of the compliance blocks (GDPR art. 14's wording, rendered from
/// templates/compliance/) that the signup notice shares with every message's footer.
struct BlockSentences {
    business_id_label: String,
    controller: String,
    dpo: Option<String>,
    basis_consent: String,
    recipients: String,
    rights: String,
    complaint: String,
    policy_label: String,
}

impl BlockSentences {
    fn new(config: &ConfigDir, register: &Register, locale: Locale) -> Result<Self, ComposeError> {
        let sender = &config.settings.sender;
        let privacy = &config.settings.privacy;
        let say = |sentence: Art14, values: &Values<'_>| {
            sentence
                .say(locale, values)
                .map_err(|e| ComposeError::Layout("signup notice", e))
        };
        let default_authority = say(Art14::DefaultAuthority, &Values::default())?;
        let authority = privacy
            .supervisory_authority
            .as_deref()
            .unwrap_or(&default_authority);
        let privacy_contact = sender.privacy_contact.as_str();
        Ok(Self {
            business_id_label: Identity::BusinessIdLabel
                .say(locale, &Values::default())
                .map_err(|e| ComposeError::Layout("signup notice", e))?,
            controller: say(
                Art14::Controller,
                &Values {
                    controller: &register.controller,
                    privacy_contact,
                    ..Values::default()
                },
            )?,
            dpo: match sender.dpo_contact.as_deref() {
                None => None,
                Some(dpo) => Some(say(
                    Art14::Dpo,
                    &Values {
                        dpo,
                        ..Values::default()
                    },
                )?),
            },
            basis_consent: say(Art14::BasisConsent, &Values::default())?,
            recipients: say(Art14::Recipients, &Values::default())?,
            rights: say(
                Art14::Rights,
                &Values {
                    privacy_contact,
                    ..Values::default()
                },
            )?,
            complaint: say(
                Art14::Complaint,
                &Values {
                    authority,
                    authority_url: &privacy.supervisory_authority_url,
                    ..Values::default()
                },
            )?,
            policy_label: say(Art14::PolicyLabel, &Values::default())?,
        })
    }
}

/// Fills the `{name}` placeholders of the signup form's own sentences (the words of the
/// compliance blocks come rendered from their templates).
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(text.to_string(), |out, (name, value)| {
        out.replace(&format!("{{{name}}}"), value)
    })
}

#[derive(Template)]
#[template(path = "mail/signup_confirm.txt")]
struct ConfirmText<'a> {
    intro: &'a str,
    action: &'a str,
    link: &'a str,
    expiry: &'a str,
    ignore: &'a str,
    identity: &'a str,
}

#[derive(Template)]
#[template(path = "mail/signup_confirm.html")]
struct ConfirmHtml<'a> {
    lang: &'a str,
    subject: &'a str,
    intro: &'a str,
    action: &'a str,
    button: &'a str,
    link: &'a str,
    expiry: &'a str,
    ignore: &'a str,
    identity: &'a str,
}

/// What one confirmation message says and where it goes.
pub struct ConfirmationMail<'a> {
    /// The signup request's id; names the message in an `outbox:` transport.
    pub request_id: i64,
    pub from: &'a Mailbox,
    pub to: &'a EmailAddress,
    pub envelope_from: EmailAddress,
    pub locale: Locale,
    pub register_title: &'a str,
    pub link: &'a str,
    pub link_validity_hours: u64,
    /// The domain of the Message-ID (the bounce domain).
    pub domain: &'a str,
    /// Random, so that Message-IDs never repeat.
    pub nonce: &'a str,
}

/// Builds the confirmation message (text and HTML) of a signup request.
pub fn confirmation_message(
    config: &ConfigDir,
    mail: &ConfirmationMail<'_>,
) -> Result<ComposedMessage, ComposeError> {
    let w = signup_wording(mail.locale);
    let sender = &config.settings.sender;
    let subject = fill(w.subject, &[("register", mail.register_title)]);
    reject_control("Subject", &subject)?;
    let intro = fill(
        w.mail_intro,
        &[
            ("email", mail.to.as_str()),
            ("register", mail.register_title),
            ("sender", &sender.legal_name),
        ],
    );
    let expiry = fill(
        w.mail_expiry,
        &[("hours", &mail.link_validity_hours.to_string())],
    );
    let identity = format!(
        "{}, {} {}, {}, {}",
        sender.legal_name,
        Identity::BusinessIdLabel
            .say(mail.locale, &Values::default())
            .map_err(|e| ComposeError::Layout("signup confirmation", e))?,
        sender.business_id,
        sender.postal_address,
        sender.contact_email
    );
    let text = ConfirmText {
        intro: &intro,
        action: w.mail_action,
        link: mail.link,
        expiry: &expiry,
        ignore: w.mail_ignore,
        identity: &identity,
    }
    .render()
    .map_err(|e| ComposeError::Layout("confirmation text", e))?;
    let html = ConfirmHtml {
        lang: mail.locale.as_str(),
        subject: &subject,
        intro: &intro,
        action: w.mail_action,
        button: w.mail_button,
        link: mail.link,
        expiry: &expiry,
        ignore: w.mail_ignore,
        identity: &identity,
    }
    .render()
    .map_err(|e| ComposeError::Layout("confirmation HTML", e))?;
    let message_id = format!(
        "<signup.{}.{}@{}>",
        mail.request_id, mail.nonce, mail.domain
    );
    let bytes = build(mail, &subject, &message_id, &text, &html)?;
    Ok(ComposedMessage {
        outbox_id: mail.request_id,
        envelope_from: mail.envelope_from.clone(),
        recipient: mail.to.clone(),
        message_id,
        subject,
        unsubscribe_url: String::new(),
        text,
        html,
        bytes,
    })
}

/// The message's bytes: `multipart/alternative` of the text and the HTML.
fn build(
    mail: &ConfirmationMail<'_>,
    subject: &str,
    message_id: &str,
    text: &str,
    html: &str,
) -> Result<Vec<u8>, ComposeError> {
    let to = Mailbox {
        name: None,
        address: mail.to.clone(),
    };
    let message = lettre::Message::builder()
        .from(lettre_mailbox(mail.from)?)
        .to(lettre_mailbox(&to)?)
        .subject(subject)
        .date_now()
        .message_id(Some(message_id.to_string()))
        .multipart(
            MultiPart::alternative()
                .singlepart(quoted_printable_part(
                    ContentType::TEXT_PLAIN,
                    super::qp::encode(text),
                ))
                .singlepart(quoted_printable_part(
                    ContentType::TEXT_HTML,
                    super::qp::encode(html),
                )),
        )
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every locale's notice names what art. 13 asks for, the same way each time (its hash is
    /// the proof of what a person saw).
    #[test]
    fn the_notice_states_art_13_in_every_locale_and_is_stable() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let config = ConfigDir::load(&dir).expect("the example configuration loads");
        let register = config.registers.get("events").expect("example register");
        let expected = [
            (
                Locale::Fi,
                [
                    "13 artikla",
                    "suostumuksesi",
                    "24 kuukautta",
                    "peruuttaa suostumuksesi",
                    "Tietosuojavaltuutetun toimisto",
                ],
            ),
            (
                Locale::Sv,
                [
                    "artikel 13",
                    "ditt samtycke",
                    "24 månader",
                    "återkalla ditt samtycke",
                    "Dataombudsmannens byrå",
                ],
            ),
            (
                Locale::En,
                [
                    "Article 13",
                    "your consent",
                    "24 months",
                    "withdraw your consent",
                    "Data Protection Ombudsman",
                ],
            ),
        ];
        for (locale, parts) in expected {
            let notice = signup_notice(&config, register, locale, 48).unwrap();
            for part in
                parts
                    .iter()
                    .chain(&["Esimerkki Analytics Oy", "privacy@example.com", "1234567-1"])
            {
                assert!(notice.contains(part), "{locale:?} lacks {part:?}: {notice}");
            }
            assert_eq!(
                notice,
                signup_notice(&config, register, locale, 48).unwrap()
            );
        }
    }
}
