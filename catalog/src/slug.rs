//! URL slugs: lower-case ASCII words joined by single hyphens.

/// Whether `s` is a valid slug (1–120 chars of `[a-z0-9]` words joined by `-`).
pub fn is_valid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 120
        && s.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// A slug made from a name: ASCII letters and digits kept (lower-cased), everything else a
/// separator. `None` when nothing usable is left (a name in another script, say).
pub fn from_name(name: &str) -> Option<String> {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
            if out.len() >= 100 {
                break;
            }
        } else {
            pending_dash = true;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_hyphenated_lower_case_slugs() {
        assert_eq!(
            from_name("  Red T-Shirt (XL)! ").as_deref(),
            Some("red-t-shirt-xl")
        );
        assert_eq!(from_name("Café 2000").as_deref(), Some("caf-2000"));
        assert_eq!(from_name("東京"), None);
    }

    #[test]
    fn slug_validation_rejects_empty_words_and_upper_case() {
        assert!(is_valid("red-shirt-2"));
        assert!(!is_valid("Red-shirt"));
        assert!(!is_valid("red--shirt"));
        assert!(!is_valid("-red"));
        assert!(!is_valid(""));
    }

    #[test]
    fn every_generated_slug_is_valid() {
        for (name, slug) in [
            ("a", "a"),
            ("A B", "a-b"),
            ("x--y", "x-y"),
            ("ÅÄÖ abc", "abc"),
            ("9 lives", "9-lives"),
            ("tab\tname", "tab-name"),
            ("-edge-", "edge"),
        ] {
            assert_eq!(from_name(name).as_deref(), Some(slug), "{name}");
            assert!(is_valid(slug), "{name} → {slug}");
        }
        // Long names are cut at 100 characters, never leaving a trailing hyphen.
        let long = from_name(&"ab ".repeat(60)).unwrap();
        assert!(long.len() <= 100 && is_valid(&long), "{long}");
    }
}
