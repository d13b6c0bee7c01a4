//! The command-line client (`lucid submit | status | cancel | download`) against a real
//! `lucid serve`: folders in, outputs beside their names, errors and exit codes, and Ctrl-C
//! cancelling the jobs it started.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The client binary aimed at `base` with `key`.
fn client(base: &str, key: &str) -> Command {
    let mut cmd = lucid();
    cmd.env("LUCID_SERVER", base).env("LUCID_API_KEY", key);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn image_size(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap()
}

fn shared(name: &str) -> std::path::PathBuf {
    shared_png().with_file_name(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_a_folder_then_status_download_and_cancel() {
    let served = serve_fresh(2).await;
    let (base, key) = (served.base.as_str(), served.key.as_str());

    let photos = tempfile::tempdir().unwrap();
    for name in ["camera.png", "rocket.jpg", "text.png"] {
        std::fs::copy(shared(name), photos.path().join(name)).unwrap();
    }
    std::fs::write(photos.path().join("notes.txt"), "not an image").unwrap();
    let out = photos.path().join("out");
    let done = run(client(base, key)
        .args(["submit", "enhance"])
        .arg(photos.path())
        .args(["--model", "Standard V2", "--set", "output_width=96"])
        .args(["--set", "output_format=png", "--concurrency", "2", "--out"])
        .arg(&out));
    assert!(done.status.success(), "{}", text(&done.stderr));
    let stdout = text(&done.stdout);
    for stem in ["camera", "rocket", "text"] {
        let output = out.join(format!("{stem}-enhance.png"));
        assert!(stdout.contains(&output.display().to_string()), "{stdout}");
        assert_eq!(image_size(&output).0, 96, "{stem}");
    }
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        3,
        "nothing else written"
    );

    // The list shows the three jobs; one job's status is its JSON.
    let listed = run(client(base, key).arg("status"));
    assert!(listed.status.success());
    let listed = text(&listed.stdout);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    let id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let shown = run(client(base, key).args(["status", id]));
    let status: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(status["status"], "Completed");

    // Download writes the same bytes the submit wrote.
    let again = photos.path().join("again.png");
    let fetched = run(client(base, key)
        .args(["download", id, "--out"])
        .arg(&again));
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    let stem = Path::new(status["filename"].as_str().unwrap())
        .file_stem()
        .unwrap();
    let submitted = out.join(format!("{}-enhance.png", stem.to_str().unwrap()));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&submitted).unwrap()
    );

    // A finished job cannot be cancelled: the API's message, and a failing exit.
    let refused = run(client(base, key).args(["cancel", id]));
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("not in a cancellable state. (HTTP 409)"),
        "{}",
        text(&refused.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_with_the_apis_message_and_a_failing_exit() {
    let served = serve_fresh(1).await;
    let (base, key) = (served.base.as_str(), served.key.as_str());
    let camera = shared("camera.png");

    let wrong_key = run(client(base, "lucid_wrong")
        .args(["submit", "enhance"])
        .arg(&camera));
    assert!(!wrong_key.status.success());
    assert!(
        text(&wrong_key.stderr).contains("Unauthorized (HTTP 401)"),
        "{}",
        text(&wrong_key.stderr)
    );

    let bad_model = run(client(base, key)
        .args(["submit", "enhance", "--model", "No Such Model"])
        .arg(&camera));
    assert!(!bad_model.status.success());
    assert!(
        text(&bad_model.stderr).contains("(HTTP 400)"),
        "{}",
        text(&bad_model.stderr)
    );

    let missing = run(client(base, key).args(["submit", "enhance", "/no/such/file.png"]));
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("does not exist"));

    let unknown = run(client(base, key).args(["status", "7d1e9b3c-0000-4000-8000-000000000000"]));
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("(HTTP 404)"));

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let unreachable = run(client(&nobody, key).arg("status"));
    assert!(!unreachable.status.success());
    assert!(text(&unreachable.stderr).contains("cannot reach"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_jobs_the_client_started() {
    // No workers: the jobs stay Pending until the client cancels them.
    let served = serve_fresh(0).await;
    let (http, base, key) = (&served.http, served.base.as_str(), served.key.as_str());
    let photos = tempfile::tempdir().unwrap();
    for name in ["camera.png", "text.png"] {
        std::fs::copy(shared(name), photos.path().join(name)).unwrap();
    }
    let submitting = client(base, key)
        .args(["submit", "denoise"])
        .arg(photos.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let jobs = loop {
        let jobs = get_json(http, base, key, "/image/v1/status").await;
        if jobs.as_array().unwrap().len() == 2 {
            break jobs;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{jobs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Give the client a moment to learn the ids from the submit answers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        Command::new("kill")
            .args(["-INT", &submitting.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let exit = submitting.wait_with_output().unwrap();
    assert!(!exit.status.success());
    assert!(
        text(&exit.stderr).contains("cancelled 2 of the 2 running jobs"),
        "{}",
        text(&exit.stderr)
    );
    for job in jobs.as_array().unwrap() {
        let id = job["process_id"].as_str().unwrap();
        assert_eq!(status(http, base, key, id).await["status"], "Cancelled");
    }
}
