//! Credits and time estimates from output megapixels (topaz-image-api.md §7).

use crate::model::Endpoint;

/// `max(1, ceil(output MP / MP per credit))`.
pub fn credits_for(endpoint: Endpoint, out_w: u32, out_h: u32) -> i64 {
    let mp = out_w as f64 * out_h as f64 / 1e6;
    ((mp / endpoint.mp_per_credit()).ceil() as i64).max(1)
}

/// Seconds one worker needs for a job, from the input and output megapixels. The per-megapixel
/// costs are measured on lucid's own operations on a 2-core machine, rounded up.
pub fn work_seconds(endpoint: Endpoint, model: &str, in_mp: f64, out_mp: f64) -> f64 {
    let per_mp = match endpoint {
        Endpoint::Enhance | Endpoint::Tool => 0.25,
        Endpoint::EnhanceGen => 0.5,
        Endpoint::Sharpen if matches!(model, "Lens Blur" | "Lens Blur V2" | "Motion Blur") => 1.5,
        Endpoint::Sharpen | Endpoint::SharpenGen => 0.4,
        Endpoint::Denoise | Endpoint::DenoiseGen => 0.8,
        Endpoint::RestoreGen => 0.6,
        Endpoint::Lighting => 0.3,
        Endpoint::Matting => 0.4,
    };
    0.2 + per_mp * in_mp.max(out_mp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_match_the_published_table() {
        // 24 MP per credit: 1, 4, 8, 16, 24, 32, 40, 50, 64, 100 MP → 1,1,1,1,1,2,2,3,3,5.
        let table = [
            (1, 1),
            (4, 1),
            (8, 1),
            (16, 1),
            (24, 1),
            (32, 2),
            (40, 2),
            (50, 3),
            (64, 3),
            (100, 5),
        ];
        for (mp, credits) in table {
            assert_eq!(
                credits_for(Endpoint::Enhance, mp * 1000, 1000),
                credits,
                "{mp} MP"
            );
        }
        assert_eq!(credits_for(Endpoint::EnhanceGen, 4000, 1001), 2);
    }
}
