//! The signup pages in fi, sv and en: the form (with the art. 13 notice before its button),
//! the answer to a submission, the confirmation page and its results. Templates under
//! `templates/web/signup_*.html`.

use askama::Template;

use crate::model::Locale;

pub struct SignupPageWording {
    /// {register}
    pub form_title: &'static str,
    /// {register}
    pub form_intro: &'static str,
    pub email_label: &'static str,
    pub name_label: &'static str,
    pub company_label: &'static str,
    pub honeypot_label: &'static str,
    pub button: &'static str,
    pub invalid_email: &'static str,
    pub invalid_field: &'static str,
    pub notice_changed: &'static str,
    pub sent_title: &'static str,
    /// {hours}
    pub sent_text: &'static str,
    pub confirm_title: &'static str,
    /// {register}, {sender}
    pub confirm_text: &'static str,
    pub confirm_button: &'static str,
    pub done_title: &'static str,
    /// {register}
    pub done_text: &'static str,
    pub invalid_title: &'static str,
    pub invalid_text: &'static str,
    pub form_link: &'static str,
}

pub fn signup_wording(locale: Locale) -> &'static SignupPageWording {
    match locale {
        Locale::Fi => &FI,
        Locale::Sv => &SV,
        Locale::En => &EN,
    }
}

static FI: SignupPageWording = SignupPageWording {
    form_title: "Tilaa: {register}",
    form_intro: "Liity rekisteriin {register}. Saat sähköpostiisi vahvistuslinkin; tilaus alkaa vasta, kun vahvistat sen.",
    email_label: "Sähköpostiosoite",
    name_label: "Nimi (valinnainen)",
    company_label: "Yritys (valinnainen)",
    honeypot_label: "Jätä tämä kenttä tyhjäksi",
    button: "Tilaa",
    invalid_email: "Sähköpostiosoite ei kelpaa. Tarkista se.",
    invalid_field: "Nimi ja yritys: enintään 200 merkkiä yhdellä rivillä.",
    notice_changed: "Tietosuojailmoitus on päivittynyt. Lue se ja lähetä lomake uudelleen.",
    sent_title: "Tarkista sähköpostisi",
    sent_text: "Jos osoitteen voi liittää rekisteriin, lähetimme siihen vahvistuslinkin. Tilaus alkaa vasta, kun avaat linkin ja vahvistat sen. Linkki on voimassa {hours} tuntia.",
    confirm_title: "Vahvista tilaus",
    confirm_text: "Vahvista, että haluat liittyä rekisteriin {register} ja saada sähköpostia lähettäjältä {sender}.",
    confirm_button: "Vahvista tilaus",
    done_title: "Tilaus vahvistettu",
    done_text: "Kiitos! Olet nyt rekisterissä {register}. Voit peruuttaa suostumuksesi milloin tahansa jokaisen viestin peruutuslinkillä.",
    invalid_title: "Linkki ei ole voimassa",
    invalid_text: "Vahvistuslinkki on vanhentunut tai virheellinen, eikä mitään muutettu. Voit tilata uudelleen lomakkeella.",
    form_link: "Tilauslomakkeeseen",
};

static SV: SignupPageWording = SignupPageWording {
    form_title: "Beställ: {register}",
    form_intro: "Gå med i registret {register}. Du får en bekräftelselänk per e-post; beställningen börjar först när du bekräftar den.",
    email_label: "E-postadress",
    name_label: "Namn (valfritt)",
    company_label: "Företag (valfritt)",
    honeypot_label: "Lämna detta fält tomt",
    button: "Beställ",
    invalid_email: "E-postadressen är inte giltig. Kontrollera den.",
    invalid_field: "Namn och företag: högst 200 tecken på en rad.",
    notice_changed: "Dataskyddsmeddelandet har uppdaterats. Läs det och skicka formuläret igen.",
    sent_title: "Kontrollera din e-post",
    sent_text: "Om adressen kan läggas till i registret har vi skickat en bekräftelselänk till den. Beställningen börjar först när du öppnar länken och bekräftar. Länken gäller i {hours} timmar.",
    confirm_title: "Bekräfta beställningen",
    confirm_text: "Bekräfta att du vill gå med i registret {register} och få e-post från {sender}.",
    confirm_button: "Bekräfta beställningen",
    done_title: "Beställningen är bekräftad",
    done_text: "Tack! Du finns nu i registret {register}. Du kan när som helst återkalla ditt samtycke med avregistreringslänken i varje meddelande.",
    invalid_title: "Länken är inte giltig",
    invalid_text: "Bekräftelselänken har gått ut eller är felaktig, och ingenting har ändrats. Du kan beställa igen med formuläret.",
    form_link: "Till beställningsformuläret",
};

static EN: SignupPageWording = SignupPageWording {
    form_title: "Subscribe: {register}",
    form_intro: "Join {register}. You will get a confirmation link by email; the subscription starts only when you confirm it.",
    email_label: "Email address",
    name_label: "Name (optional)",
    company_label: "Company (optional)",
    honeypot_label: "Leave this field empty",
    button: "Subscribe",
    invalid_email: "The email address is not valid. Please check it.",
    invalid_field: "Name and company: at most 200 characters on one line.",
    notice_changed: "The privacy notice has been updated. Please read it and send the form again.",
    sent_title: "Check your email",
    sent_text: "If the address can be added, we have sent a confirmation link to it. The subscription starts only when you open the link and confirm. The link is valid for {hours} hours.",
    confirm_title: "Confirm your subscription",
    confirm_text: "Confirm that you want to join {register} and receive email from {sender}.",
    confirm_button: "Confirm subscription",
    done_title: "Subscription confirmed",
    done_text: "Thank you! You are now in {register}. You may withdraw your consent at any time with the unsubscribe link in every message.",
    invalid_title: "This link is not valid",
    invalid_text: "The confirmation link has expired or is not valid, and nothing was changed. You can sign up again with the form.",
    form_link: "To the signup form",
};

/// The form, with the notice (already rendered HTML) before its button.
#[derive(Template)]
#[template(path = "web/signup_form.html")]
pub struct FormPage<'a> {
    pub lang: &'a str,
    pub title: &'a str,
    pub w: &'a SignupPageWording,
    pub register: &'a str,
    pub intro: String,
    pub error: Option<&'a str>,
    pub email: &'a str,
    pub name: &'a str,
    pub company: &'a str,
    pub notice_html: &'a str,
    pub notice_sha256: &'a str,
}

/// A page of a heading and a text: the answer to a submission, a confirmation's result.
#[derive(Template)]
#[template(path = "web/signup_message.html")]
pub struct MessagePage<'a> {
    pub lang: &'a str,
    pub title: &'a str,
    pub id: &'a str,
    pub text: String,
    /// A link back to the form: `Some((href, label))`.
    pub form_link: Option<(String, &'a str)>,
}

#[derive(Template)]
#[template(path = "web/signup_confirm.html")]
pub struct ConfirmPage<'a> {
    pub lang: &'a str,
    pub title: &'a str,
    pub w: &'a SignupPageWording,
    pub text: String,
    pub action: String,
}
