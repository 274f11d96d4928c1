//! The public pages in fi, sv and en. Each page is an askama template under `templates/web/`.

use askama::Template;

use crate::model::Locale;

pub struct PageWording {
    pub confirm_title: &'static str,
    /// {email}, {sender}
    pub confirm_text: &'static str,
    pub confirm_button: &'static str,
    pub done_title: &'static str,
    /// {email}, {sender}
    pub done_text: &'static str,
    pub erase_title: &'static str,
    pub erase_text: &'static str,
    pub erase_button: &'static str,
    pub erased_title: &'static str,
    pub erased_text: &'static str,
}

pub fn wording(locale: Locale) -> &'static PageWording {
    match locale {
        Locale::Fi => &FI,
        Locale::Sv => &SV,
        Locale::En => &EN,
    }
}

static FI: PageWording = PageWording {
    confirm_title: "Peruuta markkinointiviestit",
    confirm_text: "Vahvista, ettei osoitteeseen {email} enää lähetetä markkinointiviestejä lähettäjältä {sender}. Kielto tulee voimaan heti ja koskee kaikkia viestejämme.",
    confirm_button: "Vahvista peruutus",
    done_title: "Peruutus vahvistettu",
    done_text: "Osoitteeseen {email} ei enää lähetetä markkinointiviestejä lähettäjältä {sender}.",
    erase_title: "Haluatko myös, että tietosi poistetaan?",
    erase_text: "Markkinointikielto pitää osoitteesi kieltolistalla. Voit lisäksi pyytää, että kaikki henkilötietosi poistetaan (EU:n tietosuoja-asetus, 17 artikla). Silloin säilytämme vain osoitteesta lasketun yksisuuntaisen tunnisteen, jotta osoitettasi ei lisätä uudelleen.",
    erase_button: "Poista tietoni",
    erased_title: "Tietosi on poistettu",
    erased_text: "Henkilötietosi on poistettu. Säilytämme vain yksisuuntaisen tunnisteen, jotta osoitettasi ei lisätä markkinointiin uudelleen.",
};

static SV: PageWording = PageWording {
    confirm_title: "Avsluta marknadsföringsutskick",
    confirm_text: "Bekräfta att adressen {email} inte längre ska få marknadsföring från {sender}. Förbudet gäller genast och för alla våra utskick.",
    confirm_button: "Bekräfta avregistrering",
    done_title: "Avregistreringen är bekräftad",
    done_text: "Adressen {email} får inte längre marknadsföring från {sender}.",
    erase_title: "Vill du också att dina uppgifter raderas?",
    erase_text: "Marknadsföringsförbudet håller din adress på spärrlistan. Du kan dessutom begära att alla dina personuppgifter raderas (EU:s dataskyddsförordning, artikel 17). Då sparar vi bara en envägskod beräknad från adressen, så att den inte läggs till igen.",
    erase_button: "Radera mina uppgifter",
    erased_title: "Dina uppgifter har raderats",
    erased_text: "Dina personuppgifter har raderats. Vi sparar bara en envägskod så att din adress inte läggs till för marknadsföring igen.",
};

static EN: PageWording = PageWording {
    confirm_title: "Unsubscribe from marketing email",
    confirm_text: "Confirm that {email} should no longer receive marketing email from {sender}. This takes effect immediately and covers all our mailings.",
    confirm_button: "Confirm unsubscribe",
    done_title: "You are unsubscribed",
    done_text: "{email} will no longer receive marketing email from {sender}.",
    erase_title: "Do you also want your data erased?",
    erase_text: "Your objection keeps your address on our do-not-mail list. You can also ask us to erase all your personal data (GDPR Article 17). We then keep only a one-way code computed from your address, so that it is never added again.",
    erase_button: "Erase my data",
    erased_title: "Your data has been erased",
    erased_text: "Your personal data has been erased. We keep only a one-way code so that your address is never added to our marketing again.",
};

/// `m•••@example.com`: enough for the person to recognise, not a full address on a page that
/// anyone holding the link can open.
pub fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".into(),
    }
}

pub fn fill(text: &str, email: &str, sender: &str) -> String {
    text.replace("{email}", email).replace("{sender}", sender)
}

#[derive(Template)]
#[template(path = "web/unsubscribe.html")]
pub struct ConfirmPage<'a> {
    pub lang: &'a str,
    pub title: &'a str,
    pub w: &'a PageWording,
    pub text: String,
    pub token: &'a str,
    pub sender: &'a str,
}

#[derive(Template)]
#[template(path = "web/done.html")]
pub struct DonePage<'a> {
    pub lang: &'a str,
    pub title: &'a str,
    pub w: &'a PageWording,
    pub text: String,
    pub token: &'a str,
    pub sender: &'a str,
}

#[derive(Template)]
#[template(path = "web/erased.html")]
pub struct ErasedPage<'a> {
    pub lang: &'a str,
    pub title: &'a str,
    pub w: &'a PageWording,
    pub sender: &'a str,
}

#[derive(Template)]
#[template(path = "web/not_found.html")]
pub struct NotFoundPage<'a> {
    pub lang: &'a str,
    pub title: &'a str,
}
