//! Address rules of Finnish B2B direct-marketing practice: free-mail (consumer) domains and
//! role accounts. The lists live beside this file, one entry per line, compiled in.

use std::collections::HashSet;
use std::sync::OnceLock;

use super::EmailAddress;

fn list(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn freemail() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| list(include_str!("freemail_domains.txt")))
}

fn roles() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| list(include_str!("role_accounts.txt")))
}

/// A consumer / free-mail address: B2B marketing to it needs consent.
pub fn is_freemail(address: &EmailAddress) -> bool {
    freemail().contains(address.domain())
}

/// A shared mailbox rather than a person (info@, sales@, myynti@ …). A `+tag` is ignored.
pub fn is_role_account(address: &EmailAddress) -> bool {
    let local = address.local_part();
    let local = local.split('+').next().unwrap_or(local);
    roles().contains(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn freemail_domains() {
        assert!(is_freemail(&a("matti@gmail.com")));
        assert!(is_freemail(&a("matti@suomi24.fi")));
        assert!(is_freemail(&a("matti@HOTMAIL.FI")));
        assert!(!is_freemail(&a("matti@yritys.fi")));
        assert!(!is_freemail(&a("matti@mail.gmail.com.example")));
    }

    #[test]
    fn role_accounts() {
        assert!(is_role_account(&a("info@yritys.fi")));
        assert!(is_role_account(&a("myynti@yritys.fi")));
        assert!(is_role_account(&a("sales+fi@yritys.fi")));
        assert!(!is_role_account(&a("maija.meikalainen@yritys.fi")));
    }
}
