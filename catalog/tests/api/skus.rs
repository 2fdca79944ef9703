//! SKUs: prices, codes, currencies, stock adjustments, and the batch lookup.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, Caller, TestApp};

#[tokio::test]
async fn a_new_sku_reports_its_price_stock_and_availability() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let p = app.product(&seller, json!({"name": "Shirt"})).await;
    let id = p["id"].as_str().unwrap();
    let resp = app
        .post_auth(
            &format!("/api/v1/products/{id}/skus"),
            &seller.token,
            json!({"sku_code": "SHIRT-M", "price": "19.9", "currency": "USD",
                   "stock_quantity": 12, "attributes": {"size": "M"}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let sku: Value = resp.json().await.unwrap();
    assert_eq!(sku["price"], "19.90");
    assert_eq!(sku["currency"], "USD");
    assert_eq!(sku["stock_quantity"], 12);
    assert_eq!(sku["reserved_quantity"], 0);
    assert_eq!(sku["available"], 12);
    assert_eq!(sku["attributes"]["size"], "M");
    assert_eq!(sku["status"], "active");
}

#[tokio::test]
async fn bad_prices_codes_and_stock_are_422() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let p = app.product(&seller, json!({"name": "Shoe"})).await;
    let path = format!("/api/v1/products/{}/skus", p["id"].as_str().unwrap());
    let cases = [
        (
            json!({"sku_code": "A1", "price": "abc", "currency": "USD", "stock_quantity": 1}),
            "price",
        ),
        (
            json!({"sku_code": "A1", "price": "-5", "currency": "USD", "stock_quantity": 1}),
            "price",
        ),
        (
            json!({"sku_code": "A1", "price": "0", "currency": "USD", "stock_quantity": 1}),
            "price",
        ),
        (
            json!({"sku_code": "A1", "price": "1.999", "currency": "USD", "stock_quantity": 1}),
            "price",
        ),
        (
            json!({"sku_code": "A1", "price": "100.5", "currency": "KRW", "stock_quantity": 1}),
            "price",
        ),
        (
            json!({"sku_code": "A1", "price": "1.00", "currency": "usd", "stock_quantity": 1}),
            "currency",
        ),
        (
            json!({"sku_code": "has space", "price": "1.00", "currency": "USD", "stock_quantity": 1}),
            "sku_code",
        ),
        (
            json!({"sku_code": "A1", "price": "1.00", "currency": "USD", "stock_quantity": -1}),
            "stock_quantity",
        ),
        (
            json!({"sku_code": "A1", "price": "1.00", "currency": "USD", "stock_quantity": 1, "attributes": [1]}),
            "attributes",
        ),
    ];
    for (body, field) in cases {
        let resp = app.post_auth(&path, &seller.token, body.clone()).await;
        let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(
            err["error"]["details"]["fields"][0]["field"], field,
            "{body}"
        );
    }
    // A float where a decimal string is expected is a malformed body, not a silent rounding.
    let resp = app
        .post_auth(
            &path,
            &seller.token,
            json!({"sku_code": "A1", "price": 1.5, "currency": "USD", "stock_quantity": 1}),
        )
        .await;
    assert!(resp.status().is_client_error());
    let detail: Value = app
        .get_auth(
            &format!("/api/v1/products/{}", p["id"].as_str().unwrap()),
            &seller.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        detail["skus"].as_array().unwrap().is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn sku_codes_are_unique_and_a_product_sells_in_one_currency() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let p = app.product(&seller, json!({"name": "Hat"})).await;
    let id = p["id"].as_str().unwrap();
    app.sku(&seller, id, "HAT-1", "10.00", 1).await;
    let path = format!("/api/v1/products/{id}/skus");
    assert_error(
        app.post_auth(
            &path,
            &seller.token,
            json!({"sku_code": "HAT-1", "price": "11.00", "currency": "USD", "stock_quantity": 1}),
        )
        .await,
        StatusCode::CONFLICT,
        "SKU_CODE_TAKEN",
    )
    .await;
    let err = assert_error(
        app.post_auth(
            &path,
            &seller.token,
            json!({"sku_code": "HAT-2", "price": "11.00", "currency": "EUR", "stock_quantity": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(err["error"]["details"]["fields"][0]["field"], "currency");
}

#[tokio::test]
async fn stock_moves_by_delta_or_set_but_never_below_zero_or_reserved() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Pen", "2.00", 10).await;
    let stock = format!("/api/v1/skus/{sku}/stock");
    let resp = app
        .post_auth(&stock, &seller.token, json!({"delta": 5}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["stock_quantity"], 15);
    let resp = app
        .post_auth(&stock, &seller.token, json!({"delta": -3}))
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["stock_quantity"], 12);
    let resp = app
        .post_auth(&stock, &seller.token, json!({"set": 8}))
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["available"], 8);

    assert_error(
        app.post_auth(&stock, &seller.token, json!({"delta": -9}))
            .await,
        StatusCode::CONFLICT,
        "STOCK_BELOW_RESERVED",
    )
    .await;
    assert_error(
        app.post_auth(&stock, &seller.token, json!({"set": -1}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.post_auth(&stock, &seller.token, json!({"delta": 1, "set": 2}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.post_auth(&stock, &seller.token, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;

    // Hold 6 of the 8 for an order: stock can drop to 6 but not to 5.
    let order = uuid::Uuid::now_v7();
    app.handle(&crate::helpers::order_created(order, &[(&sku, 6, "2.00")]))
        .await;
    let err = assert_error(
        app.post_auth(&stock, &seller.token, json!({"set": 5}))
            .await,
        StatusCode::CONFLICT,
        "STOCK_BELOW_RESERVED",
    )
    .await;
    assert_eq!(err["error"]["details"]["reserved_quantity"], 6);
    let resp = app
        .post_auth(&stock, &seller.token, json!({"set": 6}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["available"], 0);
    assert_eq!(app.sku_row(&sku).await, (6, 6, 0));
    assert_eq!(app.audit().await["consistent"], true);
}

#[tokio::test]
async fn price_and_status_changes_show_in_the_product_price_from() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (id, cheap) = app.listed(&seller, "Bag", "30.00", 5).await;
    let dear = app.sku(&seller, &id, "BAG-L", "45.00", 5).await;
    let detail = |app: &TestApp| {
        let path = format!("/api/v1/products/{id}");
        let client = app.client.clone();
        let url = app.url(&path);
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(detail(&app).await["min_price"], "30.00");
    let resp = app
        .patch_auth(
            &format!("/api/v1/skus/{cheap}"),
            &seller.token,
            json!({"status": "inactive"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(detail(&app).await["min_price"], "45.00");
    let resp = app
        .patch_auth(
            &format!("/api/v1/skus/{}", dear["id"].as_str().unwrap()),
            &seller.token,
            json!({"price": "40.00", "attributes": {"size": "L"}}),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["price"], "40.00");
    assert_eq!(body["attributes"]["size"], "L");
    assert_eq!(detail(&app).await["min_price"], "40.00");
    assert_error(
        app.patch_auth(
            &format!("/api/v1/skus/{cheap}"),
            &seller.token,
            json!({"price": "1.001"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
}

#[tokio::test]
async fn a_sku_with_held_units_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (id, sku) = app.listed(&seller, "Cup", "5.00", 4).await;
    let order = uuid::Uuid::now_v7();
    app.handle(&crate::helpers::order_created(order, &[(&sku, 1, "5.00")]))
        .await;
    assert_error(
        app.delete_auth(&format!("/api/v1/skus/{sku}"), &seller.token)
            .await,
        StatusCode::CONFLICT,
        "SKU_HAS_RESERVATIONS",
    )
    .await;
    app.handle(&crate::helpers::order_cancelled(
        order,
        &[(&sku, 1)],
        "pending",
    ))
    .await;
    assert_eq!(
        app.delete_auth(&format!("/api/v1/skus/{sku}"), &seller.token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let detail: Value = app
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(detail["skus"].as_array().unwrap().is_empty());
    assert!(detail["min_price"].is_null());
    assert_error(
        app.delete_auth(&format!("/api/v1/skus/{sku}"), &seller.token)
            .await,
        StatusCode::NOT_FOUND,
        "SKU_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn the_batch_lookup_answers_price_seller_status_and_availability() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (product, a) = app.listed(&seller, "Tea", "4.50", 9).await;
    let b = app.sku(&seller, &product, "TEA-BIG", "8.00", 2).await;
    let b = b["id"].as_str().unwrap().to_owned();
    app.patch_auth(
        &format!("/api/v1/skus/{b}"),
        &seller.token,
        json!({"status": "inactive"}),
    )
    .await;
    let draft = app.product(&seller, json!({"name": "Hidden"})).await;
    let hidden = app
        .sku(&seller, draft["id"].as_str().unwrap(), "HID-1", "1.00", 1)
        .await;
    let unknown = uuid::Uuid::now_v7();
    let resp = app
        .get(&format!(
            "/api/v1/skus?ids={a},{b},{},{unknown}",
            hidden["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "draft and unknown SKUs are absent: {body}");
    let by_id = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    let ia = by_id(&a);
    assert_eq!(ia["price"], "4.50");
    assert_eq!(ia["currency"], "USD");
    assert_eq!(ia["seller_id"], seller.id.to_string());
    assert_eq!(ia["product_id"], product);
    assert_eq!(ia["product_name"], "Tea");
    assert_eq!(ia["status"], "active");
    assert_eq!(ia["available"], 9);
    assert_eq!(by_id(&b)["status"], "inactive");

    assert_error(
        app.get("/api/v1/skus?ids=nope").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    assert_error(
        app.get(&format!("/api/v1/skus?ids={}", many.join(",")))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let resp = app.get("/api/v1/skus").await;
    assert!(resp.status().is_client_error());
}

/// Every product, SKU and image row of the test's database, as one JSON text.
async fn catalog_rows(app: &TestApp) -> String {
    sqlx::query_scalar(
        "SELECT json_build_array(
             (SELECT coalesce(json_agg(p ORDER BY p.id), '[]') FROM products p),
             (SELECT coalesce(json_agg(s ORDER BY s.id), '[]') FROM skus s),
             (SELECT coalesce(json_agg(i ORDER BY i.id), '[]') FROM product_images i))::text",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap()
}

/// SKU and image writes check the owner of the product the SKU or the path names: a stranger
/// seller is refused (403 on a live product, 404 on one the public cannot see), and an image id
/// is only looked for under the product in the path, whoever owns that one.
#[tokio::test]
async fn strangers_cannot_write_another_sellers_skus_or_images() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let owner = Caller::seller();
    let stranger = Caller::seller();
    let image = |seller: Caller, product: String| {
        let app = &app;
        async move {
            let resp = app
                .post_auth(
                    &format!("/api/v1/products/{product}/images"),
                    &seller.token,
                    json!({"url": "https://img.example/lamp.png"}),
                )
                .await;
            assert_eq!(resp.status(), StatusCode::CREATED);
            let body: Value = resp.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let (live, live_sku) = app.listed(&owner, "Lamp", "10.00", 4).await;
    let live_image = image(owner.clone(), live.clone()).await;
    let draft = app.product(&owner, json!({"name": "Secret lamp"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let draft_sku = app.sku(&owner, &draft, "SECRET-1", "10.00", 2).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let draft_image = image(owner.clone(), draft.clone()).await;
    let (other, _) = app.listed(&owner, "Other lamp", "11.00", 1).await;
    let other_image = image(owner.clone(), other.clone()).await;
    let (own, _) = app.listed(&stranger, "Stranger lamp", "9.00", 1).await;
    let before = catalog_rows(&app).await;

    let new_sku = json!({"sku_code": "HIJACK-1", "price": "1.00", "currency": "USD",
                         "stock_quantity": 1});
    let sku_change = json!({"price": "0.01", "status": "inactive"});
    let image_change = json!({"alt_text": "mine now", "sort_order": 9, "is_primary": true});
    let (forbidden, not_found) = (StatusCode::FORBIDDEN, StatusCode::NOT_FOUND);
    let cases = vec![
        (
            Method::POST,
            format!("/api/v1/products/{live}/skus"),
            &stranger,
            Some(&new_sku),
            forbidden,
            "NOT_PRODUCT_OWNER",
        ),
        (
            Method::POST,
            format!("/api/v1/products/{draft}/skus"),
            &stranger,
            Some(&new_sku),
            not_found,
            "PRODUCT_NOT_FOUND",
        ),
        (
            Method::PATCH,
            format!("/api/v1/skus/{live_sku}"),
            &stranger,
            Some(&sku_change),
            forbidden,
            "NOT_PRODUCT_OWNER",
        ),
        (
            Method::DELETE,
            format!("/api/v1/skus/{live_sku}"),
            &stranger,
            None,
            forbidden,
            "NOT_PRODUCT_OWNER",
        ),
        (
            Method::PATCH,
            format!("/api/v1/skus/{draft_sku}"),
            &stranger,
            Some(&sku_change),
            not_found,
            "SKU_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/v1/skus/{draft_sku}"),
            &stranger,
            None,
            not_found,
            "SKU_NOT_FOUND",
        ),
        (
            Method::PATCH,
            format!("/api/v1/products/{live}/images/{live_image}"),
            &stranger,
            Some(&image_change),
            forbidden,
            "NOT_PRODUCT_OWNER",
        ),
        (
            Method::DELETE,
            format!("/api/v1/products/{live}/images/{live_image}"),
            &stranger,
            None,
            forbidden,
            "NOT_PRODUCT_OWNER",
        ),
        (
            Method::PATCH,
            format!("/api/v1/products/{draft}/images/{draft_image}"),
            &stranger,
            Some(&image_change),
            not_found,
            "PRODUCT_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/v1/products/{draft}/images/{draft_image}"),
            &stranger,
            None,
            not_found,
            "PRODUCT_NOT_FOUND",
        ),
        // The stranger's own product in the path, the owner's image id.
        (
            Method::PATCH,
            format!("/api/v1/products/{own}/images/{live_image}"),
            &stranger,
            Some(&image_change),
            not_found,
            "IMAGE_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/v1/products/{own}/images/{live_image}"),
            &stranger,
            None,
            not_found,
            "IMAGE_NOT_FOUND",
        ),
        // The owner, naming an image of their other product under this one.
        (
            Method::PATCH,
            format!("/api/v1/products/{live}/images/{other_image}"),
            &owner,
            Some(&image_change),
            not_found,
            "IMAGE_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/v1/products/{live}/images/{other_image}"),
            &owner,
            None,
            not_found,
            "IMAGE_NOT_FOUND",
        ),
    ];
    for (method, path, caller, body, status, code) in cases {
        let resp = app
            .send(method.clone(), &path, Some(&caller.token), body)
            .await;
        assert_eq!(resp.status(), status, "{method} {path}");
        assert_error(resp, status, code).await;
    }
    assert_eq!(catalog_rows(&app).await, before, "nothing changed");
}
