//! Products: creation, visibility, ownership, the lifecycle, deletion, slugs, images.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, Caller, TestApp};

#[tokio::test]
async fn a_seller_creates_a_draft_that_only_they_and_admins_can_see() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let p = app
        .product(
            &seller,
            json!({"name": "Blue Mug", "description": "holds tea"}),
        )
        .await;
    assert_eq!(p["status"], "draft");
    assert_eq!(p["slug"], "blue-mug");
    assert_eq!(p["seller_id"], seller.id.to_string());
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());

    assert_error(
        app.get(&path).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    let stranger = Caller::seller();
    assert_error(
        app.get_auth(&path, &stranger.token).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_eq!(
        app.get_auth(&path, &seller.token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_auth(&path, &app.admin).await.status(),
        StatusCode::OK
    );

    app.activate(&seller, p["id"].as_str().unwrap()).await;
    let public: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(public["status"], "active");
    assert_eq!(public["name"], "Blue Mug");
}

#[tokio::test]
async fn buyers_and_anonymous_callers_cannot_create_products() {
    let app = TestApp::spawn().await;
    let buyer = Caller::buyer();
    assert_error(
        app.post_auth("/api/v1/products", &buyer.token, json!({"name": "x"}))
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let resp = app
        .client
        .post(app.url("/api/v1/products"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .get_auth("/api/v1/products/seller/me", "not-a-token")
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn invalid_products_are_refused_with_the_fields_named() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let body = assert_error(
        app.post_auth(
            "/api/v1/products",
            &seller.token,
            json!({"name": "  ", "slug": "Not A Slug"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"slug"),
        "{body}"
    );

    let body = assert_error(
        app.post_auth(
            "/api/v1/products",
            &seller.token,
            json!({"name": "Mug", "category_id": uuid::Uuid::now_v7()}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(
        body["error"]["details"]["fields"][0]["field"],
        "category_id"
    );

    // A NUL cannot be stored by Postgres: it is a 422, not a 500.
    assert_error(
        app.post_auth(
            "/api/v1/products",
            &seller.token,
            json!({"name": "Mug\u{0}"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.get("/api/v1/products?q=mug%00").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;

    let resp = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&seller.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn slugs_are_unique_among_live_products_and_generated_ones_step_aside() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let first = app.product(&seller, json!({"name": "Lamp"})).await;
    let second = app.product(&seller, json!({"name": "Lamp"})).await;
    assert_eq!(first["slug"], "lamp");
    assert_ne!(second["slug"], "lamp");
    assert!(second["slug"].as_str().unwrap().starts_with("lamp-"));

    assert_error(
        app.post_auth(
            "/api/v1/products",
            &seller.token,
            json!({"name": "Other", "slug": "lamp"}),
        )
        .await,
        StatusCode::CONFLICT,
        "SLUG_TAKEN",
    )
    .await;

    // Deleting the product frees its slug.
    let resp = app
        .delete_auth(
            &format!("/api/v1/products/{}", first["id"].as_str().unwrap()),
            &seller.token,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let again = app
        .product(&seller, json!({"name": "Other", "slug": "lamp"}))
        .await;
    assert_eq!(again["slug"], "lamp");
}

#[tokio::test]
async fn the_lifecycle_allows_only_its_transitions() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let p = app.product(&seller, json!({"name": "Chair"})).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    let set = |status: &'static str| {
        let app = &app;
        let path = path.clone();
        let token = seller.token.clone();
        async move {
            app.patch_auth(&path, &token, json!({"status": status}))
                .await
        }
    };
    assert_error(
        set("inactive").await,
        StatusCode::CONFLICT,
        "INVALID_STATUS_TRANSITION",
    )
    .await;
    assert_eq!(set("active").await.status(), StatusCode::OK);
    assert_eq!(set("inactive").await.status(), StatusCode::OK);
    assert_eq!(set("active").await.status(), StatusCode::OK);
    assert_eq!(set("archived").await.status(), StatusCode::OK);
    assert_error(
        set("active").await,
        StatusCode::CONFLICT,
        "INVALID_STATUS_TRANSITION",
    )
    .await;
    assert_error(
        set("draft").await,
        StatusCode::CONFLICT,
        "INVALID_STATUS_TRANSITION",
    )
    .await;
    let resp = app
        .patch_auth(&path, &seller.token, json!({"status": "deleted"}))
        .await;
    assert!(resp.status().is_client_error());
}

#[tokio::test]
async fn only_the_owner_or_an_admin_changes_a_product() {
    let app = TestApp::spawn().await;
    let owner = Caller::seller();
    let stranger = Caller::seller();
    let (live, sku) = app.listed(&owner, "Desk", "99.00", 3).await;
    let draft = app.product(&owner, json!({"name": "Secret"})).await;
    let draft_path = format!("/api/v1/products/{}", draft["id"].as_str().unwrap());
    let live_path = format!("/api/v1/products/{live}");

    assert_error(
        app.patch_auth(&live_path, &stranger.token, json!({"name": "Mine"}))
            .await,
        StatusCode::FORBIDDEN,
        "NOT_PRODUCT_OWNER",
    )
    .await;
    assert_error(
        app.patch_auth(&draft_path, &stranger.token, json!({"name": "Mine"}))
            .await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_error(
        app.delete_auth(&live_path, &stranger.token).await,
        StatusCode::FORBIDDEN,
        "NOT_PRODUCT_OWNER",
    )
    .await;
    assert_error(
        app.post_auth(
            &format!("/api/v1/skus/{sku}/stock"),
            &stranger.token,
            json!({"delta": 5}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "NOT_PRODUCT_OWNER",
    )
    .await;
    assert_error(
        app.post_auth(
            &format!("{live_path}/images"),
            &stranger.token,
            json!({"url": "https://img.example/x.png"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "NOT_PRODUCT_OWNER",
    )
    .await;
    // Nothing changed.
    let detail: Value = app.get(&live_path).await.json().await.unwrap();
    assert_eq!(detail["name"], "Desk");
    assert_eq!(detail["skus"][0]["available"], 3);
    assert!(detail["images"].as_array().unwrap().is_empty());

    let resp = app
        .patch_auth(&live_path, &app.admin, json!({"name": "Desk (moderated)"}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "Desk (moderated)");
}

#[tokio::test]
async fn a_deleted_product_is_gone_for_everyone() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (id, _) = app.listed(&seller, "Vase", "10.00", 1).await;
    let path = format!("/api/v1/products/{id}");
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
    assert_eq!(
        app.delete_auth(&path, &seller.token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get(&path).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_auth(&path, &seller.token).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_error(
        app.delete_auth(&path, &seller.token).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    let listing: Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert!(listing["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_product_is_found_by_slug_with_its_skus_and_images() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (id, sku) = app.listed(&seller, "Green Kettle", "24.50", 7).await;
    let resp = app
        .post_auth(
            &format!("/api/v1/products/{id}/images"),
            &seller.token,
            json!({"url": "https://img.example/kettle.png", "alt_text": "a kettle"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = app
        .get("/api/v1/products/slug/green-kettle")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["skus"][0]["id"], sku);
    assert_eq!(body["skus"][0]["price"], "24.50");
    assert_eq!(body["skus"][0]["available"], 7);
    assert_eq!(body["images"][0]["is_primary"], true);
    assert_eq!(body["min_price"], "24.50");
    assert_error(
        app.get("/api/v1/products/slug/Not%20a%00slug").await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get("/api/v1/products/slug/no-such-thing").await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn sellers_page_through_their_own_products_of_every_status() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let other = Caller::seller();
    let mut mine = Vec::new();
    for i in 0..5 {
        let p = app
            .product(&seller, json!({"name": format!("Item {i}")}))
            .await;
        mine.push(p["id"].as_str().unwrap().to_owned());
    }
    app.activate(&seller, &mine[0]).await;
    app.product(&other, json!({"name": "Not mine"})).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/products/seller/me?limit=2&cursor={c}"),
            None => "/api/v1/products/seller/me?limit=2".into(),
        };
        let page: Value = app
            .get_auth(&path, &seller.token)
            .await
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected = mine.clone();
    expected.reverse(); // newest first
    assert_eq!(seen, expected);

    let drafts: Value = app
        .get_auth("/api/v1/products/seller/me?status=draft", &seller.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(drafts["items"].as_array().unwrap().len(), 4);
    assert_error(
        app.get_auth("/api/v1/products/seller/me", &Caller::buyer().token)
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
}

#[tokio::test]
async fn images_keep_exactly_one_primary() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (id, _) = app.listed(&seller, "Rug", "80.00", 2).await;
    let images = format!("/api/v1/products/{id}/images");
    let add = |url: &'static str, primary: bool| {
        let app = &app;
        let images = images.clone();
        let token = seller.token.clone();
        async move {
            let resp = app
                .post_auth(&images, &token, json!({"url": url, "is_primary": primary}))
                .await;
            assert_eq!(resp.status(), StatusCode::CREATED);
            resp.json::<Value>().await.unwrap()
        }
    };
    let a = add("https://img.example/a.png", false).await;
    assert_eq!(a["is_primary"], true, "the first image is primary");
    let b = add("https://img.example/b.png", true).await;
    assert_eq!(b["is_primary"], true);
    let c = add("https://img.example/c.png", false).await;
    assert_eq!(c["is_primary"], false);

    let primaries = |detail: &Value| -> Vec<String> {
        detail["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["is_primary"] == true)
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let detail: Value = app
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        primaries(&detail),
        vec![b["id"].as_str().unwrap().to_owned()]
    );

    // Choosing another primary, then deleting it, promotes the first by sort order.
    let resp = app
        .patch_auth(
            &format!("{images}/{}", c["id"].as_str().unwrap()),
            &seller.token,
            json!({"is_primary": true, "alt_text": "the c one"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .delete_auth(
            &format!("{images}/{}", c["id"].as_str().unwrap()),
            &seller.token,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let detail: Value = app
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        primaries(&detail),
        vec![a["id"].as_str().unwrap().to_owned()]
    );
    assert_eq!(detail["images"].as_array().unwrap().len(), 2);

    assert_error(
        app.post_auth(
            &images,
            &seller.token,
            json!({"url": "javascript:alert(1)"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.delete_auth(&format!("{images}/{}", uuid::Uuid::now_v7()), &seller.token)
            .await,
        StatusCode::NOT_FOUND,
        "IMAGE_NOT_FOUND",
    )
    .await;
}
