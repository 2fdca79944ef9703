//! Brand rules: unique names (case-insensitive) and slugs, deletes refused while products use
//! the brand, links to categories.

use shared::db::{is_foreign_key_violation, is_unique_violation};
use shared::pagination::{Page, PageParams};
use sqlx::PgPool;
use uuid::Uuid;

use super::dto::{Brand, CreateBrand, UpdateBrand};
use super::repository::{self as repo, BrandRow};
use crate::categories::dto::Category;
use crate::error::{CatalogError, Entity, Result};
use crate::fields;

fn map_write_error(e: sqlx::Error) -> CatalogError {
    if is_unique_violation(&e, "brands_slug_key") {
        CatalogError::conflict("SLUG_TAKEN", "another brand has that slug")
    } else if is_unique_violation(&e, "brands_name_key") {
        CatalogError::conflict("BRAND_NAME_TAKEN", "a brand with that name exists")
    } else {
        e.into()
    }
}

#[tracing::instrument(skip_all)]
pub async fn create(db: &PgPool, input: CreateBrand) -> Result<Brand> {
    let mut errors = Vec::new();
    let name = fields::required_text(&mut errors, "name", &input.name, 100);
    let slug = fields::slug(&mut errors, input.slug.as_deref(), &name);
    if slug.is_none() && errors.is_empty() {
        errors.push(shared::FieldError::new(
            "slug",
            "cannot be made from this name; give one",
        ));
    }
    let description = fields::optional_text(
        &mut errors,
        "description",
        input.description.as_deref(),
        2000,
    );
    let logo_url = input
        .logo_url
        .as_deref()
        .map(|u| fields::url(&mut errors, "logo_url", u));
    let slug = fields::finish(errors, slug)?.unwrap_or_default();
    let row = BrandRow {
        name: &name,
        slug: &slug,
        description: description.as_deref(),
        logo_url: logo_url.as_deref(),
    };
    match repo::insert(db, shared::id::new_id(), &row).await {
        Ok(b) => Ok(b),
        // A name that differs only in case also makes the same slug: name the real clash.
        Err(e)
            if is_unique_violation(&e, "brands_slug_key")
                && repo::name_taken(db, &name).await? =>
        {
            Err(CatalogError::conflict(
                "BRAND_NAME_TAKEN",
                "a brand with that name exists",
            ))
        }
        Err(e) => Err(map_write_error(e)),
    }
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Brand> {
    repo::get(db, id)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Brand))
}

pub async fn list(db: &PgPool, params: &PageParams) -> Result<Page<Brand>> {
    let limit = params.limit()?;
    let after: Option<Uuid> = params.cursor()?;
    let rows = repo::page(db, after, i64::from(limit) + 1).await?;
    Ok(Page::from_rows(rows, limit, |b| b.id))
}

#[tracing::instrument(skip_all, fields(brand_id = %id))]
pub async fn update(db: &PgPool, id: Uuid, input: UpdateBrand) -> Result<Brand> {
    let current = get(db, id).await?;
    let mut errors = Vec::new();
    let name = match &input.name {
        Some(n) => fields::required_text(&mut errors, "name", n, 100),
        None => current.name.clone(),
    };
    let slug = input
        .slug
        .as_deref()
        .and_then(|s| fields::given_slug(&mut errors, s))
        .unwrap_or_else(|| current.slug.clone());
    let description = match &input.description {
        Some(d) => fields::optional_text(&mut errors, "description", d.as_deref(), 2000),
        None => current.description.clone(),
    };
    let logo_url = match &input.logo_url {
        Some(Some(u)) => Some(fields::url(&mut errors, "logo_url", u)),
        Some(None) => None,
        None => current.logo_url.clone(),
    };
    fields::finish(errors, ())?;
    let row = BrandRow {
        name: &name,
        slug: &slug,
        description: description.as_deref(),
        logo_url: logo_url.as_deref(),
    };
    repo::update(db, id, &row)
        .await
        .map_err(map_write_error)?
        .ok_or(CatalogError::NotFound(Entity::Brand))
}

#[tracing::instrument(skip_all, fields(brand_id = %id))]
pub async fn delete(db: &PgPool, id: Uuid) -> Result<()> {
    let mut tx = db.begin().await?;
    repo::detach_deleted_products(&mut *tx, id).await?;
    match repo::delete(&mut *tx, id).await {
        Ok(true) => {}
        Ok(false) => return Err(CatalogError::NotFound(Entity::Brand)),
        Err(e) if is_foreign_key_violation(&e, "products_brand_id_fkey") => {
            return Err(CatalogError::conflict(
                "BRAND_IN_USE",
                "products carry this brand; change them first",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(())
}

pub async fn link(db: &PgPool, brand: Uuid, category: Uuid) -> Result<()> {
    get(db, brand).await?;
    match repo::link(db, brand, category).await {
        Ok(()) => Ok(()),
        Err(e) if is_foreign_key_violation(&e, "brand_categories_category_id_fkey") => {
            Err(CatalogError::NotFound(Entity::Category))
        }
        Err(e) if is_foreign_key_violation(&e, "brand_categories_brand_id_fkey") => {
            Err(CatalogError::NotFound(Entity::Brand))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn unlink(db: &PgPool, brand: Uuid, category: Uuid) -> Result<()> {
    get(db, brand).await?;
    repo::unlink(db, brand, category).await?;
    Ok(())
}

pub async fn categories_of(db: &PgPool, brand: Uuid) -> Result<Vec<Category>> {
    get(db, brand).await?;
    Ok(repo::categories_of(db, brand).await?)
}

pub async fn brands_in(db: &PgPool, category: Uuid) -> Result<Vec<Brand>> {
    crate::categories::service::get(db, category).await?;
    Ok(repo::brands_in(db, category).await?)
}
