//! One module per family of models. [`run`] dispatches a job's endpoint and model to its
//! operation; [`describe`] says in one line what each model does in lucid (README, OpenAPI).

use lucid_core::Endpoint;
use lucid_core::geometry::Placement;
use lucid_core::request::Settings;

use crate::codec::{self, RowSource};
use crate::raster::Raster;
use crate::{Ctx, ImagingError};

pub mod denoise;
pub mod enhance;
pub mod lighting;
pub mod matting;
pub mod restore;
pub mod sharpen;

/// An operation's result: the whole image, or its rows computed as they are read (the
/// encoder then holds only a band of the output at a time), as working samples or as the
/// bytes the encoder writes.
pub enum Output<'a> {
    Raster(Raster),
    Rows(Box<dyn RowSource + Send + 'a>),
    ByteRows(Box<dyn RowSource<u8> + Send + 'a>),
}

impl Output<'_> {
    /// The whole image, reading every row of a streamed result.
    pub fn into_raster(self) -> Result<Raster, ImagingError> {
        match self {
            Output::Raster(r) => Ok(r),
            Output::Rows(mut rows) => codec::read_all(&mut *rows),
            Output::ByteRows(mut rows) => codec::read_all(&mut *rows).map(Raster::widened),
        }
    }
}

/// An operation on the decoded 8-bit image that computes its output band by band, from the
/// bytes to bytes: neither the image nor the encoder's bands are ever floats.
pub(crate) trait ByteBands: Send {
    /// The output's width and height for `bytes`: theirs, unless the operation resizes.
    fn size(&self, bytes: &Raster<u8>) -> (usize, usize) {
        (bytes.width, bytes.height)
    }

    /// Fills `band` with the output rows from `y0` of `bytes`, reporting nothing (see
    /// [`Ctx::quiet`]).
    fn fill(
        &mut self,
        ctx: &Ctx,
        bytes: &Raster<u8>,
        y0: usize,
        band: &mut Raster<u8>,
    ) -> Result<(), ImagingError>;
}

/// `op`'s output of `bytes`, computed a band at a time as the encoder asks, as one pass.
pub(crate) fn byte_bands<'a>(
    ctx: &'a Ctx<'a>,
    bytes: Raster<u8>,
    op: impl ByteBands + 'a,
) -> Output<'a> {
    ctx.plan_passes(1);
    Output::ByteRows(Box::new(FromBytes { ctx, bytes, op }))
}

struct FromBytes<'a, B> {
    ctx: &'a Ctx<'a>,
    bytes: Raster<u8>,
    op: B,
}

impl<B: ByteBands> RowSource<u8> for FromBytes<'_, B> {
    fn width(&self) -> usize {
        self.op.size(&self.bytes).0
    }

    fn height(&self) -> usize {
        self.op.size(&self.bytes).1
    }

    fn channels(&self) -> usize {
        self.bytes.channels
    }

    fn fill(&mut self, y0: usize, band: &mut Raster<u8>) -> Result<(), ImagingError> {
        self.ctx.check()?;
        self.op.fill(&self.ctx.quiet(), &self.bytes, y0, band)?;
        self.ctx
            .advance((y0 + band.height) as f32 / self.height() as f32);
        Ok(())
    }
}

/// Runs the model's operation. The result has the placement's size.
pub fn run<'a>(
    ctx: &'a Ctx<'a>,
    endpoint: Endpoint,
    model: &str,
    settings: &Settings,
    img: Raster,
    placement: &Placement,
) -> Result<Output<'a>, ImagingError> {
    let whole = |r: Result<Raster, ImagingError>| r.map(Output::Raster);
    match endpoint {
        Endpoint::Enhance | Endpoint::EnhanceGen | Endpoint::Tool => {
            enhance::run(ctx, endpoint, model, settings, img, placement)
        }
        Endpoint::Sharpen | Endpoint::SharpenGen => sharpen::run(ctx, model, settings, img),
        Endpoint::Denoise | Endpoint::DenoiseGen => whole(denoise::run(ctx, model, settings, img)),
        Endpoint::RestoreGen => whole(restore::run(ctx, model, settings, img)),
        Endpoint::Lighting => whole(lighting::run(ctx, model, settings, img)),
        Endpoint::Matting => matting::run(ctx, model, settings, img),
    }
}

/// [`run`] on the decoded 8-bit image, for the operations that stream their rows from it
/// without a float copy of the whole image (the unsharp-mask sharpen models, White Balance,
/// Adjust, Colorize, the denoise models without deblurring and, in the pipeline, the plain
/// resample); the others hand the bytes back.
pub fn run_on_bytes<'a>(
    ctx: &'a Ctx<'a>,
    endpoint: Endpoint,
    model: &str,
    settings: &Settings,
    bytes: Raster<u8>,
) -> Result<Output<'a>, Raster<u8>> {
    match endpoint {
        Endpoint::Sharpen | Endpoint::SharpenGen => {
            sharpen::run_on_bytes(ctx, model, settings, bytes)
        }
        Endpoint::Lighting => lighting::run_on_bytes(ctx, model, settings, bytes),
        Endpoint::Denoise | Endpoint::DenoiseGen => {
            denoise::run_on_bytes(ctx, model, settings, bytes)
        }
        _ => Err(bytes),
    }
}

/// The heap [`run_on_bytes`] takes beside the decoded bytes and the encoder's bands, for a
/// `width`-wide image; `None` when it hands the bytes back.
pub(crate) fn bytes_memory(
    endpoint: Endpoint,
    model: &str,
    settings: &Settings,
    width: usize,
    channels: usize,
) -> Option<u64> {
    match endpoint {
        Endpoint::Sharpen | Endpoint::SharpenGen => {
            sharpen::bytes_memory(model, settings, width, channels)
        }
        Endpoint::Lighting => lighting::bytes_memory(model),
        Endpoint::Denoise | Endpoint::DenoiseGen => {
            denoise::bytes_memory(model, settings, width, channels)
        }
        _ => None,
    }
}

/// Whether the model makes a grey image coloured (Colorize); every other keeps grey grey, so
/// its PNG and TIFF outputs of a grey input are written grey.
pub fn colours_grey(endpoint: Endpoint, model: &str) -> bool {
    endpoint == Endpoint::Lighting && model == "Colorize"
}

/// What the model does in lucid, in one sentence.
pub fn describe(endpoint: Endpoint, model: &str) -> &'static str {
    match (endpoint, model) {
        (Endpoint::Enhance, "Standard V2") => {
            "Learned ×2 super-resolution (lucid's own network, on luma; see Learned upscaling) repeated until near the output's scale, then an exact Lanczos-3 resample; light edge-preserving denoise and deblocking first, scaled by the measured noise. With `upscaler=lanczos`, and past the network's 64 MP limit: Lanczos-3 and two rounds of iterative back-projection (unsharp masking for crops, letterboxes and outputs over 100 MP)."
        }
        (Endpoint::Enhance, "Low Resolution V2") => {
            "Like Standard V2 with stronger deblocking and denoise before the upscale (three back-projection rounds with `upscaler=lanczos`), for small or compressed sources."
        }
        (Endpoint::Enhance, "CGI") => {
            "Learned ×2 super-resolution and Lanczos-3 without denoising, for flat art and renders (`upscaler=lanczos`: three back-projection rounds, zero-threshold unsharp masking where back-projection does not apply)."
        }
        (Endpoint::Enhance, "High Fidelity V2") => {
            "Learned ×2 super-resolution and Lanczos-3 with minimal smoothing, keeping the source's texture (`upscaler=lanczos`: one back-projection round)."
        }
        (Endpoint::Enhance, "Text Refine") => {
            "Learned ×2 super-resolution and Lanczos-3 with deblocking before and a contrast lift after, for text and line art (`upscaler=lanczos`: four back-projection rounds)."
        }
        (Endpoint::EnhanceGen, _) => {
            "Learned ×2 super-resolution and Lanczos-3 (back-projection with `upscaler=lanczos`), then multi-scale detail enhancement (two unsharp passes at fine and medium radii) scaled by creativity/detail."
        }
        (Endpoint::Tool, _) => {
            "Learned ×2 super-resolution of colour premultiplied by alpha (luma through the network), alpha upscaled separately (bicubic), then Lanczos-3 to the exact size; `upscaler=lanczos`: Lanczos-3 of premultiplied RGBA and two back-projection rounds."
        }
        (Endpoint::Sharpen, "Standard") => {
            "Unsharp mask on luma (sigma 1.0, amount 0.8) with a noise threshold."
        }
        (Endpoint::Sharpen, "Strong") => "Unsharp mask on luma (sigma 1.2, amount 1.6).",
        (Endpoint::Sharpen, "Natural") => {
            "Gentle unsharp mask (sigma 0.8, amount 0.5) with a higher noise threshold."
        }
        (Endpoint::Sharpen, "Wildlife") => {
            "Fine-radius unsharp mask (sigma 0.6, amount 1.1) for fur and feathers."
        }
        (Endpoint::Sharpen, "Portrait") => {
            "Medium unsharp mask with a high threshold so skin stays smooth while edges sharpen."
        }
        (Endpoint::Sharpen, "Refocus") => {
            "Richardson-Lucy deconvolution with a Gaussian PSF (sigma 1.0, 10 iterations)."
        }
        (Endpoint::Sharpen, "Lens Blur") => {
            "Richardson-Lucy deconvolution with a Gaussian PSF (sigma 1.5, 12 iterations)."
        }
        (Endpoint::Sharpen, "Lens Blur V2") => {
            "Light denoise, then Richardson-Lucy deconvolution with a Gaussian PSF (sigma 2.0, 15 iterations)."
        }
        (Endpoint::Sharpen, "Motion Blur") => {
            "Estimates the blur direction from the gradient structure tensor and deconvolves a line PSF along it (Richardson-Lucy)."
        }
        (Endpoint::SharpenGen, _) => {
            "Richardson-Lucy deconvolution (Gaussian PSF, sigma 1.5) followed by fine unsharp masking, scaled by focus_boost."
        }
        (Endpoint::Denoise, "Normal") => {
            "DCT denoising: colour to opponent planes, hard thresholding (2.7 sigma) of overlapping 8x8 block DCTs, then an empirical Wiener pass (every block on the luma-like plane, every third on the two colour differences); sigma estimated from the flattest blocks' highest frequencies."
        }
        (Endpoint::Denoise, "Strong") => {
            "DCT denoising as Normal with a 3 sigma threshold: smoother, less residual grain."
        }
        (Endpoint::Denoise, "Extreme") => {
            "DCT denoising as Normal with a 3.4 sigma threshold, for very noisy images."
        }
        (Endpoint::DenoiseGen, _) => {
            "DCT denoising with a 3 sigma threshold followed by a light unsharp mask to restore edges."
        }
        (Endpoint::RestoreGen, "Dust-Scratch") => {
            "Finds features that stand out in a 7x7 morphological top-hat of luma, keeps those shaped like dust (specks up to 6 px) or scratches (long, at most 3 px thick) that stand clear of their surroundings (not eyes, teeth or texture), and fills them from the pixels around them."
        }
        (Endpoint::RestoreGen, _) => {
            "Like Dust-Scratch with an 11x11 top-hat, for larger dust: specks up to 10 px."
        }
        (Endpoint::Lighting, "Adjust") => {
            "Automatic levels (0.5th-99.5th percentile stretch of luma) and a gamma that brings mid-tones to 0.45."
        }
        (Endpoint::Lighting, "Adjust V2") => {
            "Adjust, plus local contrast: contrast-limited adaptive histogram equalisation (CLAHE, 8 tiles across the shorter side, clip 2.5) of luma, 60 % strength."
        }
        (Endpoint::Lighting, "White Balance") => {
            "Gray-world white balance: per-channel gains that neutralise the average colour of the unclipped pixels."
        }
        (Endpoint::Lighting, "Colorize") => {
            "Maps each pixel's luma onto a natural duotone palette (cool shadows, warm mid-tones and highlights), keeping luma."
        }
        (Endpoint::Matting, "RemoveBG") => {
            "The Object segmentation with the matte hardened to a crisp cut-out (a ramp of a few pixels at the edge); background made transparent."
        }
        (Endpoint::Matting, _) => {
            "Foreground alpha matte: GrabCut segmentation (colour mixtures of background and subject, minimum graph cut, five rounds) at 400 px, started from the image border (where its colours recur on the other sides), then a guided filter on colour fits the matte's edge to the full-size image; RGBA PNG (mode=mask gives the mask)."
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_described() {
        for e in Endpoint::ALL {
            for m in e.models() {
                assert!(!describe(e, m).is_empty(), "{e:?} {m}");
            }
        }
    }
}
