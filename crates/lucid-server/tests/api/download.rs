//! Download links: minted per call, signed, one hour, GET and HEAD without a key.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn output_links_need_a_completed_job_and_serve_get_and_head() {
    let app = spawn_app().await;
    let id = app
        .submit_ok("enhance", png(20, 10), &[("output_format", "png")])
        .await;
    assert_error(
        app.get_as(&app.key, &format!("/image/v1/download/{id}"))
            .await,
        409,
        "The output image is not ready. Wait until the process has completed.",
    )
    .await;
    app.run_worker().await;
    let links: Value = app
        .get_as(&app.key, &format!("/image/v1/download/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((links["expiry"].as_i64().unwrap() - (now + 3600)).abs() <= 2);
    assert_eq!(links["url"], links["download_url"]);
    let get = app
        .client
        .get(links["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["content-type"], "image/png");
    let len: u64 = get.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = get.bytes().await.unwrap();
    assert_eq!(body.len() as u64, len);
    let head = app
        .client
        .head(links["head_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "image/png");
    assert_eq!(
        head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        len
    );
}

#[tokio::test]
async fn input_links_work_before_the_job_runs() {
    let app = spawn_app().await;
    let upload = png(20, 10);
    let id = app.submit_ok("enhance", upload.clone(), &[]).await;
    let links: Value = app
        .get_as(&app.key, &format!("/image/v1/download/input/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let get = app
        .client
        .get(links["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(get.headers()["content-type"], "image/png");
    assert_eq!(get.bytes().await.unwrap().to_vec(), upload);
}

#[tokio::test]
async fn altered_or_expired_links_are_refused() {
    let app = spawn_app().await;
    let id = app.submit_ok("enhance", png(20, 10), &[]).await;
    app.run_worker().await;
    let links: Value = app
        .get_as(&app.key, &format!("/image/v1/download/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let url = links["download_url"].as_str().unwrap().to_string();
    let expiry = links["expiry"].as_i64().unwrap();
    let sig = url.rsplit_once("signature=").unwrap().1.to_string();
    let flipped = format!(
        "{}{}",
        &sig[..sig.len() - 1],
        if sig.ends_with('0') { '1' } else { '0' }
    );
    let other_id = lucid_core::ProcessId::new().to_string();
    let tampered = [
        url.replace(&sig, &flipped),
        url.replace(
            &format!("expires={expiry}"),
            &format!("expires={}", expiry + 3600),
        ),
        url.replace("/files/output/", "/files/input/"),
        url.replace(&id, &other_id),
        url.replace("method=GET", "method=HEAD"),
        url.split('?').next().unwrap().to_string(),
    ];
    for bad in tampered {
        let resp = app.client.get(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{bad}");
    }
    // A HEAD link does not serve GET.
    let head_url = links["head_url"].as_str().unwrap();
    assert_eq!(app.client.get(head_url).send().await.unwrap().status(), 403);
    // An expired link, correctly signed, is refused.
    let signer = &app.state.signer;
    let expired = signer.link(
        &app.base,
        "GET",
        lucid_server::signing::FileKind::Output,
        lucid_core::ProcessId::parse(&id).unwrap(),
        expiry - 7200,
    );
    assert_eq!(app.client.get(&expired).send().await.unwrap().status(), 403);
    // Once the status is deleted, its links find nothing.
    app.delete_as(&app.key, &format!("/image/v1/status/{id}"))
        .await;
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 404);
}
