//! Submits: every endpoint and model, geometry, sources, sync endpoints, input validation.

use lucid_core::Endpoint;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn every_endpoint_and_model_completes_with_the_planned_geometry() {
    let app = spawn_app().await;
    let mut jobs = Vec::new();
    for endpoint in Endpoint::ALL {
        for model in endpoint.models() {
            let mut fields = vec![("model", *model)];
            if endpoint.resizes() {
                fields.push(("output_width", "96"));
            }
            let id = app.submit_ok(endpoint.slug(), png(48, 32), &fields).await;
            jobs.push((endpoint, *model, id));
        }
    }
    assert_eq!(app.run_worker().await, jobs.len());
    for (endpoint, model, id) in jobs {
        let s = app.status(&id).await;
        assert_eq!(s["status"], "Completed", "{endpoint:?} {model}: {s}");
        assert_eq!(s["progress"], 100);
        assert_eq!(s["model"], model);
        assert_eq!(s["category"], endpoint.category());
        let expected = if endpoint.resizes() {
            (96, 64)
        } else {
            (48, 32)
        };
        assert_eq!(
            (
                s["output_width"].as_u64().unwrap() as u32,
                s["output_height"].as_u64().unwrap() as u32
            ),
            expected
        );
        let (ct, bytes) = app.download(&id).await;
        assert_eq!(dimensions(&bytes), expected, "{endpoint:?} {model}");
        assert_eq!(
            ct,
            if endpoint.png_only() {
                "image/png"
            } else {
                "image/jpeg"
            }
        );
    }
}

#[tokio::test]
async fn submit_answers_ids_and_headers_and_status_has_every_field() {
    let app = spawn_app().await;
    let resp = app
        .submit(
            "enhance",
            png(40, 20),
            &[
                ("output_height", "40"),
                ("output_format", "tif"),
                ("sharpen", "0.3"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap();
    let id = body["process_id"].as_str().unwrap();
    assert_eq!(headers["x-process-id"], id);
    assert_eq!(headers["x-source-id"], body["source_id"].as_str().unwrap());
    assert_eq!(headers["x-eta"].to_str().unwrap(), body["eta"].to_string());
    let s = app.status(id).await;
    for field in [
        "process_id",
        "source_id",
        "filename",
        "input_format",
        "input_height",
        "input_width",
        "output_format",
        "output_height",
        "output_width",
        "category",
        "model_type",
        "model",
        "crop_to_fill",
        "options_json",
        "status",
        "progress",
        "eta",
        "creation_time",
        "modification_time",
        "credits",
        "subject_detection",
        "face_enhancement",
        "face_enhancement_creativity",
        "face_enhancement_strength",
        "sync",
    ] {
        assert!(s.get(field).is_some(), "missing {field}");
    }
    assert_eq!(s["status"], "Pending");
    assert_eq!(s["output_format"], "tiff");
    assert_eq!(
        (s["output_width"].as_u64(), s["output_height"].as_u64()),
        (Some(80), Some(40))
    );
    assert_eq!(s["options_json"], "{\"sharpen\":0.3}");
    assert_eq!(s["model_type"], "GAN");
    app.run_worker().await;
    let (ct, bytes) = app.download(id).await;
    assert_eq!(ct, "image/tiff");
    assert_eq!(dimensions(&bytes), (80, 40));
}

#[tokio::test]
async fn letterbox_and_crop_to_fill() {
    let app = spawn_app().await;
    let boxed = app
        .submit_ok(
            "enhance",
            png(40, 20),
            &[
                ("output_width", "60"),
                ("output_height", "60"),
                ("output_format", "png"),
            ],
        )
        .await;
    let cropped = app
        .submit_ok(
            "enhance",
            png(40, 20),
            &[
                ("output_width", "60"),
                ("output_height", "60"),
                ("crop_to_fill", "true"),
                ("output_format", "png"),
            ],
        )
        .await;
    app.run_worker().await;
    let (_, boxed) = app.download(&boxed).await;
    let (_, cropped) = app.download(&cropped).await;
    let boxed = image::load_from_memory(&boxed).unwrap().to_rgb8();
    let cropped = image::load_from_memory(&cropped).unwrap().to_rgb8();
    assert_eq!(boxed.dimensions(), (60, 60));
    assert_eq!(
        boxed.get_pixel(30, 2).0,
        [0, 0, 0],
        "letterbox bars are black"
    );
    assert_ne!(
        cropped.get_pixel(30, 2).0,
        [0, 0, 0],
        "crop_to_fill leaves no bars"
    );
}

/// A photograph stored 40×20 and tagged "rotate 90°" (EXIF orientation 6) is a 20×40 input:
/// its status says so, and a width of 60 makes it 60×120 (not a squashed 60×30).
#[tokio::test]
async fn exif_turned_photos_are_sized_as_shown() {
    use lucid_core::OutputFormat;
    use lucid_imaging::codec::{Metadata, encode_with_metadata, exif_rotate_90};
    use lucid_imaging::raster::Raster;
    let app = spawn_app().await;
    let stored = Raster::from_dynamic(&image::load_from_memory(&png(40, 20)).unwrap());
    let meta = Metadata {
        icc: None,
        exif: Some(exif_rotate_90()),
        ..Default::default()
    };
    let turned = encode_with_metadata(&stored, OutputFormat::Jpeg, &meta).unwrap();
    let id = app
        .submit_ok("enhance", turned, &[("output_width", "60")])
        .await;
    let s = app.status(&id).await;
    assert_eq!(
        (s["input_width"].as_u64(), s["input_height"].as_u64()),
        (Some(20), Some(40))
    );
    assert_eq!(
        (s["output_width"].as_u64(), s["output_height"].as_u64()),
        (Some(60), Some(120))
    );
    app.run_worker().await;
    let (_, out) = app.download(&id).await;
    assert_eq!(dimensions(&out), (60, 120));
}

#[tokio::test]
async fn camel_case_settings_and_unknown_fields_are_accepted() {
    let app = spawn_app().await;
    let id = app
        .submit_ok(
            "enhance",
            png(40, 20),
            &[
                ("outputWidth", "80"),
                ("fixCompression", "0.7"),
                ("scale", "4"),
                ("faceEnhancement", "false"),
            ],
        )
        .await;
    let s = app.status(&id).await;
    assert_eq!(s["output_width"], 80);
    assert_eq!(s["face_enhancement"], false);
    assert!(
        s["options_json"]
            .as_str()
            .unwrap()
            .contains("\"fix_compression\":0.7")
    );
}

#[tokio::test]
async fn source_id_reuses_an_upload_of_the_same_key_only() {
    let app = spawn_app().await;
    let resp = app.submit("denoise", png(32, 32), &[]).await;
    let source: Value = resp.json().await.unwrap();
    let source_id = source["source_id"].as_str().unwrap();
    let again = app
        .submit_as(
            &app.key,
            "/image/v1/sharpen/async",
            None,
            &[("source_id", source_id)],
        )
        .await;
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["source_id"], source_id);
    let other = app.key_with("other", "submit,read", None).await;
    let theirs = app
        .submit_as(
            &other,
            "/image/v1/sharpen/async",
            None,
            &[("source_id", source_id)],
        )
        .await;
    assert_error(
        theirs,
        404,
        "A source image with the given source ID was not found.",
    )
    .await;
    let bad = app
        .submit_as(
            &app.key,
            "/image/v1/sharpen/async",
            None,
            &[("source_id", "../../etc/passwd")],
        )
        .await;
    assert_error(
        bad,
        400,
        "Invalid source ID. Please ensure it is a valid UUID.",
    )
    .await;
}

#[tokio::test]
async fn source_url_downloads_the_image() {
    let app = spawn_app().await;
    let first = app.submit_ok("lighting", png(30, 20), &[]).await;
    let links: Value = app
        .get_as(&app.key, &format!("/image/v1/download/input/{first}"))
        .await
        .json()
        .await
        .unwrap();
    let url = links["download_url"].as_str().unwrap();
    let resp = app
        .submit_as(
            &app.key,
            "/image/v1/lighting/async",
            None,
            &[("source_url", url)],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let id = resp.json::<Value>().await.unwrap()["process_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = app.status(&id).await;
    assert_eq!(
        (s["input_width"].as_u64(), s["input_height"].as_u64()),
        (Some(30), Some(20))
    );
    let missing = app
        .submit_as(
            &app.key,
            "/image/v1/lighting/async",
            None,
            &[("source_url", &format!("{}/nothing.png", app.base))],
        )
        .await;
    assert_eq!(missing.status(), 400);
    let not_http = app
        .submit_as(
            &app.key,
            "/image/v1/lighting/async",
            None,
            &[("source_url", "file:///etc/passwd")],
        )
        .await;
    assert_eq!(not_http.status(), 400);
}

#[tokio::test]
async fn urls_to_private_addresses_are_refused_by_default() {
    let app = spawn_with(Options {
        allow_private_urls: false,
        ..Options::default()
    })
    .await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let reachable = format!("http://localhost:{port}/openapi.json");
    for url in [
        reachable.as_str(),
        "http://127.0.0.1:9/a.png",
        "http://[::1]/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/a.png",
        "http://192.168.1.1/a.png",
    ] {
        let as_source = app
            .submit_as(
                &app.key,
                "/image/v1/enhance/async",
                None,
                &[("source_url", url)],
            )
            .await;
        assert_error(
            as_source,
            400,
            "The URL points to a private or local address, which is not allowed.",
        )
        .await;
        let as_webhook = app
            .submit_as(
                &app.key,
                "/image/v1/enhance/async",
                Some(png(8, 8)),
                &[("webhook_url", url)],
            )
            .await;
        assert_error(
            as_webhook,
            400,
            "The URL points to a private or local address, which is not allowed.",
        )
        .await;
    }
    let listed = app.jobs().await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    assert_eq!(app.balance_as(&app.key).await["reserved_credits"], 0);
}

#[tokio::test]
async fn invalid_input_is_rejected_with_the_spec_answers() {
    let app = spawn_app().await;
    type Case = (
        Option<Vec<u8>>,
        Vec<(&'static str, &'static str)>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            Some(png(10, 10)),
            vec![("model", "Normal")],
            400,
            "Invalid model. Supported models for enhance: Standard V2, Low Resolution V2, CGI, High Fidelity V2, Text Refine.",
        ),
        (
            Some(png(10, 10)),
            vec![("output_height", "32001")],
            400,
            "Invalid output height.",
        ),
        (
            Some(png(10, 10)),
            vec![("output_width", "0")],
            400,
            "Invalid output width.",
        ),
        (
            Some(png(10, 10)),
            vec![("output_width", "abc")],
            400,
            "Invalid output width.",
        ),
        (
            Some(png(10, 10)),
            vec![("output_width", "32000"), ("output_height", "32000")],
            400,
            "Output image dimensions exceed maximum allowed of 512 MP.",
        ),
        (
            Some(png(10, 10)),
            vec![("sharpen", "2")],
            400,
            "Invalid sharpen.",
        ),
        (
            Some(png(10, 10)),
            vec![("output_format", "gif")],
            400,
            "Invalid output format. Supported formats: jpeg, jpg, png, tiff, tif.",
        ),
        (
            Some(b"this is not an image".to_vec()),
            vec![],
            415,
            "Image could not be decoded to a supported image type.",
        ),
        (
            None,
            vec![("model", "CGI")],
            400,
            "No image provided. Send an image file, a source_id or a source_url.",
        ),
    ];
    for (image, fields, status, message) in cases {
        let resp = app
            .submit_as(&app.key, "/image/v1/enhance/async", image, &fields)
            .await;
        assert_error(resp, status, message).await;
    }
    let mut zero = png(10, 10);
    zero[16..20].copy_from_slice(&[0, 0, 0, 0]);
    assert_error(
        app.submit("enhance", zero, &[]).await,
        422,
        "Image has invalid dimensions (width or height is zero).",
    )
    .await;
    let mut huge = png(10, 10);
    huge[16..20].copy_from_slice(&60000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&60000u32.to_be_bytes());
    let resp = app.submit("enhance", huge, &[]).await;
    assert!(
        resp.status() == 400 || resp.status() == 415,
        "{}",
        resp.status()
    );
    let matting = app
        .submit("matting", png(10, 10), &[("output_format", "jpeg")])
        .await;
    assert_error(
        matting,
        400,
        "Invalid output format. This endpoint supports png only.",
    )
    .await;
    let not_multipart = app
        .client
        .post(app.url("/image/v1/enhance/async"))
        .header("X-API-Key", &app.key)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status(), 400);
    // Nothing was accepted by any rejection.
    let list = app.jobs().await;
    assert_eq!(list.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn uploads_over_the_limit_are_413() {
    let app = spawn_with(Options {
        max_upload_mb: 1,
        ..Options::default()
    })
    .await;
    let resp = app.submit("enhance", vec![0u8; 2 * 1024 * 1024], &[]).await;
    assert_error(resp, 413, "Request Entity Too Large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_endpoints_answer_the_image_and_keep_the_job() {
    let app = spawn_with(Options {
        workers: 1,
        ..Options::default()
    })
    .await;
    for endpoint in ["enhance", "sharpen", "denoise", "lighting"] {
        let resp = app
            .submit_as(
                &app.key,
                &format!("/image/v1/{endpoint}"),
                Some(png(40, 30)),
                &[("output_format", "png")],
            )
            .await;
        assert_eq!(resp.status(), 200, "{endpoint}");
        assert_eq!(resp.headers()["content-type"], "image/png");
        let id = resp.headers()["x-process-id"].to_str().unwrap().to_string();
        assert!(resp.headers().contains_key("x-eta"));
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(dimensions(&bytes), (40, 30));
        let s = app.status(&id).await;
        assert_eq!(s["status"], "Completed");
        assert_eq!(s["sync"], true);
    }
    let too_big = app
        .submit_as(
            &app.key,
            "/image/v1/enhance",
            Some(png(40, 30)),
            &[("output_width", "12000")],
        )
        .await;
    assert_error(
        too_big,
        400,
        "Output image dimensions exceed maximum allowed of 96 MP.",
    )
    .await;
}

#[tokio::test]
async fn a_sync_client_that_hangs_up_cancels_its_job() {
    // No workers: the job stays Pending until the client gives up.
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(400))
        .build()
        .unwrap();
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(png(20, 20)).file_name("a.png"),
    );
    let err = client
        .post(app.url("/image/v1/enhance"))
        .header("X-API-Key", &app.key)
        .multipart(form)
        .send()
        .await;
    assert!(err.is_err(), "the request should time out");
    let mut state = String::new();
    for _ in 0..50 {
        let list = app.jobs().await;
        state = list[0]["status"].as_str().unwrap_or_default().to_string();
        if state == "Cancelled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state, "Cancelled");
}

#[tokio::test]
async fn shared_photographs_process_end_to_end() {
    let app = spawn_app().await;
    let id = app
        .submit_ok(
            "enhance",
            shared_image("chelsea.png"),
            &[("output_width", "902")],
        )
        .await;
    app.run_worker().await;
    let (_, bytes) = app.download(&id).await;
    assert_eq!(dimensions(&bytes), (902, 600));
}
