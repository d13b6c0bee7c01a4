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
    let list = app.jobs().await;
    assert_eq!(list, Value::Array(vec![]), "a bad input was accepted");
    // Still serving: a good image goes through.
    let id = app.submit_ok("enhance", png(16, 16), &[]).await;
    app.run_worker().await;
    assert_eq!(app.status(&id).await["status"], "Completed");
}

/// Posts `body` with `content_type` (if any) to the async enhance endpoint.
async fn post_raw(app: &TestApp, content_type: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/image/v1/enhance/async"))
        .header("X-API-Key", &app.key)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

/// One multipart part named `name` (a file part when `filename` is given).
fn part(name: &str, data: &[u8], filename: Option<&str>) -> Vec<u8> {
    let mut out = format!("--XYZ\r\nContent-Disposition: form-data; name=\"{name}\"").into_bytes();
    if let Some(f) = filename {
        out.extend(format!("; filename=\"{f}\"\r\nContent-Type: image/png").bytes());
    }
    out.extend(b"\r\n\r\n");
    out.extend(data);
    out.extend(b"\r\n");
    out
}

fn form(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = parts.concat();
    out.extend(b"--XYZ--\r\n");
    out
}

async fn assert_refused(resp: reqwest::Response, status: u16, message_part: &str, what: &str) {
    assert_eq!(resp.status().as_u16(), status, "{what}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], status, "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(message_part), "{what}: {body}");
}

#[tokio::test]
async fn malformed_requests_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let image = png(8, 8);
    let multipart = "multipart/form-data; boundary=XYZ";
    let not_multipart = "must be multipart/form-data";
    let malformed = "Malformed multipart body";
    let many_parts: Vec<Vec<u8>> = (0..201)
        .map(|i| part(&format!("f{i}"), b"1", None))
        .collect();
    // (what, content type, body, status, part of the message)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no content type",
            None,
            b"hello".to_vec(),
            400,
            not_multipart,
        ),
        (
            "JSON",
            Some("application/json"),
            br#"{"model":"Standard V2"}"#.to_vec(),
            400,
            not_multipart,
        ),
        (
            "no boundary",
            Some("multipart/form-data"),
            form(&[part("image", &image, Some("a.png"))]),
            400,
            not_multipart,
        ),
        (
            "other boundary",
            Some("multipart/form-data; boundary=ABC"),
            form(&[part("image", &image, Some("a.png"))]),
            400,
            malformed,
        ),
        (
            "truncated",
            Some(multipart),
            part("image", &image[..image.len() / 2], Some("a.png")),
            400,
            malformed,
        ),
        (
            "binary garbage",
            Some(multipart),
            [0u8, 0xff].repeat(500),
            400,
            malformed,
        ),
        (
            "two images",
            Some(multipart),
            form(&[
                part("image", &image, Some("a.png")),
                part("image", &image, Some("b.png")),
            ]),
            400,
            "one image",
        ),
        (
            "100 KB field",
            Some(multipart),
            form(&[
                part("image", &image, Some("a.png")),
                part("model", &[b'A'; 100_000], None),
            ]),
            400,
            "The field model is too long.",
        ),
        (
            "1000-char field name",
            Some(multipart),
            form(&[
                part("image", &image, Some("a.png")),
                part(&"n".repeat(1000), b"1", None),
            ]),
            400,
            "at most 64",
        ),
        (
            "201 parts",
            Some(multipart),
            form(&many_parts),
            400,
            "Too many form fields.",
        ),
        (
            "non-UTF-8 field",
            Some(multipart),
            form(&[
                part("image", &image, Some("a.png")),
                part("model", &[0xff, 0xfe], None),
            ]),
            400,
            "not UTF-8",
        ),
        (
            "part without a name",
            Some(multipart),
            b"--XYZ\r\nContent-Type: text/plain\r\n\r\nabc\r\n--XYZ--\r\n".to_vec(),
            400,
            "No image provided",
        ),
        (
            "empty form",
            Some(multipart),
            b"--XYZ--\r\n".to_vec(),
            400,
            "No image provided",
        ),
    ];
    for (what, content_type, body, status, message) in cases {
        let resp = post_raw(&app, content_type, body).await;
        assert_refused(resp, status, message, what).await;
    }
    // Headers past the HTTP layer's limits are refused by it (431, without a JSON body: no route
    // ran), and the connection is closed; the server goes on serving.
    let huge_header = app
        .client
        .get(app.url("/image/v1/status"))
        .header("X-API-Key", &app.key)
        .header("X-Padding", "a".repeat(1 << 20))
        .send()
        .await
        .unwrap();
    assert_eq!(huge_header.status(), 431);
    let list = app.jobs().await;
    assert_eq!(list, Value::Array(vec![]), "nothing malformed was accepted");
}

const METACHARACTERS: [&str; 7] = [
    "'; DROP TABLE jobs; --",
    "\" OR 1=1 --",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%2e%2e%2f%00",
    "$(touch /tmp/lucid-pwned)`id`",
    "<script>alert(1)</script>\u{0}",
];

#[tokio::test]
async fn metacharacters_in_every_text_field_are_refused_or_kept_as_text() {
    let app = spawn_app().await;
    let fields = [
        "model",
        "output_format",
        "output_width",
        "output_height",
        "crop_to_fill",
        "source_id",
        "source_url",
        "webhook_url",
        "sharpen",
        "face_enhancement",
        "subject_detection",
        "enhancement_strength",
        "prompt",
        "mode",
        "category",
    ];
    let mut accepted = Vec::new();
    for field in fields {
        for value in METACHARACTERS {
            let resp = app.submit("enhance", png(8, 8), &[(field, value)]).await;
            let what = format!("{field}={value:?}");
            match resp.status().as_u16() {
                200 => accepted.push(
                    resp.json::<Value>().await.unwrap()["process_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ),
                400 => {
                    let body: Value = resp.json().await.unwrap();
                    assert_eq!(body["code"], 400, "{what}: {body}");
                    assert!(
                        body["message"].as_str().is_some_and(|m| !m.is_empty()),
                        "{what}"
                    );
                }
                other => panic!("{what}: {other}"),
            }
        }
    }
    // Metacharacters in the image's file name and the Idempotency-Key are kept as text.
    for value in METACHARACTERS {
        let part = reqwest::multipart::Part::bytes(png(8, 8)).file_name(value.to_string());
        let resp = app
            .client
            .post(app.url("/image/v1/enhance/async"))
            .header("X-API-Key", &app.key)
            .header("Idempotency-Key", value.replace('\u{0}', ""))
            .multipart(reqwest::multipart::Form::new().part("image", part))
            .send()
            .await
            .unwrap();
        if value.contains('\u{0}') {
            // A NUL cannot be in a multipart header: the form is malformed.
            assert_refused(resp, 400, "", value).await;
            continue;
        }
        assert_eq!(resp.status(), 200, "{value:?}");
        let id = resp.json::<Value>().await.unwrap()["process_id"]
            .as_str()
            .unwrap()
            .to_string();
        // Clients differ in how they escape a backslash in a quoted file name (reqwest and curl
        // double it, browsers do not); lucid keeps the name as the bytes it received.
        if !value.contains('\\') {
            assert_eq!(app.status(&id).await["filename"], value, "the name is kept");
        }
        accepted.push(id);
    }
    // Ids that are not UUIDs, on every route that takes one.
    for value in METACHARACTERS {
        let id = urlencode(value);
        for path in [
            format!("/image/v1/status/{id}"),
            format!("/image/v1/download/{id}"),
            format!("/image/v1/download/input/{id}"),
        ] {
            assert_refused(app.get_as(&app.key, &path).await, 400, "valid UUID", &path).await;
        }
        let path = format!("/image/v1/cancel/{id}");
        assert_refused(
            app.delete_as(&app.key, &path).await,
            400,
            "valid UUID",
            &path,
        )
        .await;
        let path = format!("/files/output/{id}?expires=9999999999&signature=x");
        let resp = app.client.get(app.url(&path)).send().await.unwrap();
        assert!(matches!(resp.status().as_u16(), 400 | 403 | 404), "{path}");
    }
    // Every accepted job runs, the store is intact and lists exactly those jobs, and nothing
    // was written outside the data folder's own names.
    eprintln!("{} metacharacter submits accepted as text", accepted.len());
    app.run_worker().await;
    for id in &accepted {
        assert_eq!(app.status(id).await["status"], "Completed", "{id}");
    }
    let list: Value = app
        .get_as(&app.key, "/image/v1/status?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), accepted.len());
    assert!(!std::path::Path::new("/tmp/lucid-pwned").exists());
    for entry in walk(app.dir.path()) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !name.contains("passwd")
                && !name.contains("..")
                && !name.contains('\'')
                && !name.contains('<'),
            "unexpected file {}",
            entry.display()
        );
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
