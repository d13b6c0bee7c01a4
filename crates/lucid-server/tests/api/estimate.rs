//! Estimates: JSON and multipart, standard and generative, bulk with per-item errors.

use serde_json::{Value, json};

use crate::helpers::*;

async fn post_json(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("X-API-Key", &app.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn estimates_price_output_megapixels() {
    let app = spawn_app().await;
    let resp = post_json(
        &app,
        "/image/v1/estimate",
        json!({ "input_width": 1000, "input_height": 1000, "output_width": "8000" }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["credits"], 3);
    assert!(body["duration"].as_i64().unwrap() >= 1);
    let form = reqwest::multipart::Form::new()
        .text("input_width", "2000")
        .text("input_height", "2000")
        .text("category", "Denoise")
        .text("model", "Strong");
    let resp = app
        .client
        .post(app.url("/image/v1/estimate"))
        .header("X-API-Key", &app.key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["credits"], 1);
    let gen_resp = post_json(
        &app,
        "/image/v1/estimate-gen",
        json!({ "input_width": "1000", "input_height": "1000", "output_width": "3000" }),
    )
    .await;
    assert_eq!(
        gen_resp.json::<Value>().await.unwrap()["credits"],
        3,
        "Redefine: 9 MP at 4 MP per credit"
    );
    let bad = post_json(
        &app,
        "/image/v1/estimate",
        json!({ "input_width": 0, "input_height": 10 }),
    )
    .await;
    assert_error(bad, 400, "Please provide a valid input resolution.").await;
    let missing = post_json(&app, "/image/v1/estimate", json!({ "input_width": 10 })).await;
    assert_error(missing, 400, "Please provide a valid input resolution.").await;
    let wrong = post_json(
        &app,
        "/image/v1/estimate",
        json!({ "input_width": 10, "input_height": 10, "model": "Redefine" }),
    )
    .await;
    assert_eq!(wrong.status(), 400);
}

#[tokio::test]
async fn bulk_answers_every_item() {
    let app = spawn_app().await;
    let body = json!([
        { "input_width": 1000, "input_height": 1000 },
        { "input_width": 1000, "input_height": 1000, "model": "Redefine", "output_width": 20000 },
        { "input_width": 0, "input_height": 10 },
        { "input_width": 100, "input_height": 100, "model": "Dust-Scratch" },
    ]);
    let answers: Vec<Value> = post_json(&app, "/image/v1/estimate-bulk", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0]["status"], "success");
    assert_eq!(answers[0]["credits"], 1);
    assert_eq!(
        answers[1],
        json!({ "status": "error", "code": 413, "message": "Output image dimensions exceed maximum allowed of 256 MP." })
    );
    assert_eq!(answers[2]["code"], 400);
    assert_eq!(answers[3]["status"], "success");
    let not_array = post_json(&app, "/image/v1/estimate-bulk", json!({})).await;
    assert_eq!(not_array.status(), 400);
}
