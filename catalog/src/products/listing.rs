//! The public product listing: filters, four sort orders, and keyset pagination that stays exact
//! under each of them. The cursor carries the sort it was made for and the last row's sort key
//! (`(min_price, id)`, `(lower(name), id)` or `id`); the id breaks ties, so no row is skipped or
//! repeated between pages while the data stands still.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared::pagination::{decode_cursor, encode_cursor, MAX_LIMIT};
use shared::{ApiError, FieldError};
use sqlx::{Postgres, QueryBuilder};
use utoipa::IntoParams;
use uuid::Uuid;

use super::dto::{ListItem, ListPage};
use crate::error::{CatalogError, Result};
use crate::startup::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
    Name,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ListQuery {
    /// This category and every category under it.
    pub category_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
    pub seller_id: Option<Uuid>,
    /// Decimal string; compared with the product's lowest price.
    pub min_price: Option<String>,
    pub max_price: Option<String>,
    /// Words to find in name or description (full text), or part of the name.
    pub q: Option<String>,
    /// `newest` (default), `price_asc`, `price_desc`, `name`.
    #[param(value_type = Option<String>)]
    pub sort: Option<Sort>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    s: Sort,
    id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
}

fn price_param(errors: &mut Vec<FieldError>, field: &str, v: Option<&str>) -> Option<Decimal> {
    let v = v.map(str::trim).filter(|v| !v.is_empty())?;
    match Decimal::from_str_exact(v) {
        Ok(d) if !d.is_sign_negative() => Some(d),
        _ => {
            errors.push(FieldError::new(
                field,
                "must be a non-negative decimal such as 19.99",
            ));
            None
        }
    }
}

/// `%`, `_` and `\` are literal in the searched-for text.
fn like_pattern(q: &str) -> String {
    let mut s = String::with_capacity(q.len() + 2);
    s.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// The cache field of a first page the storefront asks for again and again (the whole catalog
/// or a category, in any sort, at a usual page size): `None` for anything else (a search, a price range, a brand or
/// seller, a later page), whose variety is the caller's to choose and would only fill Redis.
fn cacheable(query: &ListQuery) -> Option<String> {
    let plain = query.brand_id.is_none()
        && query.seller_id.is_none()
        && query.min_price.is_none()
        && query.max_price.is_none()
        && query.q.is_none()
        && query.cursor.is_none();
    let limit = query.limit.unwrap_or(shared::pagination::DEFAULT_LIMIT);
    // The page sizes a shop front uses; any other size reads Postgres (it would multiply the
    // fields a caller can make us keep by a hundred).
    let usual_size = matches!(limit, 10 | 12 | 20 | 24 | 48 | 50 | 100);
    (plain && usual_size).then(|| {
        let category = query.category_id.map(|c| c.to_string()).unwrap_or_default();
        format!("{:?}|{limit}|{category}", query.sort.unwrap_or_default())
    })
}

/// A listing page as JSON bytes: a first page from the cache when it holds one (writes drop
/// them all; docs/benchmarks.md), anything else from Postgres.
pub async fn list_json(state: &AppState, query: &ListQuery) -> Result<Vec<u8>> {
    let field = cacheable(query);
    if let Some(f) = &field {
        // Only pages that `list` answered were stored, so a hit is for a valid query.
        if let Some(hit) = state.cache.get_list(f).await {
            return Ok(hit);
        }
    }
    let page = list(state, query).await?;
    let bytes = serde_json::to_vec(&page)
        .map_err(|e| CatalogError::Unexpected(anyhow::anyhow!("listing page: {e}")))?;
    // A category filter that matches nothing is most likely an id nobody made: not stored, so
    // made-up ids cannot fill the cache.
    let empty_category = query.category_id.is_some() && page.items.is_empty();
    if let Some(f) = field.filter(|_| !empty_category) {
        state.cache.set_list(&f, &bytes).await;
    }
    Ok(bytes)
}

#[tracing::instrument(skip_all)]
pub async fn list(state: &AppState, query: &ListQuery) -> Result<ListPage> {
    let mut errors = Vec::new();
    let limit = match query.limit {
        None => shared::pagination::DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
            0
        }
    };
    let min = price_param(&mut errors, "min_price", query.min_price.as_deref());
    let max = price_param(&mut errors, "max_price", query.max_price.as_deref());
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            errors.push(FieldError::new("max_price", "must not be below min_price"));
        }
    }
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 200 || q.chars().any(char::is_control)) {
        errors.push(FieldError::new(
            "q",
            "must be at most 200 characters, without control characters",
        ));
    }
    crate::fields::finish(errors, ())?;
    let sort = query.sort.unwrap_or_default();
    let cursor: Option<Cursor> = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match decode_cursor::<Cursor>(c) {
            Some(cur) if cur.s == sort => Some(cur),
            _ => {
                return Err(CatalogError::Api(ApiError::bad_request(
                    "INVALID_CURSOR",
                    "the cursor is not one this listing issued for this sort",
                )))
            }
        },
    };

    let categories = match query.category_id {
        Some(c) => {
            let ids = crate::categories::repository::subtree_ids(&state.db, c).await?;
            if ids.is_empty() {
                return Ok(ListPage {
                    items: vec![],
                    next_cursor: None,
                });
            }
            Some(ids)
        }
        None => None,
    };

    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT p.id, p.seller_id, p.name, p.slug, p.category_id, p.brand_id, p.min_price,
                p.currency::text AS currency,
                (SELECT i.url FROM product_images i WHERE i.product_id = p.id AND i.is_primary)
                    AS image_url,
                p.created_at, lower(p.name) AS sort_name
         FROM products p
         WHERE p.status = 'active' AND p.deleted_at IS NULL AND p.min_price IS NOT NULL",
    );
    if let Some(ids) = categories {
        b.push(" AND p.category_id = ANY(").push_bind(ids).push(")");
    }
    if let Some(brand) = query.brand_id {
        b.push(" AND p.brand_id = ").push_bind(brand);
    }
    if let Some(seller) = query.seller_id {
        b.push(" AND p.seller_id = ").push_bind(seller);
    }
    if let Some(min) = min {
        b.push(" AND p.min_price >= ").push_bind(min);
    }
    if let Some(max) = max {
        b.push(" AND p.min_price <= ").push_bind(max);
    }
    if let Some(q) = q {
        b.push(" AND (p.search @@ websearch_to_tsquery('simple', ")
            .push_bind(q.to_owned())
            .push(") OR p.name ILIKE ")
            .push_bind(like_pattern(q))
            .push(")");
    }
    if let Some(c) = &cursor {
        match (sort, &c.p, &c.n) {
            (Sort::Newest, _, _) => {
                b.push(" AND p.id < ").push_bind(c.id);
            }
            (Sort::PriceAsc, Some(p), _) => {
                b.push(" AND (p.min_price, p.id) > (")
                    .push_bind(*p)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            (Sort::PriceDesc, Some(p), _) => {
                b.push(" AND (p.min_price, p.id) < (")
                    .push_bind(*p)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            (Sort::Name, _, Some(n)) => {
                b.push(" AND (lower(p.name), p.id) > (")
                    .push_bind(n.clone())
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            _ => {
                return Err(CatalogError::Api(ApiError::bad_request(
                    "INVALID_CURSOR",
                    "the cursor is not one this listing issued",
                )))
            }
        }
    }
    b.push(match sort {
        Sort::Newest => " ORDER BY p.id DESC",
        Sort::PriceAsc => " ORDER BY p.min_price, p.id",
        Sort::PriceDesc => " ORDER BY p.min_price DESC, p.id DESC",
        Sort::Name => " ORDER BY lower(p.name), p.id",
    });
    b.push(" LIMIT ").push_bind(i64::from(limit) + 1);
    let mut rows: Vec<ListItem> = b.build_query_as().fetch_all(&state.db).await?;

    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|last| {
            encode_cursor(&Cursor {
                s: sort,
                id: last.id,
                p: matches!(sort, Sort::PriceAsc | Sort::PriceDesc).then_some(last.min_price),
                n: (sort == Sort::Name).then(|| last.sort_name.clone()),
            })
        })
    } else {
        None
    };
    for r in &mut rows {
        r.min_price = super::service::display_price(r.min_price, Some(&r.currency));
    }
    Ok(ListPage {
        items: rows,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
