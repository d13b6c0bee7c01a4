//! The model catalogue: every submit endpoint, its category, its models and defaults, its output
//! formats and limits (topaz-image-api.md §3.3, §4, §8). Adding an endpoint is one enum arm.

use serde::Serialize;

/// A submit endpoint under `/image/v1` (`/{slug}/async`, and `/{slug}` for the legacy sync ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Endpoint {
    Enhance,
    EnhanceGen,
    Sharpen,
    SharpenGen,
    Denoise,
    DenoiseGen,
    RestoreGen,
    Lighting,
    Matting,
    Tool,
}

impl Endpoint {
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Enhance,
        Endpoint::EnhanceGen,
        Endpoint::Sharpen,
        Endpoint::SharpenGen,
        Endpoint::Denoise,
        Endpoint::DenoiseGen,
        Endpoint::RestoreGen,
        Endpoint::Lighting,
        Endpoint::Matting,
        Endpoint::Tool,
    ];

    /// The path segment: `/image/v1/{slug}/async`.
    pub fn slug(self) -> &'static str {
        match self {
            Endpoint::Enhance => "enhance",
            Endpoint::EnhanceGen => "enhance-gen",
            Endpoint::Sharpen => "sharpen",
            Endpoint::SharpenGen => "sharpen-gen",
            Endpoint::Denoise => "denoise",
            Endpoint::DenoiseGen => "denoise-gen",
            Endpoint::RestoreGen => "restore-gen",
            Endpoint::Lighting => "lighting",
            Endpoint::Matting => "matting",
            Endpoint::Tool => "tool",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.slug() == slug)
    }

    /// `StatusResponse.category` and the estimate `category` enum.
    pub fn category(self) -> &'static str {
        match self {
            Endpoint::Enhance | Endpoint::EnhanceGen => "Enhance",
            Endpoint::Sharpen | Endpoint::SharpenGen => "Sharpen",
            Endpoint::Denoise | Endpoint::DenoiseGen => "Denoise",
            Endpoint::RestoreGen => "Restore",
            Endpoint::Lighting => "Lighting",
            Endpoint::Matting => "Matting",
            Endpoint::Tool => "Tool",
        }
    }

    /// `StatusResponse.model_type`: `GAN` for the standard models, `Generative` for the `-gen` ones.
    pub fn model_type(self) -> &'static str {
        if self.is_generative() {
            "Generative"
        } else {
            "GAN"
        }
    }

    pub fn is_generative(self) -> bool {
        matches!(
            self,
            Endpoint::EnhanceGen
                | Endpoint::SharpenGen
                | Endpoint::DenoiseGen
                | Endpoint::RestoreGen
        )
    }

    /// Accepted `model` strings: the spec 1.2.0 enum first, then 1.1.0 and model-page names.
    pub fn models(self) -> &'static [&'static str] {
        match self {
            Endpoint::Enhance => &[
                "Standard V2",
                "Low Resolution V2",
                "CGI",
                "High Fidelity V2",
                "Text Refine",
            ],
            Endpoint::EnhanceGen => &[
                "Redefine",
                "Standard MAX",
                "Recovery V2",
                "Wonder",
                "Recovery",
                "Recover 3",
                "Wonder 2",
                "Wonder 3",
                "Wonder 3.5",
                "Bloom 2",
                "Bloom Realism",
            ],
            Endpoint::Sharpen => &[
                "Standard",
                "Strong",
                "Lens Blur",
                "Lens Blur V2",
                "Motion Blur",
                "Natural",
                "Refocus",
                "Wildlife",
                "Portrait",
            ],
            Endpoint::SharpenGen => &["Super Focus V2", "Super Focus"],
            Endpoint::Denoise => &["Normal", "Strong", "Extreme"],
            Endpoint::DenoiseGen => &["Denoise Max"],
            Endpoint::RestoreGen => &["Dust-Scratch", "Dust-Scratch V2"],
            Endpoint::Lighting => &["Adjust", "Adjust V2", "White Balance", "Colorize"],
            Endpoint::Matting => &["Object", "RemoveBG"],
            Endpoint::Tool => &["Transparency Upscale"],
        }
    }

    /// The model used when the request names none (spec defaults).
    pub fn default_model(self) -> &'static str {
        self.models()[0]
    }

    /// Looks a model name up exactly, then ignoring case; returns the catalogue spelling.
    pub fn find_model(self, name: &str) -> Option<&'static str> {
        let models = self.models();
        models
            .iter()
            .find(|m| **m == name)
            .or_else(|| models.iter().find(|m| m.eq_ignore_ascii_case(name)))
            .copied()
    }

    /// Whether `output_width`/`output_height`/`crop_to_fill` apply; other endpoints keep the
    /// input size (the estimate prose: "only applicable for Enhance models").
    pub fn resizes(self) -> bool {
        matches!(
            self,
            Endpoint::Enhance | Endpoint::EnhanceGen | Endpoint::Tool
        )
    }

    /// Matting and tool accept and produce PNG only.
    pub fn png_only(self) -> bool {
        matches!(self, Endpoint::Matting | Endpoint::Tool)
    }

    pub fn default_format(self) -> OutputFormat {
        if self.png_only() {
            OutputFormat::Png
        } else {
            OutputFormat::Jpeg
        }
    }

    /// Whether a legacy synchronous `POST /image/v1/{slug}` exists (1.1.0).
    pub fn has_sync(self) -> bool {
        matches!(
            self,
            Endpoint::Enhance | Endpoint::Sharpen | Endpoint::Denoise | Endpoint::Lighting
        )
    }

    /// Largest output in megapixels (§8): 512 MP for the standard models, 256 MP generative.
    pub fn max_output_mp(self) -> u32 {
        if self.is_generative() { 256 } else { 512 }
    }

    /// Output megapixels covered by one credit (§7).
    pub fn mp_per_credit(self) -> f64 {
        match self {
            Endpoint::EnhanceGen => 4.0,
            Endpoint::SharpenGen => 20.0,
            _ => 24.0,
        }
    }

    /// Largest upscale factor per side, where the model pages state one (Transparency Upscale: 4×).
    pub fn max_upscale(self) -> Option<u32> {
        matches!(self, Endpoint::Tool).then_some(4)
    }

    /// Finds the endpoint for an estimate's `category` and `model`. `generative` selects the
    /// `/estimate-gen` catalogue; `None` accepts either.
    pub fn for_estimate(
        category: Option<&str>,
        model: &str,
        generative: Option<bool>,
    ) -> Option<(Endpoint, &'static str)> {
        Self::ALL
            .into_iter()
            .filter(|e| generative.is_none_or(|g| e.is_generative() == g))
            .filter(|e| category.is_none_or(|c| e.category().eq_ignore_ascii_case(c)))
            .find_map(|e| e.find_model(model).map(|m| (e, m)))
    }
}

/// Output containers (`output_format`). `jpg` and `tif` are accepted spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Tiff,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(OutputFormat::Jpeg),
            "png" => Some(OutputFormat::Png),
            "tiff" | "tif" => Some(OutputFormat::Tiff),
            _ => None,
        }
    }

    /// The canonical name reported in `output_format`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Tiff => "tiff",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Tiff => "tiff",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Tiff => "image/tiff",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        assert_eq!(Endpoint::Enhance.default_model(), "Standard V2");
        assert_eq!(Endpoint::EnhanceGen.default_model(), "Redefine");
        assert_eq!(Endpoint::Sharpen.default_model(), "Standard");
        assert_eq!(Endpoint::Denoise.default_model(), "Normal");
        assert_eq!(Endpoint::RestoreGen.default_model(), "Dust-Scratch");
        assert_eq!(Endpoint::Lighting.default_model(), "Adjust");
        assert_eq!(Endpoint::Matting.default_model(), "Object");
        assert_eq!(Endpoint::Tool.default_model(), "Transparency Upscale");
        assert_eq!(Endpoint::Matting.default_format(), OutputFormat::Png);
    }

    #[test]
    fn estimate_lookup_disambiguates_strong_by_category() {
        assert_eq!(
            Endpoint::for_estimate(Some("Denoise"), "Strong", Some(false)),
            Some((Endpoint::Denoise, "Strong"))
        );
        assert_eq!(
            Endpoint::for_estimate(Some("Sharpen"), "Strong", Some(false)),
            Some((Endpoint::Sharpen, "Strong"))
        );
        assert_eq!(Endpoint::for_estimate(None, "Redefine", Some(false)), None);
        assert_eq!(
            Endpoint::for_estimate(None, "Dust-Scratch", Some(true)),
            Some((Endpoint::RestoreGen, "Dust-Scratch"))
        );
    }

    #[test]
    fn slugs_round_trip() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_slug(e.slug()), Some(e));
            assert!(!e.models().is_empty());
        }
    }
}
