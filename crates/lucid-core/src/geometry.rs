//! Output geometry (topaz-image-api.md §3.1): one side given → the other follows the input's
//! aspect ratio; both given → the image is scaled to fit and letterboxed, or scaled to cover and
//! centre-cropped with `crop_to_fill`; neither → the input size.

use crate::error::ApiError;

/// Largest side, in pixels, of any input or output (spec min/max on every size field).
pub const MAX_SIDE: u32 = 32000;

/// Where the scaled input lands in the output canvas. A positive offset letterboxes; a negative
/// offset crops. The imaging pipeline renders exactly this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub width: u32,
    pub height: u32,
    pub scaled_width: u32,
    pub scaled_height: u32,
    pub offset_x: i64,
    pub offset_y: i64,
}

impl Placement {
    /// The output is the input, unscaled.
    pub fn identity(width: u32, height: u32) -> Self {
        Placement {
            width,
            height,
            scaled_width: width,
            scaled_height: height,
            offset_x: 0,
            offset_y: 0,
        }
    }

    pub fn megapixels(&self) -> f64 {
        self.width as f64 * self.height as f64 / 1e6
    }

    /// Whether the canvas has borders not covered by the image.
    pub fn is_letterboxed(&self) -> bool {
        self.offset_x > 0 || self.offset_y > 0
    }

    /// Computes the placement for an input of `in_w`×`in_h` and the requested size.
    pub fn compute(
        in_w: u32,
        in_h: u32,
        out_w: Option<u32>,
        out_h: Option<u32>,
        crop_to_fill: bool,
    ) -> Result<Self, ApiError> {
        let (iw, ih) = (in_w as f64, in_h as f64);
        let side = |v: f64| (v.round() as u64).max(1);
        match (out_w, out_h) {
            (None, None) => Ok(Self::identity(in_w, in_h)),
            (Some(w), None) => {
                let h = side(ih * w as f64 / iw);
                check_side(h, false)?;
                Ok(Self::identity(w, h as u32))
            }
            (None, Some(h)) => {
                let w = side(iw * h as f64 / ih);
                check_side(w, true)?;
                Ok(Self::identity(w as u32, h))
            }
            (Some(w), Some(h)) => {
                let (sx, sy) = (w as f64 / iw, h as f64 / ih);
                let scale = if crop_to_fill { sx.max(sy) } else { sx.min(sy) };
                // Within a pixel of the box, the aspect ratios are the same: no bars, no crop.
                let sw = side(iw * scale).clamp(1, if crop_to_fill { u64::MAX } else { w as u64 });
                let sh = side(ih * scale).clamp(1, if crop_to_fill { u64::MAX } else { h as u64 });
                let (sw, sh) = if sw.abs_diff(w as u64) <= 1 && sh.abs_diff(h as u64) <= 1 {
                    (w as u64, h as u64)
                } else {
                    (sw, sh)
                };
                let sw = sw.min(u32::MAX as u64) as u32;
                let sh = sh.min(u32::MAX as u64) as u32;
                Ok(Placement {
                    width: w,
                    height: h,
                    scaled_width: sw,
                    scaled_height: sh,
                    offset_x: (w as i64 - sw as i64) / 2,
                    offset_y: (h as i64 - sh as i64) / 2,
                })
            }
        }
    }
}

fn check_side(v: u64, is_width: bool) -> Result<(), ApiError> {
    if v > MAX_SIDE as u64 {
        return Err(invalid_side(is_width));
    }
    Ok(())
}

/// The spec's BadRequestImage message for a side out of range.
pub fn invalid_side(is_width: bool) -> ApiError {
    ApiError::bad_request(if is_width {
        "Invalid output width."
    } else {
        "Invalid output height."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_side_is_proportional() {
        let p = Placement::compute(1280, 720, Some(1920), None, false).unwrap();
        assert_eq!((p.width, p.height), (1920, 1080));
        let p = Placement::compute(1280, 720, None, Some(360), false).unwrap();
        assert_eq!((p.width, p.height), (640, 360));
        assert_eq!(p, Placement::identity(640, 360));
    }

    #[test]
    fn both_sides_letterbox_or_crop() {
        let p = Placement::compute(200, 100, Some(300), Some(300), false).unwrap();
        assert_eq!(
            (p.width, p.height, p.scaled_width, p.scaled_height),
            (300, 300, 300, 150)
        );
        assert_eq!((p.offset_x, p.offset_y), (0, 75));
        assert!(p.is_letterboxed());
        let p = Placement::compute(200, 100, Some(300), Some(300), true).unwrap();
        assert_eq!((p.scaled_width, p.scaled_height), (600, 300));
        assert_eq!((p.offset_x, p.offset_y), (-150, 0));
        assert!(!p.is_letterboxed());
    }

    #[test]
    fn same_aspect_is_neither() {
        let p = Placement::compute(4000, 3000, Some(8000), Some(6000), false).unwrap();
        assert_eq!(p, Placement::identity(8000, 6000));
    }

    #[test]
    fn derived_side_over_the_limit_is_rejected() {
        let e = Placement::compute(10, 1000, Some(1000), None, false).unwrap_err();
        assert_eq!(e.message, "Invalid output height.");
    }
}
