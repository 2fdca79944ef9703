//! Keyset pagination (contract §2): `?limit=` (default 20, max 100) and an opaque `?cursor=`; answers are
//! `{"items": [...], "next_cursor": "..." | null}`. The cursor is the base64url JSON of the sort key of
//! the last item, so any sort order can use it and clients cannot depend on its shape.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// 1–100, default 20.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::validation(vec![FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )])),
        }
    }

    /// The decoded cursor, or `None` for the first page.
    pub fn cursor<K: DeserializeOwned>(&self) -> Result<Option<K>, ApiError> {
        match self.cursor.as_deref() {
            None | Some("") => Ok(None),
            Some(c) => decode_cursor(c).map(Some).ok_or_else(|| {
                ApiError::bad_request("INVALID_CURSOR", "the cursor is not one this API issued")
            }),
        }
    }
}

pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Option<K> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Build a page from `limit + 1` fetched rows: the extra row only says there is a next page.
    pub fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(PageParams::default().limit().unwrap(), 20);
        let p = |n| PageParams {
            limit: Some(n),
            cursor: None,
        };
        assert_eq!(p(100).limit().unwrap(), 100);
        assert!(p(0).limit().is_err());
        assert!(p(101).limit().is_err());
    }

    #[test]
    fn cursor_round_trips_and_garbage_is_rejected() {
        let c = encode_cursor(&("2026-01-01", 7));
        let p = PageParams {
            limit: None,
            cursor: Some(c),
        };
        assert_eq!(
            p.cursor::<(String, i32)>().unwrap(),
            Some(("2026-01-01".to_string(), 7))
        );
        let bad = PageParams {
            limit: None,
            cursor: Some("!!!".into()),
        };
        assert!(bad.cursor::<(String, i32)>().is_err());
    }

    #[test]
    fn next_cursor_only_when_an_extra_row_was_fetched() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |x| *x);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(
            decode_cursor::<i32>(page.next_cursor.as_deref().unwrap()),
            Some(2)
        );
        let last = Page::from_rows(vec![1, 2], 2, |x| *x);
        assert!(last.next_cursor.is_none());
    }
}
