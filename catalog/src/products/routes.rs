//! HTTP handlers for products, SKUs, images, the listing and the batch SKU lookup.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::auth::{AuthUser, MaybeUser, Role};
use shared::error::ErrorBody;
use shared::extract::{AppJson, AppPath, AppQuery};
use shared::pagination::Page;
use uuid::Uuid;

use super::dto::*;
use super::listing::{self, ListQuery};
use super::service;
use crate::error::Result;
use crate::startup::AppState;

#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ListQuery),
    responses((status = 200, body = ListPage), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Response> {
    let json = listing::list_json(&state, &q).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/products", tag = "products", security(("bearer" = [])), request_body = CreateProduct,
    responses((status = 201, body = ProductDetail), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    AppJson(req): AppJson<CreateProduct>,
) -> Result<(StatusCode, Json<ProductDetail>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::create(&state, &caller, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/products/seller/me", tag = "products", security(("bearer" = [])), params(SellerQuery),
    responses((status = 200, body = SellerPage), (status = 403, body = ErrorBody)))]
pub async fn seller_me(
    State(state): State<AppState>,
    caller: AuthUser,
    AppQuery(q): AppQuery<SellerQuery>,
) -> Result<Json<Page<ProductSummary>>> {
    Ok(Json(service::seller_products(&state, &caller, &q).await?))
}

#[utoipa::path(get, path = "/api/v1/products/{id}", params(("id" = Uuid, Path), ("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer: 304 if the product is unchanged")), tag = "products",
    responses((status = 200, body = ProductDetail, headers(("ETag" = String, description = "For the public view (signed out or buyer)"))),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    MaybeUser(caller): MaybeUser,
    AppPath(id): AppPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response> {
    // Signed-out callers and buyers all see the same public view: served from its cached bytes.
    // Sellers and admins may see the stock counters of their own products: built per caller.
    if caller.as_ref().is_none_or(|c| c.role == Role::Buyer) {
        let public = service::public_detail(&state, id).await?;
        return Ok(respond_with_etag(&headers, public));
    }
    let mut resp = Json(service::detail(&state, id, caller.as_ref()).await?).into_response();
    // This answer may hold the stock counters of the caller's own product: no shared cache.
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Authorization"));
    Ok(resp)
}

/// 304 when the client already holds these bytes (`If-None-Match`, weak comparison as RFC 9110
/// asks for it), else the bytes; the ETag either way. `no-cache`: a client may keep the answer but
/// must revalidate it, since a seller's change shows at once.
fn respond_with_etag(headers: &HeaderMap, public: service::PublicDetail) -> Response {
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == public.etag);
    let etag = HeaderValue::from_str(&public.etag).ok();
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            public.body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Some(etag) = etag {
        h.insert(header::ETAG, etag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // A seller or admin asking for the same URL gets another answer (with stock counters).
    h.insert(header::VARY, HeaderValue::from_static("Authorization"));
    resp
}

#[utoipa::path(get, path = "/api/v1/products/slug/{slug}", params(("slug" = String, Path)), tag = "products",
    responses((status = 200, body = ProductDetail), (status = 404, body = ErrorBody)))]
pub async fn get_by_slug(
    State(state): State<AppState>,
    MaybeUser(caller): MaybeUser,
    AppPath(slug): AppPath<String>,
) -> Result<Json<ProductDetail>> {
    Ok(Json(
        service::detail_by_slug(&state, &slug, caller.as_ref()).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/products/{id}", params(("id" = Uuid, Path)), tag = "products", security(("bearer" = [])), request_body = UpdateProduct,
    responses((status = 200, body = ProductDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<UpdateProduct>,
) -> Result<Json<ProductDetail>> {
    Ok(Json(service::update(&state, &caller, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/products/{id}", params(("id" = Uuid, Path)), tag = "products", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode> {
    service::delete(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/products/{id}/skus", params(("id" = Uuid, Path)), tag = "skus", security(("bearer" = [])), request_body = CreateSku,
    responses((status = 201, body = Sku), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_sku(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<CreateSku>,
) -> Result<(StatusCode, Json<Sku>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::create_sku(&state, &caller, id, req).await?),
    ))
}

#[utoipa::path(patch, path = "/api/v1/skus/{id}", params(("id" = Uuid, Path)), tag = "skus", security(("bearer" = [])), request_body = UpdateSku,
    responses((status = 200, body = Sku), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_sku(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<UpdateSku>,
) -> Result<Json<Sku>> {
    Ok(Json(service::update_sku(&state, &caller, id, req).await?))
}

#[utoipa::path(post, path = "/api/v1/skus/{id}/stock", params(("id" = Uuid, Path)), tag = "skus", security(("bearer" = [])), request_body = StockChange,
    responses((status = 200, body = Sku), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_stock(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<StockChange>,
) -> Result<Json<Sku>> {
    Ok(Json(service::change_stock(&state, &caller, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/skus/{id}", params(("id" = Uuid, Path)), tag = "skus", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_sku(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode> {
    service::delete_sku(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/skus", tag = "skus", params(SkuIdsQuery),
    responses((status = 200, body = SkuLookupList), (status = 422, body = ErrorBody)))]
pub async fn lookup(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<SkuIdsQuery>,
) -> Result<Json<SkuLookupList>> {
    Ok(Json(service::lookup(&state, &q.ids).await?))
}

#[utoipa::path(post, path = "/api/v1/products/{id}/images", params(("id" = Uuid, Path)), tag = "images", security(("bearer" = [])), request_body = CreateImage,
    responses((status = 201, body = Image), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_image(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<CreateImage>,
) -> Result<(StatusCode, Json<Image>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::add_image(&state, &caller, id, req).await?),
    ))
}

#[utoipa::path(patch, path = "/api/v1/products/{id}/images/{image_id}", params(("id" = Uuid, Path), ("image_id" = Uuid, Path)), tag = "images", security(("bearer" = [])), request_body = UpdateImage,
    responses((status = 200, body = Image), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_image(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath((id, image_id)): AppPath<(Uuid, Uuid)>,
    AppJson(req): AppJson<UpdateImage>,
) -> Result<Json<Image>> {
    Ok(Json(
        service::update_image(&state, &caller, id, image_id, req).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/products/{id}/images/{image_id}", params(("id" = Uuid, Path), ("image_id" = Uuid, Path)), tag = "images", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_image(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath((id, image_id)): AppPath<(Uuid, Uuid)>,
) -> Result<StatusCode> {
    service::delete_image(&state, &caller, id, image_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
