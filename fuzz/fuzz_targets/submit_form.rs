//! Any bytes as a submit's multipart body: the form parser and every endpoint's request parser
//! answer a result, never a panic.
#![no_main]

use axum::extract::FromRequest;
use libfuzzer_sys::fuzz_target;
use lucid_core::Endpoint;
use lucid_core::request::SubmitRequest;
use lucid_server::routes::submit::SubmitForm;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/image/v1/enhance/async")
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body(axum::body::Body::from(data.to_vec()))
        .unwrap();
    let Ok(form) = runtime.block_on(SubmitForm::from_request(request, &())) else {
        return;
    };
    for endpoint in Endpoint::ALL {
        let _ = SubmitRequest::parse(endpoint, &form.fields, form.image.is_some());
    }
    if let Some((bytes, _)) = &form.image {
        let _ = lucid_imaging::codec::probe(bytes);
    }
});
