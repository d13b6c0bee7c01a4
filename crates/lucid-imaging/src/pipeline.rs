//! One job, start to finish: decode → the model's operation → encode, as named steps. Progress
//! is reported as a fraction of the whole; the cancel token is checked between steps and
//! between the row bands inside each step.

use lucid_core::geometry::Placement;
use lucid_core::request::Settings;
use lucid_core::{Endpoint, OutputFormat};

use crate::{Cancel, Ctx, ImagingError, Progress, codec, ops};

/// What to do to one image.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub endpoint: Endpoint,
    pub model: &'a str,
    pub settings: &'a Settings,
    pub placement: Placement,
    pub format: OutputFormat,
}

/// Shares of the job's progress: decode up to 10 %, the operation up to 90 %, encode the rest.
const DECODED: f32 = 0.1;
const OPERATED: f32 = 0.9;

/// Runs the job on encoded input bytes and answers the encoded output.
pub fn process(
    input: &[u8],
    job: &Job,
    cancel: &Cancel,
    progress: Progress,
) -> Result<Vec<u8>, ImagingError> {
    cancel.check()?;
    let img = codec::decode(input)?;
    progress(DECODED);
    cancel.check()?;
    let ctx = Ctx::new(cancel, progress, (DECODED, OPERATED));
    let out = ops::run(
        &ctx,
        job.endpoint,
        job.model,
        job.settings,
        img,
        &job.placement,
    )?;
    cancel.check()?;
    progress(OPERATED);
    let bytes = codec::encode(&out, job.format)?;
    progress(1.0);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_model_produces_the_planned_geometry() {
        let input = codec::encode_test_png(48, 32);
        for endpoint in Endpoint::ALL {
            for model in endpoint.models() {
                let placement = if endpoint.resizes() {
                    Placement::compute(48, 32, Some(96), Some(60), false).unwrap()
                } else {
                    Placement::identity(48, 32)
                };
                let job = Job {
                    endpoint,
                    model,
                    settings: &Settings::default(),
                    placement,
                    format: OutputFormat::Png,
                };
                let seen = Mutex::new(Vec::new());
                let out = process(&input, &job, &Cancel::new(), &|f| {
                    seen.lock().unwrap().push(f)
                })
                .unwrap();
                let info = codec::probe(&out).unwrap();
                assert_eq!(
                    (info.width, info.height),
                    (placement.width, placement.height),
                    "{endpoint:?} {model}"
                );
                let seen = seen.into_inner().unwrap();
                assert_eq!(seen.last(), Some(&1.0));
                assert!(
                    seen.windows(2).all(|w| w[0] <= w[1] + 0.2),
                    "{endpoint:?} {model}: {seen:?}"
                );
            }
        }
    }

    #[test]
    fn operations_change_the_pixels() {
        let input = codec::encode_test_png(48, 32);
        let original = codec::decode(&input).unwrap();
        for endpoint in [Endpoint::Sharpen, Endpoint::Lighting, Endpoint::Matting] {
            for model in endpoint.models() {
                let job = Job {
                    endpoint,
                    model,
                    settings: &Settings::default(),
                    placement: Placement::identity(48, 32),
                    format: OutputFormat::Png,
                };
                let out = codec::decode(&process(&input, &job, &Cancel::new(), &|_| {}).unwrap())
                    .unwrap();
                assert!(out != original, "{endpoint:?} {model} returned its input");
            }
        }
    }

    #[test]
    fn a_fired_token_stops_the_job() {
        let input = codec::encode_test_png(48, 32);
        let cancel = Cancel::new();
        cancel.fire();
        let job = Job {
            endpoint: Endpoint::Denoise,
            model: "Normal",
            settings: &Settings::default(),
            placement: Placement::identity(48, 32),
            format: OutputFormat::Jpeg,
        };
        assert!(matches!(
            process(&input, &job, &cancel, &|_| {}),
            Err(ImagingError::Cancelled)
        ));
    }
}
