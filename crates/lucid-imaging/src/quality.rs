//! Measures behind the quality tests and benchmarks: seeded Gaussian noise and PSNR.

/// Adds Gaussian noise of standard deviation `sigma` (on the 0–255 scale) to 8-bit samples,
/// rounding and clamping as a camera or a file would. The same seed gives the same noise.
pub fn add_noise(samples: &[u8], sigma: f64, seed: u64) -> Vec<u8> {
    let mut state = seed;
    // SplitMix64: small, fast and good enough to drive Box–Muller.
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    samples
        .iter()
        .map(|&v| {
            let (u1, u2) = (uniform().max(f64::MIN_POSITIVE), uniform());
            let n = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (v as f64 + sigma * n).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// Peak signal-to-noise ratio of two 8-bit images of the same size, in dB.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images differ in size");
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_has_the_asked_deviation_and_is_repeatable() {
        let flat = vec![128u8; 100_000];
        let noisy = add_noise(&flat, 15.0, 7);
        assert_eq!(noisy, add_noise(&flat, 15.0, 7));
        assert_ne!(noisy, add_noise(&flat, 15.0, 8));
        let var = noisy
            .iter()
            .map(|v| (*v as f64 - 128.0).powi(2))
            .sum::<f64>()
            / 1e5;
        assert!((var.sqrt() - 15.0).abs() < 0.2, "{}", var.sqrt());
        // PSNR of σ = 15 noise is 20·log10(255/15) ≈ 24.6 dB.
        assert!((psnr(&flat, &noisy) - 24.6).abs() < 0.1);
    }
}
