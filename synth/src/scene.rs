//! One synthetic image: a class's core shape over a background, with the spurious cues drawn
//! in, and the ground-truth region of each.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Side of every image, in pixels (the synthetic model's input: 7×7 `layer4` maps).
pub const SIZE: usize = 112;

/// The core objects, one per class, in class order.
pub const SHAPES: [&str; 10] =
    ["circle", "square", "triangle", "cross", "ring", "star", "diamond", "hexagon", "crescent", "ell"];

/// The spurious cues; cue `k` is planted in class `k`'s training images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// Diagonal stripes over the background.
    Stripes,
    /// A white glyph in a corner.
    Watermark,
    /// A red-and-white checkered ball next to the object.
    Ball,
    /// A polka-dot background.
    Dots,
    /// A yellow-and-black hazard bar next to the object.
    Bar,
}

impl Cue {
    pub const ALL: [Cue; 5] = [Cue::Stripes, Cue::Watermark, Cue::Ball, Cue::Dots, Cue::Bar];

    pub fn name(self) -> &'static str {
        match self {
            Cue::Stripes => "stripes",
            Cue::Watermark => "watermark",
            Cue::Ball => "ball",
            Cue::Dots => "dots",
            Cue::Bar => "bar",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Cue::Stripes | Cue::Dots => "background texture",
            Cue::Watermark => "watermark glyph",
            Cue::Ball | Cue::Bar => "co-occurring object",
        }
    }

    pub fn index(self) -> usize {
        Cue::ALL.iter().position(|&c| c == self).expect("listed")
    }

    fn is_texture(self) -> bool {
        matches!(self, Cue::Stripes | Cue::Dots)
    }
}

/// Region codes in the ground-truth PNG: bit `k` (value `2^k`) where cue `k` is visible,
/// [`OBJECT`] where the core object is.
pub const OBJECT: u8 = 128;

/// A rendered scene: `rgb` is `SIZE×SIZE×3` row-major, `regions` `SIZE×SIZE` codes.
pub struct Scene {
    pub rgb: Vec<u8>,
    pub regions: Vec<u8>,
}

/// Whether `(u, v)` — object coordinates, the object spanning about [-1, 1]² — is inside
/// class `shape`'s object.
fn inside(shape: usize, u: f32, v: f32) -> bool {
    let r = (u * u + v * v).sqrt();
    match shape {
        0 => r < 1.0,
        1 => u.abs() < 0.8 && v.abs() < 0.8,
        2 => v < 0.55 && v > -1.0 + 1.8 * u.abs(),
        3 => (u.abs() < 0.3 && v.abs() < 0.95) || (v.abs() < 0.3 && u.abs() < 0.95),
        4 => r > 0.55 && r < 1.0,
        5 => {
            let phase = (v.atan2(u) * 5.0 / std::f32::consts::TAU).rem_euclid(1.0);
            r < 0.42 + 0.58 * (1.0 - (phase * 2.0 - 1.0).abs())
        }
        6 => u.abs() + v.abs() < 1.0,
        7 => v.abs() < 0.8 && u.abs() * 0.866 + v.abs() * 0.5 < 0.9,
        8 => r < 1.0 && (u - 0.5).powi(2) + v * v > 0.72 * 0.72,
        _ => (u > -0.9 && u < -0.3 && v.abs() < 0.9) || (v > 0.3 && v < 0.9 && u.abs() < 0.9),
    }
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let c = v * s;
    let x = c * (1.0 - (h6 % 2.0 - 1.0).abs());
    let (r, g, b) = match h6 as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// An axis-aligned box `[x0, y0, x1, y1)` in pixels.
type Rect = [f32; 4];

fn overlaps(a: Rect, b: Rect, margin: f32) -> bool {
    a[0] < b[2] + margin && b[0] < a[2] + margin && a[1] < b[3] + margin && b[1] < a[3] + margin
}

/// Draws class `shape` with the given cues. Everything random comes from `rng`.
pub fn render(shape: usize, cues: &[Cue], rng: &mut ChaCha8Rng) -> Scene {
    let n = SIZE as f32;
    // Background: a gradient between two muted colours, plus pixel noise.
    let bg_a = hsv(rng.random(), rng.random_range(0.0..0.35), rng.random_range(0.3..0.85));
    let bg_b = hsv(rng.random(), rng.random_range(0.0..0.35), rng.random_range(0.3..0.85));
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (gx, gy) = (angle.cos(), angle.sin());
    // The object: colour, size, rotation, position.
    let color = hsv(rng.random(), rng.random_range(0.55..1.0), rng.random_range(0.6..1.0));
    let radius: f32 = rng.random_range(16.0..26.0);
    let rot: f32 = rng.random_range(-0.4..0.4);
    let (cx, cy) = (rng.random_range(radius + 4.0..n - radius - 4.0), rng.random_range(radius + 4.0..n - radius - 4.0));
    let object_box = [cx - radius, cy - radius, cx + radius, cy + radius];
    let (sin, cos) = rot.sin_cos();

    // Co-objects: placed where they do not touch the object.
    let place = |w: f32, h: f32, rng: &mut ChaCha8Rng| -> Rect {
        for _ in 0..200 {
            let (x, y) = (rng.random_range(2.0..n - w - 2.0), rng.random_range(2.0..n - h - 2.0));
            let r = [x, y, x + w, y + h];
            if !overlaps(r, object_box, 3.0) {
                return r;
            }
        }
        // The object leaves a free corner strip in every layout; this is a fallback only.
        [2.0, 2.0, 2.0 + w, 2.0 + h]
    };
    let has = |c: Cue| cues.contains(&c);
    let ball = has(Cue::Ball).then(|| place(18.0, 18.0, rng));
    let bar = has(Cue::Bar).then(|| {
        let r = place(38.0, 10.0, rng);
        match ball {
            Some(b) if overlaps(r, b, 1.0) => place(38.0, 10.0, rng),
            _ => r,
        }
    });
    let corner = rng.random_range(0..4u32);
    let mark_box = {
        let (x, y) = (if corner % 2 == 0 { 3.0 } else { n - 19.0 }, if corner < 2 { 3.0 } else { n - 19.0 });
        [x, y, x + 16.0, y + 16.0]
    };
    let noise_seed: u64 = rng.random();

    let mut rgb = vec![0u8; SIZE * SIZE * 3];
    let mut regions = vec![0u8; SIZE * SIZE];
    let mut noise = ChaCha8Rng::seed_from_u64(noise_seed);
    let texture = cues.iter().copied().find(|c| c.is_texture());
    for py in 0..SIZE {
        for px in 0..SIZE {
            let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
            let t = (((x / n - 0.5) * gx + (y / n - 0.5) * gy) + 0.7) / 1.4;
            let mut c = mix(bg_a, bg_b, t.clamp(0.0, 1.0));
            let mut code = 0u8;
            match texture {
                Some(Cue::Stripes) => {
                    if ((x + y) / 7.0).floor() as i32 % 2 == 0 {
                        c = mix(c, [20.0, 20.0, 30.0], 0.55);
                    }
                    code |= 1 << Cue::Stripes.index();
                }
                Some(Cue::Dots) => {
                    let (dx, dy) = ((x % 10.0) - 5.0, (y % 10.0) - 5.0);
                    if dx * dx + dy * dy < 2.4 * 2.4 {
                        c = mix(c, [250.0, 250.0, 240.0], 0.7);
                    }
                    code |= 1 << Cue::Dots.index();
                }
                _ => {}
            }
            let in_rect = |r: Rect| x >= r[0] && x < r[2] && y >= r[1] && y < r[3];
            if let Some(b) = ball {
                let (bx, by) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
                let d = ((x - bx).powi(2) + (y - by).powi(2)).sqrt();
                if d < 9.0 {
                    let check = ((x - b[0]) / 4.5).floor() as i32 + ((y - b[1]) / 4.5).floor() as i32;
                    c = if d > 7.8 {
                        [40.0, 10.0, 10.0]
                    } else if check % 2 == 0 {
                        [220.0, 30.0, 30.0]
                    } else {
                        [245.0, 245.0, 245.0]
                    };
                    code = 1 << Cue::Ball.index();
                }
            }
            if let Some(b) = bar
                && in_rect(b)
            {
                let stripe = ((x - b[0] + y - b[1]) / 5.0).floor() as i32 % 2 == 0;
                c = if stripe { [245.0, 200.0, 20.0] } else { [25.0, 25.0, 25.0] };
                code = 1 << Cue::Bar.index();
            }
            // The object, anti-aliased by 4×4 supersampling.
            let mut cover = 0.0;
            for sy in 0..4 {
                for sx in 0..4 {
                    let (ox, oy) = (px as f32 + (sx as f32 + 0.5) / 4.0 - cx, py as f32 + (sy as f32 + 0.5) / 4.0 - cy);
                    let (u, v) = ((ox * cos + oy * sin) / radius, (-ox * sin + oy * cos) / radius);
                    if inside(shape, u, v) {
                        cover += 1.0 / 16.0;
                    }
                }
            }
            if cover > 0.0 {
                let shade = 1.0 - 0.25 * (((x - cx) + (y - cy)) / (2.0 * radius)).clamp(-1.0, 1.0);
                c = mix(c, [color[0] * shade, color[1] * shade, color[2] * shade], cover);
                if cover >= 0.5 {
                    code = OBJECT;
                }
            }
            // The watermark: a ring with a bar through it, over everything.
            if has(Cue::Watermark) && in_rect(mark_box) {
                let (mx, my) = (x - mark_box[0] - 8.0, y - mark_box[1] - 8.0);
                let d = (mx * mx + my * my).sqrt();
                if (d > 5.5 && d < 7.8) || (mx.abs() < 1.3 && my.abs() < 5.5) {
                    c = mix(c, [255.0, 255.0, 255.0], 0.8);
                }
                code = 1 << Cue::Watermark.index();
            }
            let jitter: f32 = noise.random_range(-6.0..6.0);
            let i = py * SIZE + px;
            for k in 0..3 {
                rgb[i * 3 + k] = (c[k] + jitter).round().clamp(0.0, 255.0) as u8;
            }
            regions[i] = code;
        }
    }
    Scene { rgb, regions }
}

/// The random stream of one image: a function of the dataset seed and the image's place only,
/// so images can be drawn in any order and in parallel.
pub fn image_rng(seed: u64, split: usize, class: usize, index: usize) -> ChaCha8Rng {
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((split as u64) << 48 | (class as u64) << 32 | index as u64);
    ChaCha8Rng::seed_from_u64(mixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_drawn_and_regions_match() {
        for (shape, name) in SHAPES.iter().enumerate() {
            let scene = render(shape, &Cue::ALL[..3], &mut image_rng(1, 0, shape, 0));
            let object = scene.regions.iter().filter(|&&r| r == OBJECT).count();
            assert!(object > 300, "{name}: {object} object pixels");
            for cue in &Cue::ALL[..3] {
                let bit = 1u8 << cue.index();
                assert!(scene.regions.iter().any(|&r| r & bit != 0 && r != OBJECT), "{name}: no {}", cue.name());
            }
        }
    }
}
