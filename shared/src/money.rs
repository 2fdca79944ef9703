//! Money: an exact decimal amount and an ISO-4217 currency, never a float. On the wire the amount is
//! a decimal string (`{"amount": "19.99", "currency": "USD"}`).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An upper-case three-letter ISO-4217 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point that amounts in this currency may have.
    pub fn minor_units(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Self([b[0], b[1], b[2]]))
        } else {
            Err(MoneyError::Currency(s.to_owned()))
        }
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
    #[error("'{0}' is not an ISO-4217 currency code (three upper-case letters)")]
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

/// `amount` with exactly the decimal places of `currency` (`19.9900` USD → `19.99`, `20` → `20.00`);
/// two places when the code is not a currency. For showing stored amounts.
pub fn rounded(amount: Decimal, currency: &str) -> Decimal {
    let digits = currency.parse::<Currency>().map_or(2, |c| c.minor_units());
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
    fn adding_different_currencies_is_an_error() {
        let usd = Money::parse("1", "USD").unwrap();
        let eur = Money::parse("1", "EUR").unwrap();
        assert!(usd.checked_add(&eur).is_err());
        assert_eq!(usd.checked_add(&usd).unwrap().amount().to_string(), "2");
    }
}
