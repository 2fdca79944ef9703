//! The category tree: reads, moves and deletes with their guards, admin-only writes.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, Caller, TestApp};

fn names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_tree_answers_children_subtree_and_ancestors() {
    let app = TestApp::spawn().await;
    let home = app.admin_category("Home", None).await;
    let kitchen = app.admin_category("Kitchen", Some(&home)).await;
    let garden = app.admin_category("Garden", Some(&home)).await;
    let knives = app.admin_category("Knives", Some(&kitchen)).await;

    let children: Value = app
        .get(&format!("/api/v1/categories/{home}/children"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&children), ["Garden", "Kitchen"]);
    let subtree: Value = app
        .get(&format!("/api/v1/categories/{home}/subtree"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&subtree), ["Home", "Garden", "Kitchen", "Knives"]);
    assert_eq!(subtree["items"][3]["depth"], 2);
    let ancestors: Value = app
        .get(&format!("/api/v1/categories/{knives}/ancestors"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&ancestors), ["Home", "Kitchen"]);
    let one: Value = app
        .get(&format!("/api/v1/categories/{garden}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["slug"], "garden");
    assert_eq!(one["parent_id"], home);
    let all: Value = app
        .get("/api/v1/categories?limit=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert!(all["next_cursor"].is_string());
    assert_error(
        app.get(&format!(
            "/api/v1/categories/{}/subtree",
            uuid::Uuid::now_v7()
        ))
        .await,
        StatusCode::NOT_FOUND,
        "CATEGORY_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn a_category_cannot_move_under_itself_or_its_descendants() {
    let app = TestApp::spawn().await;
    let a = app.admin_category("A", None).await;
    let b = app.admin_category("B", Some(&a)).await;
    let c = app.admin_category("C", Some(&b)).await;
    for target in [&a, &c] {
        assert_error(
            app.patch_auth(
                &format!("/api/v1/categories/{a}"),
                &app.admin,
                json!({"parent_id": target}),
            )
            .await,
            StatusCode::CONFLICT,
            "CATEGORY_CYCLE",
        )
        .await;
    }
    // A legal move: C to the root, then A under C.
    let resp = app
        .patch_auth(
            &format!("/api/v1/categories/{c}"),
            &app.admin,
            json!({"parent_id": null}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .patch_auth(
            &format!("/api/v1/categories/{a}"),
            &app.admin,
            json!({"parent_id": c, "name": "A2"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ancestors: Value = app
        .get(&format!("/api/v1/categories/{b}/ancestors"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&ancestors), ["C", "A2"]);
}

#[tokio::test]
async fn concurrent_opposite_moves_never_make_a_cycle() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        let x = app
            .admin_category(&format!("X {}", uuid::Uuid::now_v7()), None)
            .await;
        let y = app
            .admin_category(&format!("Y {}", uuid::Uuid::now_v7()), None)
            .await;
        let (px, py) = (
            format!("/api/v1/categories/{x}"),
            format!("/api/v1/categories/{y}"),
        );
        let (r1, r2) = tokio::join!(
            app.patch_auth(&px, &app.admin, json!({"parent_id": y})),
            app.patch_auth(&py, &app.admin, json!({"parent_id": x})),
        );
        let (winner, loser) = if r1.status() == StatusCode::OK {
            (r1, r2)
        } else {
            (r2, r1)
        };
        assert_eq!(winner.status(), StatusCode::OK, "one of the two moves wins");
        // The other sees the winner's move and is refused as a cycle (never a 5xx).
        assert_error(loser, StatusCode::CONFLICT, "CATEGORY_CYCLE").await;
    }
}

#[tokio::test]
async fn deletes_are_refused_while_children_or_products_remain() {
    let app = TestApp::spawn().await;
    let parent = app.admin_category("Parent", None).await;
    let child = app.admin_category("Child", Some(&parent)).await;
    let seller = Caller::seller();
    let p = app
        .product(&seller, json!({"name": "Thing", "category_id": child}))
        .await;
    assert_error(
        app.delete_auth(&format!("/api/v1/categories/{parent}"), &app.admin)
            .await,
        StatusCode::CONFLICT,
        "CATEGORY_HAS_CHILDREN",
    )
    .await;
    assert_error(
        app.delete_auth(&format!("/api/v1/categories/{child}"), &app.admin)
            .await,
        StatusCode::CONFLICT,
        "CATEGORY_IN_USE",
    )
    .await;
    // Once the product is gone the category can go, then its parent.
    app.delete_auth(
        &format!("/api/v1/products/{}", p["id"].as_str().unwrap()),
        &seller.token,
    )
    .await;
    assert_eq!(
        app.delete_auth(&format!("/api/v1/categories/{child}"), &app.admin)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete_auth(&format!("/api/v1/categories/{parent}"), &app.admin)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get(&format!("/api/v1/categories/{parent}")).await,
        StatusCode::NOT_FOUND,
        "CATEGORY_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn only_admins_write_categories_and_slugs_are_unique() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    assert_error(
        app.post_auth("/api/v1/categories", &seller.token, json!({"name": "Mine"}))
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    app.admin_category("Toys", None).await;
    assert_error(
        app.post_auth(
            "/api/v1/categories",
            &app.admin,
            json!({"name": "Other", "slug": "toys"}),
        )
        .await,
        StatusCode::CONFLICT,
        "SLUG_TAKEN",
    )
    .await;
    assert_error(
        app.post_auth(
            "/api/v1/categories",
            &app.admin,
            json!({"name": "Sub", "parent_id": uuid::Uuid::now_v7()}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.post_auth("/api/v1/categories", &app.admin, json!({"name": ""}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
}
