//! Dust & scratch removal: pixels that stand out from their neighbourhood median by far more
//! than the noise level are specks; they (and a one-pixel ring) are filled from the median.

use lucid_core::request::Settings;

use crate::raster::{Raster, median, noise_sigma};
use crate::{Ctx, ImagingError};

pub fn run(ctx: &Ctx, model: &str, s: &Settings, mut img: Raster) -> Result<Raster, ImagingError> {
    let (w, h, c) = (img.width, img.height, img.channels);
    let (radius, k) = if model == "Dust-Scratch V2" {
        (3, 4.0)
    } else {
        (2, 6.0)
    };
    let sensitivity = s.number("strength", 0.5) as f32 * 2.0;
    ctx.plan_passes(2 + c);
    let y = img.luma();
    let med = median(ctx, &y, w, h, radius)?;
    let sigma = noise_sigma(&y, w, h);
    let threshold = (k * sigma + 0.06) / sensitivity.max(0.1);
    let mut mask: Vec<bool> = y
        .iter()
        .zip(&med)
        .map(|(v, m)| (v - m).abs() > threshold)
        .collect();
    // Grow by one pixel: speck edges are softened by the scan and must go too.
    let core = mask.clone();
    for yy in 0..h {
        for xx in 0..w {
            if core[yy * w + xx] {
                for (dx, dy) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                    let (nx, ny) = (xx as i64 + dx, yy as i64 + dy);
                    if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h {
                        mask[ny as usize * w + nx as usize] = true;
                    }
                }
            }
        }
    }
    for ch in 0..3 {
        let plane: Vec<f32> = img.data.iter().skip(ch).step_by(c).copied().collect();
        let filled = median(ctx, &plane, w, h, radius)?;
        for (i, m) in mask.iter().enumerate() {
            if *m {
                img.data[i * c + ch] = filled[i];
            }
        }
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;

    #[test]
    fn removes_a_white_speck_from_grey() {
        let (w, h) = (32, 32);
        let mut img = Raster {
            width: w,
            height: h,
            channels: 3,
            data: vec![0.4; w * h * 3],
        };
        for ch in 0..3 {
            img.data[(16 * w + 16) * 3 + ch] = 1.0;
        }
        let cancel = Cancel::new();
        let ctx = Ctx::new(&cancel, &|_| {}, (0.0, 1.0));
        let out = run(&ctx, "Dust-Scratch", &Settings::default(), img).unwrap();
        assert!((out.data[(16 * w + 16) * 3] - 0.4).abs() < 1e-3);
    }
}
