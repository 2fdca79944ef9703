//! Shapes of the category API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Category {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A category with its distance from the node a subtree or ancestor query started at.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct CategoryNode {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub depth: i32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Hiking Socks",
    "slug": "hiking-socks",
    "parent_id": "01936e89-7a3b-7c12-a4d5-e6f708192a3b"
}))]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    pub name: String,
    pub slug: Option<String>,
    pub parent_id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Hiking & Trail Socks",
    "slug": "hiking-trail-socks",
    "parent_id": "01936e89-7a3b-7c12-a4d5-e6f708192a3b"
}))]
#[serde(deny_unknown_fields)]
pub struct UpdateCategory {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// Move under another category; `null` makes it a root.
    #[serde(default, deserialize_with = "crate::fields::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<Category>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryNodes {
    pub items: Vec<CategoryNode>,
}
