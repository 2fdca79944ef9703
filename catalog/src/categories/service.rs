//! Category rules: names and slugs, and the guards on moves and deletes.

use shared::db::{is_foreign_key_violation, is_unique_violation};
use shared::pagination::{Page, PageParams};
use sqlx::PgPool;
use uuid::Uuid;

use super::dto::{Category, CategoryNode, CreateCategory, UpdateCategory};
use super::repository as repo;
use crate::error::{CatalogError, Entity, Result};
use crate::fields;

fn slug_taken() -> CatalogError {
    CatalogError::conflict("SLUG_TAKEN", "another category has that slug")
}

#[tracing::instrument(skip_all)]
pub async fn create(db: &PgPool, input: CreateCategory) -> Result<Category> {
    let mut errors = Vec::new();
    let name = fields::required_text(&mut errors, "name", &input.name, 100);
    let given = input.slug.is_some();
    let slug = fields::slug(&mut errors, input.slug.as_deref(), &name);
    if slug.is_none() && !given && errors.is_empty() {
        errors.push(shared::FieldError::new(
            "slug",
            "cannot be made from this name; give one",
        ));
    }
    let slug = fields::finish(errors, slug)?.unwrap_or_default();
    let id = shared::id::new_id();
    let mut attempt = slug.clone();
    for round in 0..2 {
        match repo::insert(db, id, input.parent_id, &name, &attempt).await {
            Ok(c) => return Ok(c),
            Err(e) if is_unique_violation(&e, "categories_slug_key") => {
                if given || round == 1 {
                    return Err(slug_taken());
                }
                attempt = format!("{slug}-{}", &id.simple().to_string()[24..]);
            }
            Err(e) if is_foreign_key_violation(&e, "categories_parent_id_fkey") => {
                return Err(CatalogError::field("parent_id", "no such category"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(slug_taken())
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Category> {
    repo::get(db, id)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Category))
}

pub async fn list(db: &PgPool, params: &PageParams) -> Result<Page<Category>> {
    let limit = params.limit()?;
    let after: Option<Uuid> = params.cursor()?;
    let rows = repo::page(db, after, i64::from(limit) + 1).await?;
    Ok(Page::from_rows(rows, limit, |c| c.id))
}

pub async fn children(db: &PgPool, id: Uuid) -> Result<Vec<Category>> {
    get(db, id).await?;
    Ok(repo::children(db, id).await?)
}

pub async fn subtree(db: &PgPool, id: Uuid) -> Result<Vec<CategoryNode>> {
    let nodes = repo::subtree(db, id).await?;
    if nodes.is_empty() {
        return Err(CatalogError::NotFound(Entity::Category));
    }
    Ok(nodes)
}

pub async fn ancestors(db: &PgPool, id: Uuid) -> Result<Vec<CategoryNode>> {
    get(db, id).await?;
    Ok(repo::ancestors(db, id).await?)
}

#[tracing::instrument(skip_all, fields(category_id = %id))]
pub async fn update(db: &PgPool, id: Uuid, input: UpdateCategory) -> Result<Category> {
    let mut errors = Vec::new();
    let name = input
        .name
        .as_deref()
        .map(|n| fields::required_text(&mut errors, "name", n, 100));
    let slug = input
        .slug
        .as_deref()
        .and_then(|s| fields::given_slug(&mut errors, s));
    fields::finish(errors, ())?;

    let mut tx = db.begin().await?;
    if input.parent_id.is_some() {
        repo::lock_for_move(&mut tx).await?;
    }
    let current = repo::get(&mut *tx, id)
        .await?
        .ok_or(CatalogError::NotFound(Entity::Category))?;
    let parent = match input.parent_id {
        None => current.parent_id,
        Some(None) => None,
        Some(Some(p)) => {
            if p == id {
                return Err(CatalogError::conflict(
                    "CATEGORY_CYCLE",
                    "a category cannot be its own parent",
                ));
            }
            if repo::get(&mut *tx, p).await?.is_none() {
                return Err(CatalogError::field("parent_id", "no such category"));
            }
            if repo::subtree_ids(&mut *tx, id).await?.contains(&p) {
                return Err(CatalogError::conflict(
                    "CATEGORY_CYCLE",
                    "a category cannot move under one of its own descendants",
                ));
            }
            Some(p)
        }
    };
    let updated = repo::update(
        &mut *tx,
        id,
        parent,
        name.as_deref().unwrap_or(&current.name),
        slug.as_deref().unwrap_or(&current.slug),
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e, "categories_slug_key") {
            slug_taken()
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    Ok(updated)
}

#[tracing::instrument(skip_all, fields(category_id = %id))]
pub async fn delete(db: &PgPool, id: Uuid) -> Result<()> {
    let mut tx = db.begin().await?;
    repo::detach_deleted_products(&mut *tx, id).await?;
    match repo::delete(&mut *tx, id).await {
        Ok(true) => {}
        Ok(false) => return Err(CatalogError::NotFound(Entity::Category)),
        Err(e) if is_foreign_key_violation(&e, "categories_parent_id_fkey") => {
            return Err(CatalogError::conflict(
                "CATEGORY_HAS_CHILDREN",
                "move or delete the category's children first",
            ))
        }
        Err(e) if is_foreign_key_violation(&e, "products_category_id_fkey") => {
            return Err(CatalogError::conflict(
                "CATEGORY_IN_USE",
                "products are in this category; move them first",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(())
}
