//! The committed bad-input corpus (`tests/corpus`, written by its `make.py`): every file is
//! refused at submit on every upload endpoint with the status its name starts with and a
//! `{code, message}` body; nothing is accepted, and the server keeps serving.

use serde_json::Value;

use crate::helpers::*;

fn corpus() -> Vec<(String, u16, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "py"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let status = name[..3].parse().unwrap();
            (name, status, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 15, "corpus went missing: {}", files.len());
    files
}

#[tokio::test]
async fn every_corpus_file_is_refused_with_its_status_and_nothing_is_accepted() {
    let app = spawn_app().await;
    for (name, status, bytes) in corpus() {
        for endpoint in ["enhance/async", "denoise/async", "enhance"] {
            let resp = app
                .submit_as(
                    &app.key,
                    &format!("/image/v1/{endpoint}"),
                    Some(bytes.clone()),
                    &[],
                )
                .await;
            assert_eq!(resp.status().as_u16(), status, "{name} on {endpoint}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], status, "{name}: {body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{name}: {body}"
            );
        }
    }
    let list: Value = app
        .get_as(&app.key, "/image/v1/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, Value::Array(vec![]), "a bad input was accepted");
    // Still serving: a good image goes through.
    let id = app.submit_ok("enhance", png(16, 16), &[]).await;
    app.run_worker().await;
    assert_eq!(app.status(&id).await["status"], "Completed");
}
