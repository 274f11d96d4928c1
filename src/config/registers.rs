//! `registers.toml`: the registers contacts belong to, their controller and, for purchased
//! lists (ostorekisteri), the provider, acquisition and the date the permission to use ends.
//! A register's title is what recipients read in the address-source notice: one string, or
//! one per locale (`title = { fi = "…", sv = "…", en = "…" }`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use super::{ConfigError, LegalBasis, Locale, optional_text, read_toml, required_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterKind {
    Customer,
    Marketing,
    Purchased,
}

impl RegisterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Marketing => "marketing",
            Self::Purchased => "purchased",
        }
    }
}

/// Where a purchased list came from; required for `kind = "purchased"` only, so it lives in
/// the type rather than in optional fields of every register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchasedList {
    pub provider: String,
    pub acquisition_method: String,
    pub acquired_on: NaiveDate,
    pub valid_until: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// The key in `registers.toml`, used on the command line and in the database.
    pub name: String,
    /// The register's name as recipients see it in the address-source notice, in the
    /// register's default locale (or the one plain title given).
    pub title: String,
    /// Titles per locale when `title` is a table; empty when it is a plain string.
    pub titles: BTreeMap<Locale, String>,
    pub kind: RegisterKind,
    pub controller: String,
    pub controller_contact: String,
    pub default_legal_basis: Option<LegalBasis>,
    pub default_locale: Locale,
    pub purchased: Option<PurchasedList>,
    /// How long contact data is kept: from the last message sent, or from acquisition for a
    /// purchased register. `None`: `[privacy] retention_months` of fairsend.toml.
    pub retention_months: Option<u32>,
    /// `Some`: the register has a public signup form (`/s/NAME` on `serve`) with double
    /// opt-in; `None` (the default): no form, the page is a 404.
    pub signup: Option<SignupForm>,
}

/// What a register's signup form states beyond the sender and the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupForm {
    /// The purposes of processing, per locale; a locale without one uses the built-in wording.
    pub purposes: BTreeMap<Locale, String>,
    /// The version of the notice text, stored with every consent beside the text's hash.
    pub notice_version: String,
}

impl Register {
    /// The title in `locale`: its translation when the table has one, else [`Self::title`].
    pub fn title_in(&self, locale: Locale) -> &str {
        self.titles.get(&locale).unwrap_or(&self.title)
    }

    /// Whether the title is a per-locale table without an entry for `locale`.
    pub fn lacks_title_in(&self, locale: Locale) -> bool {
        !self.titles.is_empty() && !self.titles.contains_key(&locale)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registers {
    pub file: PathBuf,
    by_name: BTreeMap<String, Register>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    registers: BTreeMap<String, RawRegister>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    title: Option<RawTitle>,
    kind: Option<String>,
    controller: Option<String>,
    controller_contact: Option<String>,
    default_legal_basis: Option<String>,
    default_locale: Option<String>,
    provider: Option<String>,
    acquisition_method: Option<String>,
    acquired_on: Option<String>,
    valid_until: Option<String>,
    retention: Option<String>,
    signup: Option<RawSignup>,
}

/// `signup = true` or `[registers.NAME.signup]` with `purposes` and `notice_version`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSignup {
    Enabled(bool),
    Form(RawSignupForm),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignupForm {
    purposes: Option<RawTitle>,
    notice_version: Option<String>,
}

/// `title = "…"` or `title = { fi = "…", sv = "…", en = "…" }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTitle {
    Plain(String),
    PerLocale(BTreeMap<String, String>),
}

impl Registers {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let raw: Raw = read_toml(file)?;
        if raw.registers.is_empty() {
            return Err(ConfigError::field(
                file,
                "[registers]",
                "no register is defined; add at least one [registers.NAME] table",
            ));
        }
        let mut by_name = BTreeMap::new();
        for (name, r) in raw.registers {
            let register = parse_register(file, &name, r)?;
            by_name.insert(name, register);
        }
        Ok(Self {
            file: file.to_path_buf(),
            by_name,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Register> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Register> {
        self.by_name.values()
    }

    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }
}

fn parse_register(file: &Path, name: &str, r: RawRegister) -> Result<Register, ConfigError> {
    let field = |key: &str| format!("[registers.{name}] {key}");
    check_register_name(file, name)?;
    let kind = register_kind(file, &field("kind"), r.kind)?;
    let default_legal_basis =
        default_legal_basis(file, &field("default_legal_basis"), r.default_legal_basis)?;
    let default_locale = match optional_text(file, &field("default_locale"), r.default_locale)? {
        None => Locale::Fi,
        Some(text) => Locale::parse(&text).ok_or_else(|| {
            ConfigError::field(
                file,
                field("default_locale"),
                format!("'{text}' is not one of fi, sv, en"),
            )
        })?,
    };
    let purchased = purchased_list(
        file,
        name,
        kind,
        [
            r.provider,
            r.acquisition_method,
            r.acquired_on,
            r.valid_until,
        ],
    )?;
    // The fields `init` leaves blank are checked together, so all of them are listed at once.
    let ((title, titles), controller, controller_contact) = match (
        parse_title(file, &field("title"), r.title, default_locale),
        required_text(file, &field("controller"), r.controller),
        required_text(file, &field("controller_contact"), r.controller_contact),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (a, b, c) => return Err(ConfigError::gather([a.err(), b.err(), c.err()])),
    };
    let signup = parse_signup(file, &field("signup"), r.signup)?;
    Ok(Register {
        name: name.to_string(),
        title,
        titles,
        kind,
        controller,
        controller_contact,
        default_legal_basis,
        default_locale,
        purchased,
        retention_months: match optional_text(file, &field("retention"), r.retention)? {
            None => None,
            Some(text) => Some(parse_months(&text).ok_or_else(|| {
                ConfigError::field(
                    file,
                    field("retention"),
                    format!("'{text}' is not a period such as \"24 months\" or \"2 years\""),
                )
            })?),
        },
        signup,
    })
}

fn parse_signup(
    file: &Path,
    field: &str,
    raw: Option<RawSignup>,
) -> Result<Option<SignupForm>, ConfigError> {
    let form = match raw {
        None | Some(RawSignup::Enabled(false)) => return Ok(None),
        Some(RawSignup::Enabled(true)) => RawSignupForm {
            purposes: None,
            notice_version: None,
        },
        Some(RawSignup::Form(form)) => form,
    };
    let purposes_field = format!("{field}.purposes");
    let purposes = match form.purposes {
        None => BTreeMap::new(),
        Some(RawTitle::Plain(text)) => Locale::ALL
            .into_iter()
            .map(|l| Ok((l, required_text(file, &purposes_field, Some(text.clone()))?)))
            .collect::<Result<_, ConfigError>>()?,
        Some(RawTitle::PerLocale(table)) => {
            let mut purposes = BTreeMap::new();
            for (key, text) in table {
                let at = format!("{purposes_field}.{key}");
                let locale = Locale::parse(&key).ok_or_else(|| {
                    ConfigError::field(file, &at, format!("'{key}' is not one of fi, sv, en"))
                })?;
                purposes.insert(locale, required_text(file, &at, Some(text))?);
            }
            purposes
        }
    };
    let notice_version = optional_text(
        file,
        &format!("{field}.notice_version"),
        form.notice_version,
    )?
    .unwrap_or_else(|| "1".into());
    Ok(Some(SignupForm {
        purposes,
        notice_version,
    }))
}

fn check_register_name(file: &Path, name: &str) -> Result<(), ConfigError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(ConfigError::field(
            file,
            format!("[registers.{name}]"),
            "a register name may contain only a-z, 0-9, '_' and '-'",
        ));
    }
    Ok(())
}

fn register_kind(
    file: &Path,
    field: &str,
    value: Option<String>,
) -> Result<RegisterKind, ConfigError> {
    match required_text(file, field, value)?.as_str() {
        "customer" => Ok(RegisterKind::Customer),
        "marketing" => Ok(RegisterKind::Marketing),
        "purchased" => Ok(RegisterKind::Purchased),
        other => Err(ConfigError::field(
            file,
            field,
            format!("'{other}' is not one of customer, marketing, purchased"),
        )),
    }
}

/// A register may default to any legal basis but consent, which each person gives.
fn default_legal_basis(
    file: &Path,
    field: &str,
    value: Option<String>,
) -> Result<Option<LegalBasis>, ConfigError> {
    let basis = match optional_text(file, field, value)? {
        None => None,
        Some(text) => Some(LegalBasis::parse(&text).ok_or_else(|| {
            ConfigError::field(
                file,
                field,
                format!("'{text}' is not one of consent, customer_relationship, job_role"),
            )
        })?),
    };
    if basis == Some(LegalBasis::Consent) {
        return Err(ConfigError::field(
            file,
            field,
            "consent cannot be a register default: it is given by each person, with a time, \
             in the contacts file's legal_basis and consent_at columns",
        ));
    }
    Ok(basis)
}

/// A purchased register's provider, acquisition method and validity — required there and
/// refused on any other kind. `values` are provider, acquisition_method, acquired_on,
/// valid_until.
fn purchased_list(
    file: &Path,
    name: &str,
    kind: RegisterKind,
    values: [Option<String>; 4],
) -> Result<Option<PurchasedList>, ConfigError> {
    let field = |key: &str| format!("[registers.{name}] {key}");
    let [provider, acquisition_method, acquired_on, valid_until] = values;
    if kind != RegisterKind::Purchased {
        for (key, present) in [
            ("provider", provider.is_some()),
            ("acquisition_method", acquisition_method.is_some()),
            ("acquired_on", acquired_on.is_some()),
            ("valid_until", valid_until.is_some()),
        ] {
            if present {
                return Err(ConfigError::field(
                    file,
                    field(key),
                    format!(
                        "only a purchased register has {key}; this one is {}",
                        kind.as_str()
                    ),
                ));
            }
        }
        return Ok(None);
    }
    let date = |key: &str, value: Option<String>| -> Result<NaiveDate, ConfigError> {
        let text = required_text(file, &field(key), value)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
            ConfigError::field(
                file,
                field(key),
                format!("'{text}' is not a date YYYY-MM-DD"),
            )
        })
    };
    let list = PurchasedList {
        provider: required_text(file, &field("provider"), provider)?,
        acquisition_method: required_text(file, &field("acquisition_method"), acquisition_method)?,
        acquired_on: date("acquired_on", acquired_on)?,
        valid_until: date("valid_until", valid_until)?,
    };
    if list.valid_until < list.acquired_on {
        return Err(ConfigError::field(
            file,
            field("valid_until"),
            "is before acquired_on",
        ));
    }
    Ok(Some(list))
}

/// The default-locale title and the per-locale ones. A table must name the register's
/// default locale, so every other locale has a title to fall back on.
fn parse_title(
    file: &Path,
    field: &str,
    raw: Option<RawTitle>,
    default_locale: Locale,
) -> Result<(String, BTreeMap<Locale, String>), ConfigError> {
    let table = match raw {
        None => return Err(ConfigError::field(file, field, "is missing")),
        Some(RawTitle::Plain(text)) => {
            return Ok((required_text(file, field, Some(text))?, BTreeMap::new()));
        }
        Some(RawTitle::PerLocale(table)) => table,
    };
    let mut titles = BTreeMap::new();
    for (key, text) in table {
        let locale = Locale::parse(&key).ok_or_else(|| {
            ConfigError::field(
                file,
                format!("{field}.{key}"),
                format!("'{key}' is not one of fi, sv, en"),
            )
        })?;
        titles.insert(
            locale,
            required_text(file, &format!("{field}.{key}"), Some(text))?,
        );
    }
    let title = titles.get(&default_locale).cloned().ok_or_else(|| {
        ConfigError::field(
            file,
            format!("{field}.{}", default_locale.as_str()),
            format!(
                "is missing: the title needs the register's default locale ({}), which \
                 recipients of a locale without a translation see",
                default_locale.as_str()
            ),
        )
    })?;
    Ok((title, titles))
}

/// `"24 months"`, `"2 years"`, `"18 kuukautta"` → months.
fn parse_months(text: &str) -> Option<u32> {
    let mut parts = text.split_whitespace();
    let n: u32 = parts.next()?.parse().ok()?;
    let unit = parts.next().unwrap_or("months").to_lowercase();
    if parts.next().is_some() {
        return None;
    }
    match unit.as_str() {
        "month" | "months" | "kuukausi" | "kuukautta" | "mo" => Some(n),
        "year" | "years" | "vuosi" | "vuotta" | "y" => n.checked_mul(12),
        _ => None,
    }
}
