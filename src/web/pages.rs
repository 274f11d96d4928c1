//! The public pages in fi, sv and en. Each page is an askama template under `templates/web/`;
//! the wording the law requires on them is in `templates/compliance/`, named after the article.

use askama::Template;

use crate::model::Locale;

/// The pages' sentences in one locale, rendered from `templates/compliance/` (one file per
/// article and locale: `gdpr_art21_unsubscribe_page`, `gdpr_art17_erasure_page`).
pub struct PageWording {
    pub confirm_title: String,
    pub confirm_text: String,
    pub confirm_button: String,
    pub done_title: String,
    pub done_text: String,
    pub erase_title: String,
    pub erase_text: String,
    pub erase_button: String,
    pub erased_title: String,
    pub erased_text: String,
}

/// The values the pages' sentences name.
#[derive(Debug, Default, Clone, Copy)]
pub struct PageValues<'a> {
    /// The person's address, masked.
    pub email: &'a str,
    pub sender: &'a str,
}

/// GDPR art. 21 and 917/2014 §202–203(2): the unsubscribe page.
#[derive(Debug, Clone, Copy)]
pub enum Art21Page {
    ConfirmTitle,
    /// {email}, {sender}
    ConfirmText,
    ConfirmButton,
    DoneTitle,
    /// {email}, {sender}
    DoneText,
}

/// GDPR art. 17: the erasure offer and its confirmation.
#[derive(Debug, Clone, Copy)]
pub enum Art17Page {
    EraseTitle,
    EraseText,
    EraseButton,
    ErasedTitle,
    ErasedText,
}

/// One article's sentences, one template per locale.
macro_rules! page_article {
    ($article:ident, $fi:literal, $sv:literal, $en:literal) => {
        impl $article {
            pub fn say(self, locale: Locale, v: &PageValues<'_>) -> Result<String, askama::Error> {
                #[derive(Template)]
                #[template(path = $fi)]
                struct Fi<'a> {
                    s: $article,
                    // Read by the template, when its article's sentences name a value.
                    #[allow(dead_code)]
                    v: &'a PageValues<'a>,
                }
                #[derive(Template)]
                #[template(path = $sv)]
                struct Sv<'a> {
                    s: $article,
                    #[allow(dead_code)]
                    v: &'a PageValues<'a>,
                }
                #[derive(Template)]
                #[template(path = $en)]
                struct En<'a> {
                    s: $article,
                    #[allow(dead_code)]
                    v: &'a PageValues<'a>,
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

page_article!(
    Art21Page,
    "compliance/gdpr_art21_unsubscribe_page.fi.txt",
    "compliance/gdpr_art21_unsubscribe_page.sv.txt",
    "compliance/gdpr_art21_unsubscribe_page.en.txt"
);
page_article!(
    Art17Page,
    "compliance/gdpr_art17_erasure_page.fi.txt",
    "compliance/gdpr_art17_erasure_page.sv.txt",
    "compliance/gdpr_art17_erasure_page.en.txt"
);

/// Every sentence of the pages in `locale`, with `v`'s values.
pub fn wording(locale: Locale, v: &PageValues<'_>) -> Result<PageWording, askama::Error> {
    let unsubscribe = |s: Art21Page| s.say(locale, v);
    let erasure = |s: Art17Page| s.say(locale, v);
    Ok(PageWording {
        confirm_title: unsubscribe(Art21Page::ConfirmTitle)?,
        confirm_text: unsubscribe(Art21Page::ConfirmText)?,
        confirm_button: unsubscribe(Art21Page::ConfirmButton)?,
        done_title: unsubscribe(Art21Page::DoneTitle)?,
        done_text: unsubscribe(Art21Page::DoneText)?,
        erase_title: erasure(Art17Page::EraseTitle)?,
        erase_text: erasure(Art17Page::EraseText)?,
        erase_button: erasure(Art17Page::EraseButton)?,
        erased_title: erasure(Art17Page::ErasedTitle)?,
        erased_text: erasure(Art17Page::ErasedText)?,
    })
}

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
