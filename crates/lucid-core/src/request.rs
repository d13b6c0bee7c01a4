//! Submit and estimate requests, parsed from string fields into typed values (parse, don't
//! validate). Every field arrives as a string; names may be snake_case or camelCase; unknown
//! fields are ignored (topaz-image-api.md §1.3, §3.1, §4).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::credits::{credits_for, work_seconds};
use crate::error::ApiError;
use crate::geometry::{MAX_SIDE, Placement, invalid_side};
use crate::model::{Endpoint, OutputFormat};

/// Form fields with their names normalised to snake_case (`outputWidth` → `output_width`).
/// When both spellings are sent, the snake_case one wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(BTreeMap<String, String>);

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: &str, value: String) {
        let snake = to_snake_case(name);
        if snake != name && self.0.contains_key(&snake) {
            return;
        }
        self.0.insert(snake, value);
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// Every field, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Builds fields from a JSON object (the estimate endpoints accept JSON); scalars become
    /// their string form, as they would arrive in a form.
    pub fn from_json(obj: &Map<String, Value>) -> Self {
        let mut f = Fields::new();
        for (k, v) in obj {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            f.insert(k, s);
        }
        f
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut f = Fields::new();
        for (k, v) in iter {
            f.insert(k.as_ref(), v.into());
        }
        f
    }
}

fn to_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// How a model setting is parsed and bounded.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Number(f64, f64),
    Integer(i64, i64),
    Bool,
    /// `detail`: a 0–1 number in older clients, a boolean in newer pages.
    NumberOrBool(f64, f64),
    Text(usize),
    OneOf(&'static [&'static str]),
}

/// Every model setting lucid recognises (§4), snake_case. Unknown settings are ignored.
const SETTINGS: &[(&str, Kind)] = &[
    ("sharpen", Kind::Number(0.0, 1.0)),
    ("denoise", Kind::Number(0.0, 1.0)),
    ("fix_compression", Kind::Number(0.0, 1.0)),
    ("strength", Kind::Number(0.01, 1.0)),
    ("face_enhancement", Kind::Bool),
    ("face_enhancement_strength", Kind::Number(0.0, 1.0)),
    ("face_enhancement_creativity", Kind::Number(0.0, 1.0)),
    (
        "subject_detection",
        Kind::OneOf(&["All", "Foreground", "Background"]),
    ),
    ("deblur_strength", Kind::Number(0.0, 1.0)),
    ("denoise_strength", Kind::Number(0.0, 1.0)),
    ("decompression_strength", Kind::Number(0.0, 1.0)),
    ("opacity", Kind::Number(0.0, 1.0)),
    ("recovery_strength", Kind::Number(0.0, 1.0)),
    ("prompt", Kind::Text(1024)),
    ("autoprompt", Kind::Bool),
    ("creativity", Kind::Integer(1, 9)),
    ("texture", Kind::Integer(1, 5)),
    ("detail", Kind::NumberOrBool(0.0, 1.0)),
    ("detail_strength", Kind::Number(0.0, 10.0)),
    ("minor_deblur", Kind::Number(0.01, 1.0)),
    ("original_detail", Kind::Number(0.0, 1.0)),
    ("focus_boost", Kind::Number(0.25, 1.0)),
    ("seed", Kind::Integer(0, 2_147_483_647)),
    ("color_preservation", Kind::Bool),
    ("face_preservation", Kind::Bool),
    (
        "enhancement_strength",
        Kind::OneOf(&["low", "medium", "high"]),
    ),
    ("grain", Kind::Bool),
    ("grain_density", Kind::Number(0.0, 1.0)),
    ("grain_model", Kind::OneOf(&["silver", "gaussian", "grey"])),
    ("grain_size", Kind::Integer(1, 5)),
    ("grain_strength", Kind::Number(0.0, 1.0)),
    ("mode", Kind::Text(64)),
    // lucid's own: `lanczos` turns the learned ×2 upscaling of the enhance models off.
    ("upscaler", Kind::OneOf(&["learned", "lanczos"])),
];

/// Every model setting as the web console's forms show it: `{name, kind, …bounds}`, where kind
/// is `number`, `integer`, `bool`, `number_or_bool`, `text` or `one_of`.
pub fn settings_catalogue() -> Vec<Value> {
    SETTINGS
        .iter()
        .map(|(name, kind)| match *kind {
            Kind::Number(min, max) => {
                json!({"name": name, "kind": "number", "min": min, "max": max})
            }
            Kind::Integer(min, max) => {
                json!({"name": name, "kind": "integer", "min": min, "max": max})
            }
            Kind::Bool => json!({"name": name, "kind": "bool"}),
            Kind::NumberOrBool(min, max) => {
                json!({"name": name, "kind": "number_or_bool", "min": min, "max": max})
            }
            Kind::Text(max_chars) => json!({"name": name, "kind": "text", "max_chars": max_chars}),
            Kind::OneOf(options) => json!({"name": name, "kind": "one_of", "options": options}),
        })
        .collect()
}

/// The recognised model settings of one request, typed and range-checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings(Map<String, Value>);

impl Settings {
    fn parse(fields: &Fields) -> Result<Self, ApiError> {
        let mut map = Map::new();
        for (name, kind) in SETTINGS {
            let Some(raw) = fields.get(name) else {
                continue;
            };
            let invalid = || ApiError::bad_request(format!("Invalid {}.", name.replace('_', " ")));
            let value = match *kind {
                Kind::Number(lo, hi) => Value::from(parse_number(raw, lo, hi).ok_or_else(invalid)?),
                Kind::Integer(lo, hi) => {
                    let v: i64 = raw.parse().map_err(|_| invalid())?;
                    if !(lo..=hi).contains(&v) {
                        return Err(invalid());
                    }
                    Value::from(v)
                }
                Kind::Bool => Value::from(parse_bool(raw).ok_or_else(invalid)?),
                Kind::NumberOrBool(lo, hi) => match parse_bool(raw) {
                    Some(b) => Value::from(b),
                    None => Value::from(parse_number(raw, lo, hi).ok_or_else(invalid)?),
                },
                Kind::Text(max) => {
                    if raw.chars().count() > max {
                        return Err(invalid());
                    }
                    Value::from(raw)
                }
                Kind::OneOf(options) => {
                    let v = options
                        .iter()
                        .find(|o| o.eq_ignore_ascii_case(raw))
                        .ok_or_else(invalid)?;
                    Value::from(*v)
                }
            };
            map.insert((*name).to_string(), value);
        }
        Ok(Settings(map))
    }

    /// A numeric setting, or `default` when absent. Booleans read as 0 or 1.
    pub fn number(&self, name: &str, default: f64) -> f64 {
        match self.0.get(name) {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(default),
            Some(Value::Bool(b)) => f64::from(u8::from(*b)),
            _ => default,
        }
    }

    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.0.get(name) {
            Some(Value::Bool(b)) => *b,
            _ => default,
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// `options_json`: the settings as a JSON object string.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    pub fn from_json(s: &str) -> Self {
        match serde_json::from_str(s) {
            Ok(Value::Object(m)) => Settings(m),
            _ => Settings::default(),
        }
    }
}

fn parse_number(raw: &str, lo: f64, hi: f64) -> Option<f64> {
    raw.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (lo..=hi).contains(v))
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_side(fields: &Fields, name: &str, is_width: bool) -> Result<Option<u32>, ApiError> {
    let Some(raw) = fields.get(name) else {
        return Ok(None);
    };
    // Clients send "1920" or "1920.0"; anything else, zero or over 32000 is the spec's 400.
    let v = raw
        .parse::<f64>()
        .ok()
        .filter(|v| v.fract() == 0.0 && *v >= 1.0 && *v <= MAX_SIDE as f64);
    v.map(|v| Some(v as u32))
        .ok_or_else(|| invalid_side(is_width))
}

/// Where the image of a submit comes from: exactly one of the three.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    Upload,
    SourceId(Uuid),
    SourceUrl(String),
}

/// A validated submit, before the image's size is known.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitRequest {
    pub endpoint: Endpoint,
    pub model: &'static str,
    pub output_format: OutputFormat,
    pub output_width: Option<u32>,
    pub output_height: Option<u32>,
    pub crop_to_fill: bool,
    pub settings: Settings,
    pub webhook_url: Option<String>,
    pub source: ImageSource,
}

impl SubmitRequest {
    /// Validates a submit's fields; `has_upload` says whether an `image` part was sent.
    pub fn parse(endpoint: Endpoint, fields: &Fields, has_upload: bool) -> Result<Self, ApiError> {
        let model = match fields.get("model") {
            None => endpoint.default_model(),
            Some(name) => endpoint.find_model(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid model. Supported models for {}: {}.",
                    endpoint.slug(),
                    endpoint.models().join(", ")
                ))
            })?,
        };
        let output_format = match fields.get("output_format") {
            None => endpoint.default_format(),
            Some(raw) => OutputFormat::parse(raw)
                .filter(|f| !endpoint.png_only() || *f == OutputFormat::Png)
                .ok_or_else(|| {
                    ApiError::bad_request(if endpoint.png_only() {
                        "Invalid output format. This endpoint supports png only."
                    } else {
                        "Invalid output format. Supported formats: jpeg, jpg, png, tiff, tif."
                    })
                })?,
        };
        let (output_width, output_height, crop_to_fill) = if endpoint.resizes() {
            let crop = match fields.get("crop_to_fill") {
                None => false,
                Some(raw) => {
                    parse_bool(raw).ok_or_else(|| ApiError::bad_request("Invalid crop to fill."))?
                }
            };
            (
                parse_side(fields, "output_width", true)?,
                parse_side(fields, "output_height", false)?,
                crop,
            )
        } else {
            (None, None, false)
        };
        let source_id = fields.get("source_id");
        let source_url = fields.get("source_url");
        let given = usize::from(has_upload)
            + usize::from(source_id.is_some())
            + usize::from(source_url.is_some());
        let source = match (given, source_id, source_url) {
            (0, _, _) => {
                return Err(ApiError::bad_request(
                    "No image provided. Send an image file, a source_id or a source_url.",
                ));
            }
            (n, _, _) if n > 1 => {
                return Err(ApiError::bad_request(
                    "Provide only one of image, source_id and source_url.",
                ));
            }
            (_, Some(id), _) => ImageSource::SourceId(Uuid::try_parse(id).map_err(|_| {
                ApiError::bad_request("Invalid source ID. Please ensure it is a valid UUID.")
            })?),
            (_, _, Some(url)) => ImageSource::SourceUrl(parse_url(url, "source URL")?),
            _ => ImageSource::Upload,
        };
        let webhook_url = fields
            .get("webhook_url")
            .map(|u| parse_url(u, "webhook URL"))
            .transpose()?;
        Ok(SubmitRequest {
            endpoint,
            model,
            output_format,
            output_width,
            output_height,
            crop_to_fill,
            settings: Settings::parse(fields)?,
            webhook_url,
            source,
        })
    }

    /// The output geometry once the input's size is known, with every limit checked.
    pub fn plan(&self, in_w: u32, in_h: u32, sync: bool) -> Result<Plan, ApiError> {
        plan(
            self.endpoint,
            self.model,
            in_w,
            in_h,
            self.output_width,
            self.output_height,
            self.crop_to_fill,
            sync,
        )
    }
}

fn parse_url(raw: &str, what: &str) -> Result<String, ApiError> {
    let lower = raw.to_ascii_lowercase();
    if (lower.starts_with("http://") || lower.starts_with("https://"))
        && raw.len() <= 2048
        && !raw.contains(char::is_whitespace)
    {
        Ok(raw.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid {what}. It must be an http or https URL."
        )))
    }
}

/// Largest output of a legacy synchronous request (1.1.0: use async for larger).
pub const MAX_SYNC_OUTPUT_MP: u32 = 96;

/// A job's geometry, price and expected work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub placement: Placement,
    pub credits: i64,
    pub work_secs: f64,
}

#[allow(clippy::too_many_arguments)]
fn plan(
    endpoint: Endpoint,
    model: &str,
    in_w: u32,
    in_h: u32,
    out_w: Option<u32>,
    out_h: Option<u32>,
    crop_to_fill: bool,
    sync: bool,
) -> Result<Plan, ApiError> {
    if in_w == 0 || in_h == 0 {
        return Err(ApiError::zero_dimensions());
    }
    if in_w > MAX_SIDE || in_h > MAX_SIDE {
        return Err(ApiError::bad_request(format!(
            "Invalid input dimensions. Each side must be at most {MAX_SIDE} pixels."
        )));
    }
    let placement = if endpoint.resizes() {
        Placement::compute(in_w, in_h, out_w, out_h, crop_to_fill)?
    } else {
        Placement::identity(in_w, in_h)
    };
    if let Some(factor) = endpoint.max_upscale() {
        if placement.scaled_width > in_w * factor {
            return Err(ApiError::bad_request(format!(
                "Invalid output width. {model} upscales at most {factor}x."
            )));
        }
        if placement.scaled_height > in_h * factor {
            return Err(ApiError::bad_request(format!(
                "Invalid output height. {model} upscales at most {factor}x."
            )));
        }
    }
    let cap = if sync {
        MAX_SYNC_OUTPUT_MP
    } else {
        endpoint.max_output_mp()
    };
    if placement.megapixels() > cap as f64 {
        return Err(ApiError::bad_request(format!(
            "Output image dimensions exceed maximum allowed of {cap} MP."
        )));
    }
    let in_mp = in_w as f64 * in_h as f64 / 1e6;
    Ok(Plan {
        placement,
        credits: credits_for(endpoint, placement.width, placement.height),
        work_secs: work_seconds(endpoint, model, in_mp, placement.megapixels()),
    })
}

/// A validated estimate (`/estimate`, `/estimate-gen`, one item of `/estimate-bulk`).
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateRequest {
    pub endpoint: Endpoint,
    pub model: &'static str,
    pub plan: Plan,
}

impl EstimateRequest {
    /// `generative`: `Some(false)` for `/estimate`, `Some(true)` for `/estimate-gen`, `None`
    /// for bulk items (the union of both catalogues).
    pub fn parse(fields: &Fields, generative: Option<bool>) -> Result<Self, ApiError> {
        let category = fields.get("category");
        let default_model = if generative == Some(true) {
            "Redefine"
        } else {
            "Standard V2"
        };
        let model_name = fields.get("model").unwrap_or(default_model);
        let (endpoint, model) = Endpoint::for_estimate(category, model_name, generative)
            .ok_or_else(|| {
                ApiError::bad_request(format!("Invalid model or category: {model_name}."))
            })?;
        let side = |name: &str| -> Result<u32, ApiError> {
            fields
                .get(name)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.fract() == 0.0 && *v >= 1.0 && *v <= MAX_SIDE as f64)
                .map(|v| v as u32)
                .ok_or_else(ApiError::invalid_input_resolution)
        };
        let (in_w, in_h) = (side("input_width")?, side("input_height")?);
        let submit = SubmitRequest::parse(endpoint, &without_source(fields), true)?;
        let plan = plan(
            endpoint,
            model,
            in_w,
            in_h,
            submit.output_width,
            submit.output_height,
            submit.crop_to_fill,
            false,
        )?;
        Ok(EstimateRequest {
            endpoint,
            model,
            plan,
        })
    }
}

/// Estimates carry no image; validation of the other fields is shared with submits.
fn without_source(fields: &Fields) -> Fields {
    let mut f = fields.clone();
    f.0.remove("source_id");
    f.0.remove("source_url");
    f.0.remove("model");
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn camel_case_and_snake_case_are_both_accepted() {
        let f = fields(&[
            ("outputWidth", "100"),
            ("fixCompression", "0.5"),
            ("faceEnhancementStrength", "0.2"),
        ]);
        let r = SubmitRequest::parse(Endpoint::Enhance, &f, true).unwrap();
        assert_eq!(r.output_width, Some(100));
        assert_eq!(r.settings.number("fix_compression", 0.0), 0.5);
        assert_eq!(r.settings.number("face_enhancement_strength", 0.8), 0.2);
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        let e = SubmitRequest::parse(Endpoint::Enhance, &fields(&[("sharpen", "1.5")]), true)
            .unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (400, "Invalid sharpen."));
        let e = SubmitRequest::parse(
            Endpoint::Enhance,
            &fields(&[("output_height", "32001")]),
            true,
        )
        .unwrap_err();
        assert_eq!(e.message, "Invalid output height.");
        let e = SubmitRequest::parse(Endpoint::Enhance, &fields(&[("model", "Normal")]), true)
            .unwrap_err();
        assert_eq!(e.status, 400);
        let e = SubmitRequest::parse(
            Endpoint::Matting,
            &fields(&[("output_format", "jpeg")]),
            true,
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let r = SubmitRequest::parse(
            Endpoint::Denoise,
            &fields(&[("scale", "4"), ("whatever", "x")]),
            true,
        )
        .unwrap();
        assert_eq!(r.model, "Normal");
        assert_eq!(r.settings.to_json(), "{}");
    }

    #[test]
    fn exactly_one_source() {
        let none = SubmitRequest::parse(Endpoint::Enhance, &Fields::new(), false).unwrap_err();
        assert_eq!(none.status, 400);
        let two = SubmitRequest::parse(
            Endpoint::Enhance,
            &fields(&[("source_url", "http://x/y.png")]),
            true,
        )
        .unwrap_err();
        assert_eq!(two.status, 400);
    }

    #[test]
    fn plan_checks_the_megapixel_cap() {
        let r = SubmitRequest::parse(
            Endpoint::Enhance,
            &fields(&[("output_width", "32000"), ("output_height", "32000")]),
            true,
        )
        .unwrap();
        let e = r.plan(1000, 1000, false).unwrap_err();
        assert_eq!(
            e.message,
            "Output image dimensions exceed maximum allowed of 512 MP."
        );
        let e = r.plan(0, 10, false).unwrap_err();
        assert_eq!(e.status, 422);
    }

    #[test]
    fn estimate_prices_output_megapixels() {
        let f = fields(&[
            ("input_width", "1000"),
            ("input_height", "1000"),
            ("output_width", "8000"),
        ]);
        let e = EstimateRequest::parse(&f, Some(false)).unwrap();
        assert_eq!((e.endpoint, e.plan.credits), (Endpoint::Enhance, 3));
        let bad = EstimateRequest::parse(
            &fields(&[("input_width", "0"), ("input_height", "5")]),
            Some(false),
        )
        .unwrap_err();
        assert_eq!(bad.message, "Please provide a valid input resolution.");
    }
}
