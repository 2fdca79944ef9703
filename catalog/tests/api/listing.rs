//! The public listing: what is listed, each filter, and keyset pagination under every sort.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, Caller, TestApp};

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let resp = app.get(&format!("/api/v1/products?{query}")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{query}");
    let body: Value = resp.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of `query` with `limit`, following cursors.
async fn all_pages(app: &TestApp, query: &str, limit: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let q = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={c}"),
            None => format!("{query}&limit={limit}"),
        };
        let body: Value = app
            .get(&format!("/api/v1/products?{q}"))
            .await
            .json()
            .await
            .unwrap();
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        out.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

#[tokio::test]
async fn only_active_products_with_an_active_sku_are_listed() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (listed, _) = app.listed(&seller, "Listed", "5.00", 1).await;
    app.product(&seller, json!({"name": "Draft"})).await;
    let no_sku = app.product(&seller, json!({"name": "No SKU"})).await;
    app.activate(&seller, no_sku["id"].as_str().unwrap()).await;
    let (paused, _) = app.listed(&seller, "Paused", "5.00", 1).await;
    app.patch_auth(
        &format!("/api/v1/products/{paused}"),
        &seller.token,
        json!({"status": "inactive"}),
    )
    .await;
    let (_, off_sku) = app.listed(&seller, "SKU off", "5.00", 1).await;
    app.patch_auth(
        &format!("/api/v1/skus/{off_sku}"),
        &seller.token,
        json!({"status": "inactive"}),
    )
    .await;
    assert_eq!(ids(&app, "").await, vec![listed.clone()]);
    let body: Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(body["items"][0]["min_price"], "5.00");
    assert_eq!(body["items"][0]["currency"], "USD");
    assert!(body["next_cursor"].is_null());
}

#[tokio::test]
async fn filters_narrow_by_category_subtree_brand_seller_price_and_text() {
    let app = TestApp::spawn().await;
    let alice = Caller::seller();
    let bob = Caller::seller();
    let home = app.admin_category("Home", None).await;
    let kitchen = app.admin_category("Kitchen", Some(&home)).await;
    let garden = app.admin_category("Garden", None).await;
    let brand: Value = app
        .post_auth("/api/v1/brands", &app.admin, json!({"name": "Acme"}))
        .await
        .json()
        .await
        .unwrap();
    let brand = brand["id"].as_str().unwrap().to_owned();

    let mk = |seller: &Caller,
              name: &'static str,
              price: &'static str,
              cat: &str,
              brand: Option<&str>| {
        let app = &app;
        let seller = seller.clone();
        let body = json!({"name": name, "description": format!("{name} for the house"), "category_id": cat, "brand_id": brand});
        async move {
            let p = app.product(&seller, body).await;
            let id = p["id"].as_str().unwrap().to_owned();
            let code = format!("C-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
            app.sku(&seller, &id, &code, price, 3).await;
            app.activate(&seller, &id).await;
            id
        }
    };
    let kettle = mk(&alice, "Steel Kettle", "30.00", &kitchen, Some(&brand)).await;
    let rug = mk(&alice, "Wool Rug", "120.00", &home, None).await;
    let hose = mk(&bob, "Garden Hose", "15.50", &garden, Some(&brand)).await;

    let mut home_items = ids(&app, &format!("category_id={home}")).await;
    home_items.sort();
    let mut expected = vec![kettle.clone(), rug.clone()];
    expected.sort();
    assert_eq!(home_items, expected, "a category includes its subtree");
    assert_eq!(
        ids(&app, &format!("category_id={kitchen}")).await,
        vec![kettle.clone()]
    );
    assert_eq!(
        ids(&app, &format!("brand_id={brand}&sort=price_asc")).await,
        vec![hose.clone(), kettle.clone()]
    );
    assert_eq!(
        ids(&app, &format!("seller_id={}", bob.id)).await,
        vec![hose.clone()]
    );
    assert_eq!(
        ids(&app, "min_price=20&max_price=100").await,
        vec![kettle.clone()]
    );
    assert_eq!(ids(&app, "min_price=120.00").await, vec![rug.clone()]);
    assert_eq!(
        ids(&app, "q=kettle").await,
        vec![kettle.clone()],
        "a whole word"
    );
    assert_eq!(
        ids(&app, "q=ose").await,
        vec![hose.clone()],
        "part of a name"
    );
    assert_eq!(
        ids(&app, "q=house&sort=name").await,
        vec![hose.clone(), kettle.clone(), rug.clone()],
        "description words"
    );
    assert!(
        ids(&app, "q=100%25").await.is_empty(),
        "wildcards are literal"
    );
    assert!(ids(&app, &format!("category_id={}", uuid::Uuid::now_v7()))
        .await
        .is_empty());
}

#[tokio::test]
async fn pagination_is_exact_under_every_sort_including_ties() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    // Ties on price and on name, so the id tie-break matters.
    let specs = [
        ("Banana", "3.00"),
        ("apple", "5.00"),
        ("Cherry", "3.00"),
        ("banana", "7.25"),
        ("Date", "5.00"),
        ("Elder", "1.10"),
        ("Fig", "5.00"),
    ];
    let mut made = Vec::new();
    for (name, price) in specs {
        let (id, _) = app.listed(&seller, name, price, 1).await;
        made.push((id, name.to_lowercase(), price.parse::<f64>().unwrap()));
    }
    let mut newest: Vec<_> = made.iter().map(|m| m.0.clone()).collect();
    newest.reverse();
    let mut by_price = made.clone();
    by_price.sort_by(|a, b| a.2.partial_cmp(&b.2).unwrap().then(a.0.cmp(&b.0)));
    let price_asc: Vec<String> = by_price.iter().map(|m| m.0.clone()).collect();
    let mut price_desc = price_asc.clone();
    price_desc.reverse();
    let mut by_name = made.clone();
    by_name.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let name: Vec<String> = by_name.iter().map(|m| m.0.clone()).collect();

    for limit in [1, 2, 3, 7, 100] {
        assert_eq!(
            all_pages(&app, "sort=newest", limit).await,
            newest,
            "newest/{limit}"
        );
        assert_eq!(
            all_pages(&app, "sort=price_asc", limit).await,
            price_asc,
            "price_asc/{limit}"
        );
        assert_eq!(
            all_pages(&app, "sort=price_desc", limit).await,
            price_desc,
            "price_desc/{limit}"
        );
        assert_eq!(
            all_pages(&app, "sort=name", limit).await,
            name,
            "name/{limit}"
        );
    }
}

#[tokio::test]
async fn bad_listing_parameters_are_client_errors() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    app.listed(&seller, "One", "1.00", 1).await;
    app.listed(&seller, "Two", "2.00", 1).await;
    let body: Value = app
        .get("/api/v1/products?sort=price_asc&limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = body["next_cursor"].as_str().unwrap();
    assert_error(
        app.get(&format!("/api/v1/products?sort=name&cursor={cursor}"))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_CURSOR",
    )
    .await;
    assert_error(
        app.get("/api/v1/products?cursor=garbage").await,
        StatusCode::BAD_REQUEST,
        "INVALID_CURSOR",
    )
    .await;
    assert_error(
        app.get("/api/v1/products?limit=101").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.get("/api/v1/products?min_price=5&max_price=1").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.get("/api/v1/products?min_price=cheap").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let resp = app.get("/api/v1/products?sort=random").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app.get("/api/v1/products?category_id=not-a-uuid").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
