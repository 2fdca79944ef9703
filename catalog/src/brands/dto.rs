//! Shapes of the brand API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Brand {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub logo_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Northpeak",
    "slug": "northpeak",
    "description": "Merino base layers, socks and trail gear.",
    "logo_url": "https://img.example/brands/northpeak.png"
}))]
#[serde(deny_unknown_fields)]
pub struct CreateBrand {
    pub name: String,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub logo_url: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Northpeak Outdoor",
    "slug": "northpeak-outdoor",
    "description": "Merino base layers, socks and trail gear since 1998.",
    "logo_url": "https://img.example/brands/northpeak-outdoor.png"
}))]
#[serde(deny_unknown_fields)]
pub struct UpdateBrand {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "crate::fields::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::fields::double_option")]
    #[schema(value_type = Option<String>)]
    pub logo_url: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandList {
    pub items: Vec<Brand>,
}
