//! Small parsing helpers shared by the catalog's request bodies.

use serde::{Deserialize, Deserializer};
use shared::FieldError;

/// For PATCH bodies: a missing field is `None`, `null` is `Some(None)`, a value is `Some(Some(v))`.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Control characters other than line breaks and tabs have no place in catalog text (and a NUL
/// cannot be stored by Postgres at all).
fn has_control(v: &str) -> bool {
    v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// A trimmed, non-empty text of at most `max` characters.
pub fn required_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) -> String {
    let v = value.trim();
    if has_control(v) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    } else if v.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    v.to_owned()
}

/// An optional text: blank becomes `None`; longer than `max` is an error.
pub fn optional_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    if has_control(v) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Some(v.to_owned())
}

/// An absolute http(s) URL with a host, of at most 2048 characters, as the WHATWG URL parser
/// (`url::Url`) reads it. Stored as given (trimmed), so what the seller sent is what is shown.
pub fn url(errors: &mut Vec<FieldError>, field: &str, value: &str) -> String {
    let v = value.trim();
    let ok = v.len() <= 2048
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && url::Url::parse(v).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
    if !ok {
        errors.push(FieldError::new(
            field,
            "must be an http:// or https:// URL of at most 2048 characters",
        ));
    }
    v.to_owned()
}

/// A slug the client gave (trimmed); an invalid one is a field error.
pub fn given_slug(errors: &mut Vec<FieldError>, given: &str) -> Option<String> {
    let s = given.trim();
    if crate::slug::is_valid(s) {
        Some(s.to_owned())
    } else {
        errors.push(FieldError::new(
            "slug",
            "must be 1-120 lower-case letters or digits in words joined by single hyphens",
        ));
        None
    }
}

/// A slug given by the client, or one made from `name`.
pub fn slug(errors: &mut Vec<FieldError>, given: Option<&str>, name: &str) -> Option<String> {
    match given.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => given_slug(errors, s),
        None => crate::slug::from_name(name),
    }
}

pub fn finish<T>(errors: Vec<FieldError>, value: T) -> Result<T, crate::error::CatalogError> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(crate::error::CatalogError::Validation(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_control_characters_is_refused_but_line_breaks_are_fine() {
        let mut errors = Vec::new();
        required_text(&mut errors, "name", "a\u{0}b", 10);
        optional_text(&mut errors, "description", Some("bell\u{7}"), 10);
        assert_eq!(errors.len(), 2);
        let mut ok = Vec::new();
        optional_text(&mut ok, "description", Some("line one\nline two\tend"), 100);
        assert!(ok.is_empty());
    }

    #[test]
    fn only_absolute_http_urls_with_a_host_are_image_urls() {
        for good in [
            "https://img.example/p.png",
            "http://img.example:8080/a/b?c=d#e",
            "  https://img.example/p.png  ",
        ] {
            let mut errors = Vec::new();
            assert_eq!(url(&mut errors, "url", good), good.trim());
            assert!(errors.is_empty(), "{good:?} refused");
        }
        for bad in [
            "https://",
            "http://:80/p.png",
            "ftp://img.example/p.png",
            "javascript:alert(1)",
            "https://img example/p.png",
            "https://img.example:99999/p.png",
            "//img.example/p.png",
            "img.example/p.png",
        ] {
            let mut errors = Vec::new();
            url(&mut errors, "url", bad);
            assert_eq!(errors.len(), 1, "{bad:?} accepted");
        }
        let mut errors = Vec::new();
        url(
            &mut errors,
            "url",
            &format!("https://img.example/{}", "a".repeat(2048)),
        );
        assert_eq!(errors.len(), 1, "over 2048 characters");
    }
}
