//! Keys, scopes, rate limits and the shape of every error, walked over every route.

use serde_json::Value;

use crate::helpers::*;

/// (method, path, scope it needs).
fn routes(id: &str) -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("POST", "/image/v1/enhance/async".into(), "submit"),
        ("POST", "/image/v1/enhance".into(), "submit"),
        ("POST", "/image/v1/estimate".into(), "submit"),
        ("POST", "/image/v1/estimate-bulk".into(), "submit"),
        ("GET", "/image/v1/status".into(), "read"),
        ("GET", format!("/image/v1/status/{id}"), "read"),
        ("GET", format!("/image/v1/download/{id}"), "read"),
        ("GET", format!("/image/v1/download/input/{id}"), "read"),
        ("GET", "/account/v1/credits/balance".into(), "read"),
        ("DELETE", format!("/image/v1/cancel/{id}"), "cancel"),
        ("DELETE", format!("/image/v1/status/{id}"), "delete"),
        ("DELETE", "/image/v1/status".into(), "delete"),
    ]
}

async fn call(app: &TestApp, method: &str, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_route_needs_a_valid_key_and_its_scope() {
    let app = spawn_app().await;
    let id = app.submit_ok("enhance", png(8, 8), &[]).await;
    let revoked = app
        .key_with("to-revoke", "submit,read,cancel,delete", None)
        .await;
    assert!(app.state.jobs.revoke_key("to-revoke").await.unwrap());
    for (n, (method, path, scope)) in routes(&id).into_iter().enumerate() {
        assert_error(call(&app, method, &path, None).await, 401, "Unauthorized").await;
        assert_error(
            call(&app, method, &path, Some("lucid_unknown")).await,
            401,
            "Unauthorized",
        )
        .await;
        assert_error(
            call(&app, method, &path, Some(&revoked)).await,
            401,
            "Unauthorized",
        )
        .await;
        let others: Vec<&str> = ["submit", "read", "cancel", "delete"]
            .into_iter()
            .filter(|s| *s != scope)
            .collect();
        let lacking = app
            .key_with(&format!("lacking-{n}"), &others.join(","), None)
            .await;
        assert_error(
            call(&app, method, &path, Some(&lacking)).await,
            403,
            "Forbidden",
        )
        .await;
    }
}

#[tokio::test]
async fn the_key_header_is_case_insensitive() {
    let app = spawn_app().await;
    for name in ["X-API-Key", "x-api-key", "X-API-KEY"] {
        let resp = app
            .client
            .get(app.url("/image/v1/status"))
            .header(name, &app.key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
    }
}

#[tokio::test]
async fn malformed_ids_are_400_for_every_id_route() {
    let app = spawn_app().await;
    for (method, path, _) in routes("not-a-uuid")
        .into_iter()
        .filter(|(_, p, _)| p.contains("not-a-uuid"))
    {
        assert_error(
            call(&app, method, &path, Some(&app.key)).await,
            400,
            "Invalid process ID. Please ensure it is a valid UUID.",
        )
        .await;
    }
}

#[tokio::test]
async fn other_keys_jobs_are_not_found() {
    let app = spawn_app().await;
    let id = app.submit_ok("enhance", png(8, 8), &[]).await;
    let other = app
        .key_with("other", "submit,read,cancel,delete", None)
        .await;
    for (method, path, _) in routes(&id).into_iter().filter(|(_, p, _)| p.contains(&id)) {
        assert_error(
            call(&app, method, &path, Some(&other)).await,
            404,
            "An image with the given process ID was not found.",
        )
        .await;
    }
    let list: Value = app
        .get_as(&other, "/image/v1/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, Value::Array(vec![]));
    assert_eq!(
        app.status(&id).await["status"],
        "Pending",
        "the owner's job is untouched"
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let app = spawn_with(Options {
        rate_limit: lucid_server::config::RateLimit {
            per_second: 1,
            burst: 2,
        },
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let resp = app.get_as(&app.key, "/image/v1/status").await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            assert_error(resp, 429, "Too Many Requests").await;
        }
    }
    assert_eq!(&statuses[..2], &[200, 200]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    assert!(retry_after.unwrap() >= 1);
    // Another key has its own budget.
    let other = app.key_with("other", "read", None).await;
    assert_eq!(app.get_as(&other, "/image/v1/status").await.status(), 200);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let resp = app.get_as(&app.key, "/image/v1/nope").await;
    assert_error(resp, 404, "Not Found").await;
    let resp = app
        .client
        .put(app.url("/image/v1/status"))
        .header("X-API-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert_error(resp, 405, "Method Not Allowed").await;
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path, _) in routes("{process_id}") {
        assert!(
            paths
                .get(&path)
                .and_then(|p| p.get(method.to_lowercase()))
                .is_some(),
            "{method} {path}"
        );
    }
    for e in lucid_core::Endpoint::ALL {
        let p = &paths[&format!("/image/v1/{}/async", e.slug())]["post"];
        let models = &p["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["model"]
            ["enum"];
        assert_eq!(models.as_array().unwrap().len(), e.models().len());
    }
}
