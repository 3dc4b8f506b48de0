//! Training-time augmentation: random rotation, shift, zoom and horizontal flip, resampled
//! bilinearly, and the conversion of u8 images to normalised f32 CHW tensors. Validation and
//! test images are only converted.
//!
//! Outside the image, [`Fill::Nearest`] repeats the edge pixels (Keras's ImageDataGenerator,
//! `fill_mode="nearest"`: scipy's `affine_transform` with `mode="nearest"`) and
//! [`Fill::Constant`] reads black pixels (PyTorch's `grid_sample` with `padding_mode="zeros"`
//! on the image before normalisation, as torchvision's `RandomAffine` with `fill=0`).
//! `tests/augment.rs` checks both against those libraries' own output.

use crate::data::{Normalization, CHANNELS};
use crate::rng::Rng;
use crate::unknown_name::{parse_name, UnknownName};

/// What a transformed image shows where its source lies outside the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// The nearest edge pixel (Keras's default).
    #[default]
    Nearest,
    /// Black, each of the bilinear sample's four pixels that falls outside counting as 0
    /// (PyTorch's zero padding).
    Constant,
}

impl Fill {
    /// Every fill, in the order of its list of names.
    pub const ALL: [Fill; 2] = [Fill::Nearest, Fill::Constant];

    /// The name used in sweep files.
    pub fn name(&self) -> &'static str {
        match self {
            Fill::Nearest => "nearest",
            Fill::Constant => "constant",
        }
    }
}

impl std::str::FromStr for Fill {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        parse_name("fill", text, &Self::ALL, Self::name)
    }
}

fn is_nearest(fill: &Fill) -> bool {
    *fill == Fill::Nearest
}

/// Which random transformations to apply to training images; all off by default.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Largest rotation, in degrees, either way.
    pub rotation: f64,
    /// Largest shift, as a fraction of the image size, along each axis.
    pub shift: f64,
    /// Largest zoom, as a fraction: the scale is drawn from `[1 - zoom, 1 + zoom]`.
    pub zoom: f64,
    /// Flip half of the images left to right.
    pub hflip: bool,
    /// What shows outside the original image. Left out of the JSON when `nearest`, the only
    /// fill before the key existed, so older trial hashes are unchanged.
    #[serde(skip_serializing_if = "is_nearest")]
    pub fill: Fill,
}

impl Augment {
    /// Whether any transformation is switched on.
    pub fn is_active(&self) -> bool {
        self.rotation != 0.0 || self.shift != 0.0 || self.zoom != 0.0 || self.hflip
    }

    /// Why the settings are out of range, naming the key, if they are.
    pub fn problem(&self) -> Option<String> {
        if !(0.0..=180.0).contains(&self.rotation) {
            return Some(format!(
                "augment.rotation must be between 0 and 180 degrees, not {}",
                self.rotation
            ));
        }
        if !(0.0..1.0).contains(&self.shift) {
            return Some(format!(
                "augment.shift must be in [0, 1), not {}",
                self.shift
            ));
        }
        if !(0.0..1.0).contains(&self.zoom) {
            return Some(format!("augment.zoom must be in [0, 1), not {}", self.zoom));
        }
        None
    }

    /// Draws the transformation of one image.
    pub fn draw(&self, rng: &mut Rng) -> Transform {
        let angle = rng.uniform(-self.rotation, self.rotation).to_radians();
        let shift_x = rng.uniform(-self.shift, self.shift);
        let shift_y = rng.uniform(-self.shift, self.shift);
        let scale = rng.uniform(1.0 - self.zoom, 1.0 + self.zoom);
        let flip = self.hflip && rng.chance(0.5);
        Transform {
            angle: angle as f32,
            shift_x: shift_x as f32,
            shift_y: shift_y as f32,
            scale: scale as f32,
            flip,
            fill: self.fill,
        }
    }
}

/// One drawn transformation: rotate by `angle` (radians) and scale by `scale` about the
/// centre, move by `shift_*` (fractions of the size), then mirror if `flip`; `fill` what lies
/// outside.
///
/// As a map from an output pixel's centre `o` to where it is read in the source, with `c`
/// the image's centre and `R(θ)` the rotation `[[cos, −sin], [sin, cos]]` in (row, column)
/// coordinates: `source = R(angle) · ((o − c) − shift · size) / scale + c`, `o`'s column
/// mirrored about `c` first if `flip`. Keras's `apply_affine_transform(theta = angle in
/// degrees, tx = −shift_y · size / scale, ty = −shift_x · size / scale, zx = zy = 1 / scale)`
/// is the same map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    pub angle: f32,
    pub shift_x: f32,
    pub shift_y: f32,
    pub scale: f32,
    pub flip: bool,
    pub fill: Fill,
}

impl Transform {
    /// The transformation that changes nothing.
    pub const IDENTITY: Transform = Transform {
        angle: 0.0,
        shift_x: 0.0,
        shift_y: 0.0,
        scale: 1.0,
        flip: false,
        fill: Fill::Nearest,
    };
}

/// Writes `image` (u8, height × width × channel, `size × size`) into `out` as normalised f32
/// in channel × height × width order, through `transform`.
pub fn write_normalized(
    image: &[u8],
    size: usize,
    norm: &Normalization,
    transform: &Transform,
    out: &mut [f32],
) {
    let plane = size * size;
    let scale: [f32; CHANNELS] = std::array::from_fn(|c| 1.0 / (255.0 * norm.std[c]));
    let offset: [f32; CHANNELS] = std::array::from_fn(|c| norm.mean[c] / norm.std[c]);
    if *transform == Transform::IDENTITY {
        for (i, px) in image.chunks_exact(CHANNELS).enumerate() {
            for c in 0..CHANNELS {
                out[c * plane + i] = px[c] as f32 * scale[c] - offset[c];
            }
        }
        return;
    }
    // Map each output pixel back to its source: undo the shift, then the rotation and zoom.
    let s = size as f32;
    let half = s / 2.0;
    let (sin, cos) = transform.angle.sin_cos();
    let inv_scale = 1.0 / transform.scale;
    let last = (size - 1) as f32;
    for y in 0..size {
        for x in 0..size {
            let mut px = x as f32 + 0.5 - half;
            if transform.flip {
                px = -px;
            }
            let px = px - transform.shift_x * s;
            let py = y as f32 + 0.5 - half - transform.shift_y * s;
            let sx = (cos * px + sin * py) * inv_scale + half - 0.5;
            let sy = (-sin * px + cos * py) * inv_scale + half - 0.5;
            let value = match transform.fill {
                Fill::Nearest => {
                    sample_nearest(image, size, sx.clamp(0.0, last), sy.clamp(0.0, last))
                }
                Fill::Constant => sample_zeros(image, size, sx, sy),
            };
            for c in 0..CHANNELS {
                out[c * plane + y * size + x] = value[c] * scale[c] - offset[c];
            }
        }
    }
}

/// The bilinear sample at `(sx, sy)`, a point inside the grid of pixel centres.
fn sample_nearest(image: &[u8], size: usize, sx: f32, sy: f32) -> [f32; CHANNELS] {
    let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
    let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
    let at = |yy: usize, xx: usize, c: usize| image[(yy * size + xx) * CHANNELS + c] as f32;
    std::array::from_fn(|c| {
        let top = at(y0, x0, c) * (1.0 - fx) + at(y0, x1, c) * fx;
        let bottom = at(y1, x0, c) * (1.0 - fx) + at(y1, x1, c) * fx;
        top * (1.0 - fy) + bottom * fy
    })
}

/// The bilinear sample at `(sx, sy)`, anywhere, with every pixel outside the image black.
fn sample_zeros(image: &[u8], size: usize, sx: f32, sy: f32) -> [f32; CHANNELS] {
    let (fx0, fy0) = (sx.floor(), sy.floor());
    let (fx, fy) = (sx - fx0, sy - fy0);
    let (x0, y0) = (fx0 as i64, fy0 as i64);
    let inside = |v: i64| (0..size as i64).contains(&v);
    let mut value = [0f32; CHANNELS];
    for (yy, wy) in [(y0, 1.0 - fy), (y0 + 1, fy)] {
        for (xx, wx) in [(x0, 1.0 - fx), (x0 + 1, fx)] {
            if !(inside(xx) && inside(yy)) {
                continue;
            }
            let at = (yy as usize * size + xx as usize) * CHANNELS;
            for (c, v) in value.iter_mut().enumerate() {
                *v += image[at + c] as f32 * wx * wy;
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: Normalization = Normalization {
        mean: [0.0; 3],
        std: [1.0 / 255.0; 3],
    };

    fn ramp(size: usize) -> Vec<u8> {
        (0..size * size * 3)
            .map(|i| ((i / 3) % size * 10) as u8)
            .collect()
    }

    fn render(image: &[u8], size: usize, t: Transform) -> Vec<f32> {
        let mut out = vec![0.0; size * size * 3];
        write_normalized(image, size, &UNIT, &t, &mut out);
        out
    }

    #[test]
    fn identity_copies_into_chw_and_normalises() {
        let norm = Normalization {
            mean: [0.5; 3],
            std: [0.25; 3],
        };
        let image = [255u8, 0, 128];
        let mut out = vec![0.0; 3];
        write_normalized(&image, 1, &norm, &Transform::IDENTITY, &mut out);
        assert_eq!(out, [2.0, -2.0, (128.0 / 255.0 - 0.5) / 0.25]);
    }

    #[test]
    fn a_zero_transform_resampled_equals_the_identity_and_flip_mirrors() {
        let size = 8;
        let image = ramp(size);
        let same = Transform {
            scale: 1.0 + 1e-7,
            ..Transform::IDENTITY
        };
        let a = render(&image, size, Transform::IDENTITY);
        let b = render(&image, size, same);
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-3));
        let flipped = render(
            &image,
            size,
            Transform {
                flip: true,
                ..Transform::IDENTITY
            },
        );
        for y in 0..size {
            for x in 0..size {
                assert!((flipped[y * size + x] - a[y * size + size - 1 - x]).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn a_shift_moves_the_image_and_repeats_the_edge() {
        let size = 8;
        let image = ramp(size);
        let a = render(&image, size, Transform::IDENTITY);
        let shifted = render(
            &image,
            size,
            Transform {
                shift_x: 0.25,
                ..Transform::IDENTITY
            },
        );
        assert!((shifted[5] - a[3]).abs() < 1e-3, "moved right by 2 pixels");
        assert!((shifted[0] - a[0]).abs() < 1e-3, "left edge repeated");
        assert!((shifted[1] - a[0]).abs() < 1e-3, "left edge repeated");
    }

    /// One transformation of the test image and what the reference library made of it.
    #[derive(serde::Deserialize)]
    struct ReferenceCase {
        fill: Fill,
        angle: f32,
        shift_x: f32,
        shift_y: f32,
        scale: f32,
        flip: bool,
        expected: Vec<f32>,
    }

    #[derive(serde::Deserialize)]
    struct Reference {
        reference: String,
        size: usize,
        image: Vec<u8>,
        cases: Vec<ReferenceCase>,
    }

    /// Our transform of a test image equals Keras's (`nearest`) and torchvision's
    /// (`constant`) for the same parameters, within a pixel level, from
    /// `scripts/augment_reference.py`'s fixture.
    #[test]
    fn each_fill_matches_its_reference_library() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/augment_reference.json"
        );
        let fixture: Reference =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(fixture.cases.len(), 12);
        for case in &fixture.cases {
            let transform = Transform {
                angle: case.angle,
                shift_x: case.shift_x,
                shift_y: case.shift_y,
                scale: case.scale,
                flip: case.flip,
                fill: case.fill,
            };
            let ours = render(&fixture.image, fixture.size, transform);
            let worst = ours
                .iter()
                .zip(&case.expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            eprintln!("{transform:?}: at most {worst:.4} levels from the reference");
            assert!(
                worst <= 0.01,
                "{transform:?}: {worst} levels from {}",
                fixture.reference
            );
            // The transform moved the image: the check is not of an identity.
            let identity = render(&fixture.image, fixture.size, Transform::IDENTITY);
            assert!(ours
                .iter()
                .zip(&identity)
                .any(|(a, b)| (a - b).abs() > 10.0));
        }
    }

    #[test]
    fn a_half_turn_reverses_the_image() {
        let size = 6;
        let image = ramp(size);
        let a = render(&image, size, Transform::IDENTITY);
        let turned = render(
            &image,
            size,
            Transform {
                angle: std::f32::consts::PI,
                ..Transform::IDENTITY
            },
        );
        for i in 0..size * size {
            assert!((turned[i] - a[size * size - 1 - i]).abs() < 1e-2);
        }
    }
}
