//! Product, SKU and image rules. Every write locks the product row first (so writes to one
//! product serialise), checks ownership, changes, commits, then drops the cached detail.

use rust_decimal::Decimal;
use serde_json::Value;
use shared::auth::{AuthUser, Role};
use shared::db::{is_check_violation, is_foreign_key_violation, is_unique_violation};
use shared::money::Money;
use shared::pagination::{Page, PageParams};
use shared::FieldError;
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::{ProductStatus, SkuStatus};
use super::dto::*;
use super::repository::{self as repo, NewProduct, NewSku, ProductUpdate};
use crate::error::{CatalogError, Entity, Result};
use crate::fields;
use crate::startup::AppState;

const MAX_IMAGES: i64 = 20;
/// Upper bound of a SKU's shelf count (and of one adjustment): far above any real shelf, far
/// below `i32::MAX`, so counters can never overflow.
const MAX_STOCK: i64 = 10_000_000;
const MAX_ATTRIBUTES_BYTES: usize = 4096;

/// A price as shown: with exactly the currency's decimal places (`19.9900` → `19.99`). A stored
/// code that is not an ISO currency (written before codes were checked against the ISO table)
/// shows the amount as stored rather than guessing its decimals.
pub fn display_price(amount: Decimal, currency: Option<&str>) -> Decimal {
    match currency.map(str::parse::<shared::money::Currency>) {
        Some(Ok(c)) => shared::money::rounded(amount, c),
        _ => amount.normalize(),
    }
}

fn present_sku(mut s: Sku) -> Sku {
    s.price = display_price(s.price, Some(&s.currency));
    s
}

fn is_owner_or_admin(p: &ProductDetail, caller: Option<&AuthUser>) -> bool {
    caller.is_some_and(|c| c.is_admin() || c.id == p.seller_id)
}

fn can_see(p: &ProductDetail, caller: Option<&AuthUser>) -> bool {
    p.status == ProductStatus::Active.as_str() || is_owner_or_admin(p, caller)
}

/// The detail as this caller may see it: hidden (404) unless visible, and without the stock
/// counters unless the caller owns the product or is an admin. Called on whatever
/// `load_detail` returned, cached or not, since one cached entry serves every caller.
fn shown_to(d: ProductDetail, caller: Option<&AuthUser>) -> Result<ProductDetail> {
    if !can_see(&d, caller) {
        Err(CatalogError::NotFound(Entity::Product))
    } else if is_owner_or_admin(&d, caller) {
        Ok(d)
    } else {
        Ok(d.without_counters())
    }
}

fn require_writer(caller: &AuthUser) -> Result<()> {
    caller.require(&[Role::Seller, Role::Admin])?;
    Ok(())
}

/// Lock a live product and check the caller may change it: a stranger learns nothing about a
/// product the public cannot see (404), and is refused one it can (403).
async fn lock_owned(conn: &mut PgConnection, id: Uuid, caller: &AuthUser) -> Result<ProductRow> {
    require_writer(caller)?;
    let p = repo::lock_product(&mut *conn, id)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Product))?;
    if caller.is_admin() || p.seller_id == caller.id {
        Ok(p)
    } else if p.status == ProductStatus::Active.as_str() {
        Err(CatalogError::NotOwner)
    } else {
        Err(CatalogError::NotFound(Entity::Product))
    }
}

/// Lock the product of a live SKU (ownership checked), then the SKU. Product before SKU, the
/// same order as every other write, so two writers never wait on each other in a cycle.
async fn lock_owned_sku(
    conn: &mut PgConnection,
    sku: Uuid,
    caller: &AuthUser,
) -> Result<(ProductRow, Sku)> {
    require_writer(caller)?;
    let product_id = repo::product_of_sku(&mut *conn, sku)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Sku))?;
    let p = lock_owned(conn, product_id, caller)
        .await
        .map_err(|e| match e {
            CatalogError::NotFound(Entity::Product) => CatalogError::NotFound(Entity::Sku),
            other => other,
        })?;
    let s = repo::lock_sku(&mut *conn, sku)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Sku))?;
    Ok((p, s))
}

async fn load_detail(state: &AppState, id: Uuid) -> Result<Option<ProductDetail>> {
    if let Some(key) = state.cache.product_key(id) {
        if let Some(hit) = state.cache.get::<ProductDetail>("detail", &key).await {
            return Ok(Some(hit));
        }
    }
    let Some(p) = repo::product(&state.db, id).await? else {
        return Ok(None);
    };
    let skus = repo::skus_of(&state.db, id).await?;
    let images = repo::images_of(&state.db, id).await?;
    let detail = ProductDetail::new(p, skus.into_iter().map(present_sku).collect(), images);
    if let Some(key) = state.cache.product_key(id) {
        state.cache.set(&key, &detail).await;
    }
    Ok(Some(detail))
}

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn detail(
    state: &AppState,
    id: Uuid,
    caller: Option<&AuthUser>,
) -> Result<ProductDetail> {
    match load_detail(state, id).await? {
        Some(d) => shown_to(d, caller),
        None => Err(CatalogError::NotFound(Entity::Product)),
    }
}

/// The detail as the public sees it, serialised once and shared by every caller who sees that
/// view (anyone signed out, and buyers), with an ETag of its bytes. The cached bytes are served
/// as they are: no decoding and re-encoding per request (docs/benchmarks.md).
pub struct PublicDetail {
    pub etag: String,
    pub body: Vec<u8>,
}

impl PublicDetail {
    /// Stored as `{etag}\n{json}`; `None` for anything else (then it is rebuilt).
    fn from_stored(mut stored: Vec<u8>) -> Option<Self> {
        let newline = stored.iter().position(|b| *b == b'\n')?;
        let etag = std::str::from_utf8(&stored[..newline]).ok()?.to_owned();
        stored.drain(..=newline);
        Some(Self { etag, body: stored })
    }

    fn stored(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.etag.len() + 1 + self.body.len());
        v.extend_from_slice(self.etag.as_bytes());
        v.push(b'\n');
        v.extend_from_slice(&self.body);
        v
    }
}

/// A strong validator for these exact bytes: their length and a 64-bit hash.
fn etag_of(body: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same bytes give the same tag in every replica.
    let mut h = std::hash::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:x}-{:016x}\"", body.len(), h.finish())
}

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn public_detail(state: &AppState, id: Uuid) -> Result<PublicDetail> {
    let key = state.cache.public_key(id);
    if let Some(key) = &key {
        if let Some(hit) = state
            .cache
            .get_raw(key)
            .await
            .and_then(PublicDetail::from_stored)
        {
            return Ok(hit);
        }
    }
    let d = load_detail(state, id)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Product))?;
    let body = serde_json::to_vec(&shown_to(d, None)?)
        .map_err(|e| CatalogError::Unexpected(anyhow::anyhow!("product detail: {e}")))?;
    let public = PublicDetail {
        etag: etag_of(&body),
        body,
    };
    if let Some(key) = &key {
        state.cache.set_raw(key, &public.stored()).await;
    }
    Ok(public)
}

#[tracing::instrument(skip_all)]
pub async fn detail_by_slug(
    state: &AppState,
    slug: &str,
    caller: Option<&AuthUser>,
) -> Result<ProductDetail> {
    // No product has a slug that is not one; such a path cannot name anything.
    if !crate::slug::is_valid(slug) {
        return Err(CatalogError::NotFound(Entity::Product));
    }
    let cached_id = match state.cache.slug_key(slug) {
        Some(key) => state.cache.get::<Uuid>("slug", &key).await,
        None => None,
    };
    if let Some(id) = cached_id {
        // A slug can move to another product; trust the mapping only if it still holds.
        if let Some(d) = load_detail(state, id).await? {
            if d.slug == slug {
                return shown_to(d, caller);
            }
        }
    }
    let id = repo::product_id_by_slug(&state.db, slug)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Product))?;
    if let Some(key) = state.cache.slug_key(slug) {
        state.cache.set(&key, &id).await;
    }
    detail(state, id, caller).await
}

fn write_error(e: sqlx::Error) -> CatalogError {
    if is_unique_violation(&e, "products_slug_key") {
        CatalogError::conflict("SLUG_TAKEN", "another product has that slug")
    } else if is_foreign_key_violation(&e, "products_category_id_fkey") {
        CatalogError::field("category_id", "no such category")
    } else if is_foreign_key_violation(&e, "products_brand_id_fkey") {
        CatalogError::field("brand_id", "no such brand")
    } else {
        e.into()
    }
}

#[tracing::instrument(skip_all, fields(seller_id = %caller.id))]
pub async fn create(
    state: &AppState,
    caller: &AuthUser,
    input: CreateProduct,
) -> Result<ProductDetail> {
    require_writer(caller)?;
    let mut errors = Vec::new();
    let name = fields::required_text(&mut errors, "name", &input.name, 200);
    let description = fields::optional_text(
        &mut errors,
        "description",
        input.description.as_deref(),
        10_000,
    );
    let given = input.slug.is_some();
    let slug = fields::slug(&mut errors, input.slug.as_deref(), &name);
    let id = shared::id::new_id();
    fields::finish(errors, ())?;
    // A name with nothing slug-worthy (another script, say) still gets a stable, unique slug.
    let slug = slug.unwrap_or_else(|| format!("p-{}", id.simple()));
    let mut attempt = slug.clone();
    for round in 0..2 {
        let row = NewProduct {
            id,
            seller_id: caller.id,
            name: &name,
            slug: &attempt,
            description: description.as_deref(),
            category_id: input.category_id,
            brand_id: input.brand_id,
        };
        match repo::insert_product(&state.db, &row).await {
            Ok(p) => return Ok(ProductDetail::new(p, vec![], vec![])),
            Err(e) if is_unique_violation(&e, "products_slug_key") && !given && round == 0 => {
                attempt = format!("{slug}-{}", &id.simple().to_string()[24..]);
            }
            Err(e) => return Err(write_error(e)),
        }
    }
    Err(CatalogError::conflict(
        "SLUG_TAKEN",
        "another product has that slug",
    ))
}

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn update(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
    input: UpdateProduct,
) -> Result<ProductDetail> {
    let mut errors = Vec::new();
    let name = input
        .name
        .as_deref()
        .map(|n| fields::required_text(&mut errors, "name", n, 200));
    let description = input
        .description
        .as_ref()
        .map(|d| fields::optional_text(&mut errors, "description", d.as_deref(), 10_000));
    let slug = input
        .slug
        .as_deref()
        .and_then(|s| fields::given_slug(&mut errors, s));
    fields::finish(errors, ())?;

    let mut tx = state.db.begin().await?;
    let current = lock_owned(&mut tx, id, caller).await?;
    let from = ProductStatus::parse(&current.status)
        .ok_or_else(|| anyhow::anyhow!("unknown stored status {}", current.status))?;
    let to = input.status.unwrap_or(from);
    if !from.can_become(to) {
        return Err(CatalogError::conflict(
            "INVALID_STATUS_TRANSITION",
            format!("a {} product cannot become {}", from.as_str(), to.as_str()),
        ));
    }
    let update = ProductUpdate {
        name: name.as_deref().unwrap_or(&current.name),
        slug: slug.as_deref().unwrap_or(&current.slug),
        description: match &description {
            Some(d) => d.as_deref(),
            None => current.description.as_deref(),
        },
        category_id: input.category_id.unwrap_or(current.category_id),
        brand_id: input.brand_id.unwrap_or(current.brand_id),
        status: to.as_str(),
    };
    let p = repo::update_product(&mut *tx, id, &update)
        .await
        .map_err(write_error)?;
    let skus = repo::skus_of(&mut *tx, id).await?;
    let images = repo::images_of(&mut *tx, id).await?;
    tx.commit().await?;
    state.cache.invalidate(&[id]).await;
    Ok(ProductDetail::new(
        p,
        skus.into_iter().map(present_sku).collect(),
        images,
    ))
}

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn delete(state: &AppState, caller: &AuthUser, id: Uuid) -> Result<()> {
    let mut tx = state.db.begin().await?;
    lock_owned(&mut tx, id, caller).await?;
    repo::soft_delete_product(&mut *tx, id).await?;
    tx.commit().await?;
    state.cache.invalidate(&[id]).await;
    Ok(())
}

fn parse_price(errors: &mut Vec<FieldError>, price: &str, currency: &str) -> Option<Money> {
    match Money::parse(price, currency) {
        Ok(m)
            if m.amount() > Decimal::ZERO && m.amount() < Decimal::from(1_000_000_000_000_i64) =>
        {
            Some(m)
        }
        Ok(_) => {
            errors.push(FieldError::new(
                "price",
                "must be greater than zero and below 10^12",
            ));
            None
        }
        Err(shared::money::MoneyError::Currency(_)) => {
            errors.push(FieldError::new(
                "currency",
                "must be an ISO-4217 currency code with a minor unit, such as USD, EUR or JPY",
            ));
            None
        }
        Err(e) => {
            errors.push(FieldError::new("price", e.to_string()));
            None
        }
    }
}

fn check_attributes(errors: &mut Vec<FieldError>, attributes: &Value) {
    let json = attributes.to_string();
    if !attributes.is_object() {
        errors.push(FieldError::new("attributes", "must be a JSON object"));
    } else if json.contains("\\u0000") {
        // jsonb cannot hold a NUL.
        errors.push(FieldError::new(
            "attributes",
            "must not contain NUL characters",
        ));
    } else if json.len() > MAX_ATTRIBUTES_BYTES {
        errors.push(FieldError::new(
            "attributes",
            format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
        ));
    }
}

fn sku_write_error(e: sqlx::Error) -> CatalogError {
    if is_unique_violation(&e, "skus_sku_code_key") {
        CatalogError::conflict("SKU_CODE_TAKEN", "another SKU has that code")
    } else {
        e.into()
    }
}

#[tracing::instrument(skip_all, fields(product_id = %product_id))]
pub async fn create_sku(
    state: &AppState,
    caller: &AuthUser,
    product_id: Uuid,
    input: CreateSku,
) -> Result<Sku> {
    let mut errors = Vec::new();
    let code = input.sku_code.trim().to_owned();
    let code_ok = !code.is_empty()
        && code.len() <= 64
        && code.as_bytes()[0].is_ascii_alphanumeric()
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !code_ok {
        errors.push(FieldError::new(
            "sku_code",
            "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    let price = parse_price(&mut errors, &input.price, &input.currency);
    if !(0..=MAX_STOCK).contains(&input.stock_quantity) {
        errors.push(FieldError::new(
            "stock_quantity",
            format!("must be between 0 and {MAX_STOCK}"),
        ));
    }
    let attributes = input
        .attributes
        .unwrap_or_else(|| Value::Object(Default::default()));
    check_attributes(&mut errors, &attributes);
    let price = fields::finish(errors, price)?;
    let Some(price) = price else {
        return Err(CatalogError::field("price", "is required"));
    };
    let stock = i32::try_from(input.stock_quantity)
        .map_err(|_| CatalogError::field("stock_quantity", "out of range"))?;

    let mut tx = state.db.begin().await?;
    let p = lock_owned(&mut tx, product_id, caller).await?;
    // `currency` is set exactly while the product has live SKUs (`refresh_prices`).
    if let Some(existing) = p.currency.as_deref() {
        if existing != price.currency().as_str() {
            return Err(CatalogError::field(
                "currency",
                format!("must be {existing}, the currency of the product's other SKUs"),
            ));
        }
    }
    let sku_id = shared::id::new_id();
    let currency = price.currency();
    let new = NewSku {
        id: sku_id,
        product_id,
        sku_code: &code,
        price: price.amount(),
        currency: currency.as_str(),
        attributes: &attributes,
        status: input.status.unwrap_or(SkuStatus::Active).as_str(),
        stock,
    };
    let sku = repo::insert_sku(&mut *tx, &new)
        .await
        .map_err(sku_write_error)?;
    repo::record_movement(&mut *tx, sku_id, "initial", stock, Some(caller.id)).await?;
    repo::refresh_prices(&mut *tx, product_id).await?;
    tx.commit().await?;
    state.cache.invalidate(&[product_id]).await;
    Ok(present_sku(sku))
}

#[tracing::instrument(skip_all, fields(sku_id = %sku_id))]
pub async fn update_sku(
    state: &AppState,
    caller: &AuthUser,
    sku_id: Uuid,
    input: UpdateSku,
) -> Result<Sku> {
    let mut tx = state.db.begin().await?;
    let (_, current) = lock_owned_sku(&mut tx, sku_id, caller).await?;
    let mut errors = Vec::new();
    let price = match &input.price {
        Some(p) => parse_price(&mut errors, p, &current.currency).map(|m| m.amount()),
        None => Some(current.price),
    };
    if let Some(a) = &input.attributes {
        check_attributes(&mut errors, a);
    }
    let price = fields::finish(errors, price)?.unwrap_or(current.price);
    let status = input
        .status
        .map_or_else(|| current.status.clone(), |s| s.as_str().to_owned());
    let attributes = input
        .attributes
        .clone()
        .unwrap_or_else(|| current.attributes.0.clone());
    let sku = repo::update_sku(&mut *tx, sku_id, price, &status, &attributes).await?;
    repo::refresh_prices(&mut *tx, current.product_id).await?;
    tx.commit().await?;
    state.cache.invalidate(&[current.product_id]).await;
    Ok(present_sku(sku))
}

#[tracing::instrument(skip_all, fields(sku_id = %sku_id))]
pub async fn change_stock(
    state: &AppState,
    caller: &AuthUser,
    sku_id: Uuid,
    input: StockChange,
) -> Result<Sku> {
    match (input.delta, input.set) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(CatalogError::field(
                "delta",
                "give exactly one of delta or set",
            ))
        }
        (Some(d), None) if d == 0 || d.abs() > MAX_STOCK => {
            return Err(CatalogError::field(
                "delta",
                format!("must be a non-zero number of units, at most {MAX_STOCK} either way"),
            ))
        }
        (None, Some(s)) if !(0..=MAX_STOCK).contains(&s) => {
            return Err(CatalogError::field(
                "set",
                format!("must be between 0 and {MAX_STOCK}"),
            ))
        }
        _ => {}
    }
    let mut tx = state.db.begin().await?;
    let (_, sku) = lock_owned_sku(&mut tx, sku_id, caller).await?;
    let (stock, reserved) = sku.counters();
    let old = i64::from(stock);
    let new = match (input.delta, input.set) {
        (Some(d), _) => old + d,
        (_, Some(s)) => s,
        _ => old,
    };
    if new < i64::from(reserved) || new > MAX_STOCK {
        return Err(CatalogError::Api(
            shared::ApiError::conflict(
                "STOCK_BELOW_RESERVED",
                "stock cannot go below zero or below the units held for open orders",
            )
            .with_details(serde_json::json!({
                "stock_quantity": stock,
                "reserved_quantity": reserved,
                "requested": new,
            })),
        ));
    }
    let new = i32::try_from(new).map_err(|_| CatalogError::field("set", "out of range"))?;
    let updated = match repo::set_stock(&mut *tx, sku_id, new).await {
        Ok(s) => s,
        // The schema's own guard, should the code above ever be wrong.
        Err(e)
            if is_check_violation(&e, "skus_reserved_within_stock")
                || is_check_violation(&e, "skus_stock_nonnegative") =>
        {
            return Err(CatalogError::conflict(
                "STOCK_BELOW_RESERVED",
                "stock cannot go below the units held for open orders",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if new != stock {
        repo::record_movement(&mut *tx, sku_id, "adjustment", new - stock, Some(caller.id)).await?;
    }
    tx.commit().await?;
    state.cache.invalidate(&[sku.product_id]).await;
    Ok(present_sku(updated))
}

#[tracing::instrument(skip_all, fields(sku_id = %sku_id))]
pub async fn delete_sku(state: &AppState, caller: &AuthUser, sku_id: Uuid) -> Result<()> {
    let mut tx = state.db.begin().await?;
    let (_, sku) = lock_owned_sku(&mut tx, sku_id, caller).await?;
    if sku.counters().1 > 0 {
        return Err(CatalogError::conflict(
            "SKU_HAS_RESERVATIONS",
            "units of this SKU are held for open orders; deactivate it instead",
        ));
    }
    repo::soft_delete_sku(&mut *tx, sku_id).await?;
    repo::refresh_prices(&mut *tx, sku.product_id).await?;
    tx.commit().await?;
    state.cache.invalidate(&[sku.product_id]).await;
    Ok(())
}

#[tracing::instrument(skip_all, fields(product_id = %product_id))]
pub async fn add_image(
    state: &AppState,
    caller: &AuthUser,
    product_id: Uuid,
    input: CreateImage,
) -> Result<Image> {
    let mut errors = Vec::new();
    let url = fields::url(&mut errors, "url", &input.url);
    let alt = fields::optional_text(&mut errors, "alt_text", input.alt_text.as_deref(), 300);
    fields::finish(errors, ())?;
    let mut tx = state.db.begin().await?;
    lock_owned(&mut tx, product_id, caller).await?;
    let count = repo::image_count(&mut *tx, product_id).await?;
    if count >= MAX_IMAGES {
        return Err(CatalogError::conflict(
            "TOO_MANY_IMAGES",
            format!("a product has at most {MAX_IMAGES} images"),
        ));
    }
    // The first image is the primary one until another is chosen.
    let primary = input.is_primary.unwrap_or(false) || count == 0;
    if primary {
        repo::clear_primary(&mut *tx, product_id).await?;
    }
    let sort = input
        .sort_order
        .unwrap_or(i32::try_from(count).unwrap_or(0));
    let image =
        repo::insert_image(&mut *tx, product_id, &url, alt.as_deref(), sort, primary).await?;
    tx.commit().await?;
    state.cache.invalidate(&[product_id]).await;
    Ok(image)
}

#[tracing::instrument(skip_all, fields(product_id = %product_id, image_id = %image_id))]
pub async fn update_image(
    state: &AppState,
    caller: &AuthUser,
    product_id: Uuid,
    image_id: Uuid,
    input: UpdateImage,
) -> Result<Image> {
    let mut errors = Vec::new();
    let alt = input
        .alt_text
        .as_ref()
        .map(|a| fields::optional_text(&mut errors, "alt_text", a.as_deref(), 300));
    if input.is_primary == Some(false) {
        errors.push(FieldError::new(
            "is_primary",
            "choose another image as primary instead of unsetting this one",
        ));
    }
    fields::finish(errors, ())?;
    let mut tx = state.db.begin().await?;
    lock_owned(&mut tx, product_id, caller).await?;
    let current = repo::image(&mut *tx, product_id, image_id)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Image))?;
    let primary = input.is_primary.unwrap_or(current.is_primary);
    if primary && !current.is_primary {
        repo::clear_primary(&mut *tx, product_id).await?;
    }
    let image = repo::update_image(
        &mut *tx,
        image_id,
        match &alt {
            Some(a) => a.as_deref(),
            None => current.alt_text.as_deref(),
        },
        input.sort_order.unwrap_or(current.sort_order),
        primary,
    )
    .await?;
    tx.commit().await?;
    state.cache.invalidate(&[product_id]).await;
    Ok(image)
}

#[tracing::instrument(skip_all, fields(product_id = %product_id, image_id = %image_id))]
pub async fn delete_image(
    state: &AppState,
    caller: &AuthUser,
    product_id: Uuid,
    image_id: Uuid,
) -> Result<()> {
    let mut tx = state.db.begin().await?;
    lock_owned(&mut tx, product_id, caller).await?;
    repo::image(&mut *tx, product_id, image_id)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Image))?;
    repo::delete_image(&mut *tx, image_id).await?;
    repo::ensure_primary(&mut *tx, product_id).await?;
    tx.commit().await?;
    state.cache.invalidate(&[product_id]).await;
    Ok(())
}

pub async fn seller_products(
    state: &AppState,
    caller: &AuthUser,
    query: &SellerQuery,
) -> Result<Page<ProductSummary>> {
    require_writer(caller)?;
    let params = PageParams {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let limit = params.limit()?;
    let before: Option<Uuid> = params.cursor()?;
    let rows = repo::seller_page(
        &state.db,
        caller.id,
        query.status.map(ProductStatus::as_str),
        before,
        i64::from(limit) + 1,
    )
    .await?;
    let rows = rows
        .into_iter()
        .map(|mut r| {
            r.min_price = r.min_price.map(|m| display_price(m, r.currency.as_deref()));
            r
        })
        .collect();
    Ok(Page::from_rows(rows, limit, |r| r.id))
}

pub const MAX_LOOKUP: usize = 100;

/// Parse `a,b,c` into distinct SKU ids (1–100).
pub fn parse_ids(raw: &str) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id = part
            .parse::<Uuid>()
            .map_err(|_| CatalogError::field("ids", format!("'{part}' is not a SKU id")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(CatalogError::field("ids", "give at least one SKU id"));
    }
    if ids.len() > MAX_LOOKUP {
        return Err(CatalogError::field(
            "ids",
            format!("at most {MAX_LOOKUP} SKU ids per request"),
        ));
    }
    Ok(ids)
}

#[tracing::instrument(skip_all)]
pub async fn lookup(state: &AppState, raw_ids: &str) -> Result<SkuLookupList> {
    let ids = parse_ids(raw_ids)?;
    let items = repo::lookup_skus(&state.db, &ids)
        .await?
        .into_iter()
        .map(|mut s| {
            s.price = display_price(s.price, Some(&s.currency));
            s
        })
        .collect();
    Ok(SkuLookupList { items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_show_the_currency_decimal_places() {
        let p = Decimal::new(199_900, 4); // 19.9900 as stored
        assert_eq!(display_price(p, Some("USD")).to_string(), "19.99");
        assert_eq!(
            display_price(Decimal::new(2_000_000, 4), Some("KRW")).to_string(),
            "200"
        );
        assert_eq!(
            display_price(Decimal::new(20, 0), Some("EUR")).to_string(),
            "20.00"
        );
    }

    #[test]
    fn sku_ids_are_parsed_deduplicated_and_bounded() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert_eq!(parse_ids(&format!("{a}, {b},{a}")).unwrap(), vec![a, b]);
        assert!(parse_ids("nope").is_err());
        assert!(parse_ids(" , ").is_err());
        let many: Vec<String> = (0..101).map(|_| Uuid::now_v7().to_string()).collect();
        assert!(parse_ids(&many.join(",")).is_err());
    }
}
