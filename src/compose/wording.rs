//! The words of the compliance blocks in fi, sv and en, in one place for legal review.
//!
//! Each text is a whole sentence with `{placeholders}`, so that word order stays natural in
//! every language; [`fill`] replaces them with values from config and the recipient's register.
//! The block templates under `templates/blocks/` only lay these sentences out.

use crate::model::{LegalBasis, Locale};

pub struct Wording {
    pub identity_heading: &'static str,
    pub business_id_label: &'static str,
    pub source_heading: &'static str,
    /// {register}, {controller}, {controller_contact}
    pub source_sentence: &'static str,
    /// {provider}, {acquired_on}, {acquisition_method}, {valid_until}
    pub purchased_sentence: &'static str,
    pub privacy_heading: &'static str,
    /// {controller}, {privacy_contact}
    pub privacy_controller: &'static str,
    /// {dpo}
    pub privacy_dpo: &'static str,
    /// {basis}
    pub privacy_purpose: &'static str,
    pub basis_consent: &'static str,
    pub basis_customer: &'static str,
    pub basis_job_role: &'static str,
    pub privacy_categories: &'static str,
    pub privacy_recipients: &'static str,
    /// {months}
    pub privacy_retention: &'static str,
    /// {privacy_contact}
    pub privacy_rights: &'static str,
    /// For consent only: the right to withdraw it at any time (GDPR art. 13(2)(c), 14(2)(d)).
    pub privacy_withdraw_consent: &'static str,
    /// {authority}, {authority_url}
    pub privacy_complaint: &'static str,
    pub default_authority: &'static str,
    /// {register}
    pub privacy_source: &'static str,
    pub privacy_tracking: &'static str,
    pub privacy_policy_label: &'static str,
    pub objection_heading: &'static str,
    pub objection_right: &'static str,
    pub objection_link_label: &'static str,
    /// {reply_to}
    pub objection_reply: &'static str,
}

pub fn wording(locale: Locale) -> &'static Wording {
    match locale {
        Locale::Fi => &FI,
        Locale::Sv => &SV,
        Locale::En => &EN,
    }
}

impl Wording {
    pub fn legal_basis(&self, basis: LegalBasis) -> &'static str {
        match basis {
            LegalBasis::Consent => self.basis_consent,
            LegalBasis::CustomerRelationship => self.basis_customer,
            LegalBasis::JobRole => self.basis_job_role,
        }
    }
}

/// Replaces each `{name}` in `text` with its value.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}", name = name), value);
    }
    out
}

static FI: Wording = Wording {
    identity_heading: "Lähettäjä",
    business_id_label: "Y-tunnus",
    source_heading: "Osoitelähde",
    source_sentence: "Yhteystietosi ovat rekisteristä {register}, jonka rekisterinpitäjä on {controller} ({controller_contact}).",
    purchased_sentence: "Tiedot on hankittu {acquired_on} palveluntarjoajalta {provider} ({acquisition_method}); niitä käytetään markkinointiin enintään {valid_until} asti.",
    privacy_heading: "Tietosuojailmoitus (EU:n tietosuoja-asetus, 14 artikla)",
    privacy_controller: "Rekisterinpitäjä: {controller}, tietosuoja-asiat: {privacy_contact}.",
    privacy_dpo: "Tietosuojavastaava: {dpo}.",
    privacy_purpose: "Käsittelemme tietojasi yritysten väliseen suoramarkkinointiin. Käsittelyn peruste: {basis}.",
    basis_consent: "suostumuksesi (tietosuoja-asetuksen 6 artiklan 1 kohdan a alakohta)",
    basis_customer: "oikeutettu etu olemassa olevan asiakassuhteen perusteella (6 artiklan 1 kohdan f alakohta)",
    basis_job_role: "oikeutettu etu, koska viesti liittyy työtehtäviisi (6 artiklan 1 kohdan f alakohta)",
    privacy_categories: "Käsiteltävät tiedot: nimi, työsähköpostiosoite, tehtävänimike, yritys ja sen Y-tunnus.",
    privacy_recipients: "Tietoja käsittelevät vain rekisterinpitäjä ja sen puolesta sähköpostia lähettävät palveluntarjoajat; tietoja ei luovuteta muille.",
    privacy_retention: "Säilytämme tietoja {months} kuukautta viimeisestä viestistä, minkä jälkeen ne poistetaan.",
    privacy_rights: "Sinulla on oikeus saada pääsy tietoihisi, oikaista ja poistaa ne, rajoittaa niiden käsittelyä, vastustaa käsittelyä ja siirtää tiedot järjestelmästä toiseen. Pyynnöt: {privacy_contact}.",
    privacy_withdraw_consent: "Voit peruuttaa suostumuksesi milloin tahansa maksutta, esimerkiksi alla olevalla linkillä tai vastaamalla tähän viestiin. Peruuttaminen ei vaikuta ennen sitä suostumuksen perusteella tehdyn käsittelyn lainmukaisuuteen.",
    privacy_complaint: "Sinulla on oikeus tehdä valitus valvontaviranomaiselle: {authority}, {authority_url}.",
    default_authority: "Tietosuojavaltuutetun toimisto",
    privacy_source: "Tietojen lähde: rekisteri {register} (katso osoitelähde yllä).",
    privacy_tracking: "Seuraamme viestiemme linkkien klikkauksia (ja avauksia, kun niitä mitataan) oikeutetun edun perusteella parantaaksemme viestintäämme.",
    privacy_policy_label: "Koko tietosuojaseloste",
    objection_heading: "Oikeus kieltää suoramarkkinointi (tietosuoja-asetus, 21 artikla)",
    objection_right: "Voit milloin tahansa maksutta kieltää sinulle suunnatun suoramarkkinoinnin. Kielto tulee voimaan heti.",
    objection_link_label: "Peruuta tilaus ja kiellä markkinointi",
    objection_reply: "Voit myös vastata tähän viestiin sanalla POISTA tai kirjoittaa osoitteeseen {reply_to}.",
};

static SV: Wording = Wording {
    identity_heading: "Avsändare",
    business_id_label: "FO-nummer",
    source_heading: "Adresskälla",
    source_sentence: "Dina kontaktuppgifter kommer från registret {register}, personuppgiftsansvarig {controller} ({controller_contact}).",
    purchased_sentence: "Uppgifterna har köpts {acquired_on} av tjänsteleverantören {provider} ({acquisition_method}) och används för marknadsföring högst till och med {valid_until}.",
    privacy_heading: "Dataskyddsmeddelande (EU:s dataskyddsförordning, artikel 14)",
    privacy_controller: "Personuppgiftsansvarig: {controller}, dataskyddsfrågor: {privacy_contact}.",
    privacy_dpo: "Dataskyddsombud: {dpo}.",
    privacy_purpose: "Vi behandlar dina uppgifter för direktmarknadsföring mellan företag. Rättslig grund: {basis}.",
    basis_consent: "ditt samtycke (artikel 6.1 a i dataskyddsförordningen)",
    basis_customer: "berättigat intresse på grund av ett befintligt kundförhållande (artikel 6.1 f)",
    basis_job_role: "berättigat intresse, eftersom meddelandet gäller dina arbetsuppgifter (artikel 6.1 f)",
    privacy_categories: "Uppgifter som behandlas: namn, e-postadress i arbetet, titel, företag och dess FO-nummer.",
    privacy_recipients: "Uppgifterna behandlas endast av den personuppgiftsansvarige och de tjänsteleverantörer som skickar e-post för dess räkning; de lämnas inte ut till andra.",
    privacy_retention: "Vi sparar uppgifterna i {months} månader efter det senaste meddelandet och raderar dem sedan.",
    privacy_rights: "Du har rätt till tillgång till dina uppgifter, rättelse och radering, begränsning av behandlingen, att invända mot behandlingen och till dataportabilitet. Begäran: {privacy_contact}.",
    privacy_withdraw_consent: "Du kan när som helst och kostnadsfritt återkalla ditt samtycke, till exempel med länken nedan eller genom att svara på detta meddelande. Återkallelsen påverkar inte lagligheten av behandling som grundar sig på samtycket innan det återkallades.",
    privacy_complaint: "Du har rätt att lämna klagomål till tillsynsmyndigheten: {authority}, {authority_url}.",
    default_authority: "Dataombudsmannens byrå",
    privacy_source: "Uppgifternas källa: registret {register} (se adresskällan ovan).",
    privacy_tracking: "Vi registrerar klick på länkarna i våra meddelanden (och öppningar, när de mäts) med stöd av berättigat intresse för att förbättra vår kommunikation.",
    privacy_policy_label: "Hela dataskyddsbeskrivningen",
    objection_heading: "Rätt att invända mot direktmarknadsföring (dataskyddsförordningen, artikel 21)",
    objection_right: "Du kan när som helst och kostnadsfritt förbjuda direktmarknadsföring till dig. Förbudet gäller genast.",
    objection_link_label: "Avsluta prenumerationen och förbjud marknadsföring",
    objection_reply: "Du kan också svara på detta meddelande med ordet AVREGISTRERA eller skriva till {reply_to}.",
};

static EN: Wording = Wording {
    identity_heading: "Sender",
    business_id_label: "Business ID",
    source_heading: "Where we got your address",
    source_sentence: "Your contact details come from the register {register}, whose controller is {controller} ({controller_contact}).",
    purchased_sentence: "The data was acquired on {acquired_on} from the provider {provider} ({acquisition_method}) and is used for marketing until {valid_until} at the latest.",
    privacy_heading: "Privacy notice (EU General Data Protection Regulation, Article 14)",
    privacy_controller: "Controller: {controller}; privacy matters: {privacy_contact}.",
    privacy_dpo: "Data protection officer: {dpo}.",
    privacy_purpose: "We process your data for business-to-business direct marketing. Legal basis: {basis}.",
    basis_consent: "your consent (GDPR Article 6(1)(a))",
    basis_customer: "legitimate interest arising from an existing customer relationship (Article 6(1)(f))",
    basis_job_role: "legitimate interest, as the message concerns your job role (Article 6(1)(f))",
    privacy_categories: "Data processed: name, work email address, job title, company and its business ID.",
    privacy_recipients: "The data is processed only by the controller and the service providers that send email on its behalf; it is not disclosed to others.",
    privacy_retention: "We keep the data for {months} months after the last message and then delete it.",
    privacy_rights: "You have the right of access to your data, to rectification and erasure, to restriction of processing, to object to processing, and to data portability. Requests: {privacy_contact}.",
    privacy_withdraw_consent: "You may withdraw your consent at any time, free of charge, for example with the link below or by replying to this message. Withdrawal does not affect the lawfulness of processing based on consent before its withdrawal.",
    privacy_complaint: "You have the right to lodge a complaint with the supervisory authority: {authority}, {authority_url}.",
    default_authority: "Office of the Data Protection Ombudsman (Finland)",
    privacy_source: "Source of the data: the register {register} (see where we got your address, above).",
    privacy_tracking: "We record clicks on the links in our messages (and opens, when measured), on the basis of legitimate interest, to improve our communication.",
    privacy_policy_label: "Full privacy policy",
    objection_heading: "Your right to object to direct marketing (GDPR Article 21)",
    objection_right: "You may object to direct marketing to you at any time, free of charge. Your objection takes effect immediately.",
    objection_link_label: "Unsubscribe and object to marketing",
    objection_reply: "You can also reply to this message with the word UNSUBSCRIBE or write to {reply_to}.",
};
