//! Value objects of an account, parsed once at the edge: a value of these types is valid by
//! construction. Each parser answers with the message a client sees for that field.

use std::fmt;

use shared::auth::Role;

/// 3–30 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let len = s.chars().count();
        if !(3..=30).contains(&len) {
            return Err("must be 3 to 30 characters".into());
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("may contain only letters, digits, '_' and '-'".into());
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_lowercase();
        let invalid = || "is not a valid email address".to_string();
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || domain.starts_with('-')
        {
            return Err(invalid());
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8–128 characters with an upper-case letter, a lower-case letter, a digit and a symbol.
/// Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if !(8..=128).contains(&len) {
            return Err("must be 8 to 128 characters".into());
        }
        let upper = raw.chars().any(char::is_uppercase);
        let lower = raw.chars().any(char::is_lowercase);
        let digit = raw.chars().any(|c| c.is_ascii_digit());
        let symbol = raw
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace());
        if !(upper && lower && digit && symbol) {
            return Err(
                "must contain an upper-case letter, a lower-case letter, a digit and a symbol"
                    .into(),
            );
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A phone number: an optional `+` and 7–15 digits; spaces, dashes, dots and brackets are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let (plus, rest) = match s.strip_prefix('+') {
            Some(r) => ("+", r),
            None => ("", s),
        };
        let mut digits = String::new();
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(
                        "may contain only digits, spaces, '-', '(', ')' and a leading '+'".into(),
                    )
                }
            }
        }
        if !(7..=15).contains(&digits.len()) {
            return Err("must have 7 to 15 digits".into());
        }
        Ok(Self(format!("{plus}{digits}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role a person may pick when registering: never `ADMIN`.
pub fn self_service_role(raw: &str) -> Result<Role, String> {
    match Role::parse(raw.trim()) {
        Some(r @ (Role::Buyer | Role::Seller)) => Ok(r),
        Some(Role::Admin) => {
            Err("ADMIN accounts cannot be registered; choose BUYER or SELLER".into())
        }
        None => Err("must be BUYER or SELLER".into()),
    }
}

/// The life of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// Blocked by an admin; can be re-activated.
    Deactivated,
    /// Closed by its owner; personal data scrubbed, final.
    Deleted,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "deactivated" => Some(Self::Deactivated),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }

    /// The transition function: which status changes are allowed.
    pub fn can_become(self, next: UserStatus) -> bool {
        matches!(
            (self, next),
            (Self::Active, Self::Deactivated)
                | (Self::Deactivated, Self::Active)
                | (Self::Active, Self::Deleted)
                | (Self::Deactivated, Self::Deleted)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(30)).is_ok());
        assert!(Username::parse(&"a".repeat(31)).is_err());
        assert!(Username::parse("with space").is_err());
        assert!(Username::parse("a@b").is_err());
        assert!(Username::parse("ok_name-1").is_ok());
        assert!(Username::parse("ünï").is_err());
    }

    #[test]
    fn emails_are_normalised_to_lower_case_and_checked() {
        assert_eq!(
            Email::parse(" Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "@x.com",
            "a@@x.com",
            "a b@x.com",
            "a@x..com",
            "a@.x.com",
            "a@x.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn passwords_need_length_and_four_character_classes() {
        assert!(Password::parse("Aa1!aaaa").is_ok());
        assert!(Password::parse("Aa1!aaa").is_err(), "7 chars");
        assert!(Password::parse("aa1!aaaa").is_err(), "no upper");
        assert!(Password::parse("AA1!AAAA").is_err(), "no lower");
        assert!(Password::parse("Aaa!aaaa").is_err(), "no digit");
        assert!(Password::parse("Aa1aaaaa").is_err(), "no symbol");
        assert!(Password::parse(&format!("Aa1!{}", "a".repeat(124))).is_ok());
        assert!(
            Password::parse(&format!("Aa1!{}", "a".repeat(125))).is_err(),
            "129 chars"
        );
        assert!(!format!("{:?}", Password::parse("Secret1!x").unwrap()).contains("Secret"));
    }

    #[test]
    fn phones_are_normalised() {
        assert_eq!(
            Phone::parse("+1 (555) 010-9999").unwrap().as_str(),
            "+15550109999"
        );
        assert!(Phone::parse("123").is_err());
        assert!(Phone::parse("555-CALL-NOW").is_err());
    }

    #[test]
    fn nobody_registers_as_admin() {
        assert_eq!(self_service_role("BUYER"), Ok(Role::Buyer));
        assert_eq!(self_service_role("SELLER"), Ok(Role::Seller));
        assert!(self_service_role("ADMIN").is_err());
        assert!(self_service_role("admin").is_err());
        assert!(self_service_role("ROOT").is_err());
    }

    #[test]
    fn status_transitions() {
        use UserStatus::*;
        assert!(Active.can_become(Deactivated));
        assert!(Deactivated.can_become(Active));
        assert!(Active.can_become(Deleted));
        assert!(!Deleted.can_become(Active), "deletion is final");
        assert!(!Deleted.can_become(Deactivated));
        assert!(!Active.can_become(Active));
    }
}
