//! Money: an exact decimal amount and an ISO-4217 currency, never a float. On the wire the amount is
//! a decimal string (`{"amount": "19.99", "currency": "USD"}`).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ISO-4217 currency that has a minor unit (the maintained table of `iso_currency`): codes
/// outside the standard, and its entries that are not money with decimals (gold `XAU`, "no
/// currency" `XXX`), are refused when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    iso: iso_currency::Currency,
    minor_units: u32,
}

impl Currency {
    pub fn as_str(&self) -> &'static str {
        self.iso.code()
    }

    /// Digits after the decimal point that amounts in this currency may have (ISO 4217's
    /// exponent: 2 for USD, 0 for JPY and XOF, 3 for KWD, 4 for CLF).
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Currency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let iso = iso_currency::Currency::from_code(s)
            .ok_or_else(|| MoneyError::Currency(s.to_owned()))?;
        let minor_units = iso
            .exponent()
            .ok_or_else(|| MoneyError::Currency(s.to_owned()))?;
        Ok(Self {
            iso,
            minor_units: u32::from(minor_units),
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not an ISO-4217 currency code with a minor unit (e.g. USD, EUR, JPY)")]
    Currency(String),
    #[error("'{0}' is not a decimal amount")]
    Amount(String),
    #[error("amount must not be negative")]
    Negative,
    #[error("{currency} amounts have at most {digits} decimal places")]
    Scale { currency: String, digits: u32 },
    #[error("cannot combine {0} and {1}")]
    CurrencyMismatch(String, String),
}

/// A non-negative amount in one currency, with no more decimals than the currency allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative);
        }
        let digits = currency.minor_units();
        if amount.normalize().scale() > digits {
            return Err(MoneyError::Scale {
                currency: currency.to_string(),
                digits,
            });
        }
        Ok(Self {
            amount: amount.round_dp(digits),
            currency,
        })
    }

    /// Parse a decimal string such as `"19.99"` (no exponent, no float rounding).
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let currency: Currency = currency.parse()?;
        let amount = Decimal::from_str_exact(amount.trim())
            .map_err(|_| MoneyError::Amount(amount.to_owned()))?;
        Self::new(amount, currency)
    }

    pub fn zero(currency: Currency) -> Self {
        Self {
            amount: Decimal::ZERO,
            currency,
        }
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(
                self.currency.to_string(),
                other.currency.to_string(),
            ));
        }
        Ok(Money {
            amount: self.amount + other.amount,
            currency: self.currency,
        })
    }

    pub fn times(&self, quantity: u32) -> Money {
        Money {
            amount: self.amount * Decimal::from(quantity),
            currency: self.currency,
        }
    }
}

/// `amount` with exactly the decimal places of `currency` (`19.9900` USD → `19.99`, `20` → `20.00`,
/// `1500.0` JPY → `1500`). For showing stored amounts.
pub fn rounded(amount: Decimal, currency: Currency) -> Decimal {
    let digits = currency.minor_units();
    let mut d = amount.round_dp(digits);
    d.rescale(digits);
    d
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_strings_exactly() {
        let m = Money::parse("19.99", "USD").unwrap();
        assert_eq!(m.amount().to_string(), "19.99");
        assert_eq!(m.times(3).amount().to_string(), "59.97");
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount": "19.99", "currency": "USD"})
        );
    }

    #[test]
    fn rejects_bad_currencies_negative_amounts_and_excess_decimals() {
        assert!(matches!(
            Money::parse("1", "usd"),
            Err(MoneyError::Currency(_))
        ));
        assert!(matches!(
            Money::parse("1", "DOLLAR"),
            Err(MoneyError::Currency(_))
        ));
        assert_eq!(Money::parse("-1", "USD"), Err(MoneyError::Negative));
        assert!(matches!(
            Money::parse("1.001", "USD"),
            Err(MoneyError::Scale { .. })
        ));
        assert!(matches!(
            Money::parse("1.5", "JPY"),
            Err(MoneyError::Scale { .. })
        ));
        assert!(matches!(
            Money::parse("1e3", "USD"),
            Err(MoneyError::Amount(_))
        ));
        assert!(
            Money::parse("1.500", "USD").is_ok(),
            "trailing zeros are not extra precision"
        );
    }

    #[test]
    fn minor_units_follow_the_iso_table_for_zero_two_three_and_four_decimal_currencies() {
        for (code, digits) in [
            ("USD", 2),
            ("EUR", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("XOF", 0),
            ("XAF", 0),
            ("PYG", 0),
            ("KWD", 3),
            ("BHD", 3),
            ("IQD", 3),
            ("LYD", 3),
            ("CLF", 4),
        ] {
            let c: Currency = code.parse().unwrap();
            assert_eq!(c.minor_units(), digits, "{code}");
            assert_eq!(c.as_str(), code);
        }
        assert_eq!(
            Money::parse("1500", "XOF").unwrap().amount().to_string(),
            "1500"
        );
        assert!(matches!(
            Money::parse("1500.5", "XOF"),
            Err(MoneyError::Scale { digits: 0, .. })
        ));
        assert_eq!(
            Money::parse("1.234", "IQD").unwrap().amount().to_string(),
            "1.234"
        );
        assert!(matches!(
            Money::parse("1.2345", "KWD"),
            Err(MoneyError::Scale { digits: 3, .. })
        ));
        assert_eq!(
            rounded(Decimal::new(15000, 1), "JPY".parse().unwrap()).to_string(),
            "1500"
        );
        assert_eq!(
            rounded(Decimal::new(12, 1), "KWD".parse().unwrap()).to_string(),
            "1.200"
        );
        assert_eq!(
            rounded(Decimal::new(20, 0), "USD".parse().unwrap()).to_string(),
            "20.00"
        );
    }

    #[test]
    fn codes_outside_iso_4217_or_without_a_minor_unit_are_not_currencies() {
        for code in ["ABC", "QQQ", "XAU", "XXX", "usd", "US", ""] {
            assert!(
                matches!(code.parse::<Currency>(), Err(MoneyError::Currency(_))),
                "{code:?} was accepted"
            );
        }
    }

    #[test]
    fn adding_different_currencies_is_an_error() {
        let usd = Money::parse("1", "USD").unwrap();
        let eur = Money::parse("1", "EUR").unwrap();
        assert!(usd.checked_add(&eur).is_err());
        assert_eq!(usd.checked_add(&usd).unwrap().amount().to_string(), "2");
    }
}
