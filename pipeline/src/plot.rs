//! A small SVG chart: per-class core vs spurious accuracy (no plotting library needed for one
//! scatter plot with a diagonal).

/// `points`: `(class, core accuracy, spurious accuracy)` in [0, 1].
pub fn core_vs_spurious(points: &[(usize, f64, f64)], sigma: f32) -> String {
    const SIZE: f64 = 480.0;
    const PAD: f64 = 56.0;
    let plot = SIZE - 2.0 * PAD;
    let x = |v: f64| PAD + v.clamp(0.0, 1.0) * plot;
    let y = |v: f64| SIZE - PAD - v.clamp(0.0, 1.0) * plot;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" font-family="system-ui, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="{cx}" y="22" text-anchor="middle" font-size="14" font-weight="600">Core vs spurious accuracy per class (σ = {sigma})</text>
<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#bbb" stroke-dasharray="4 4"/>
<rect x="{PAD}" y="{PAD}" width="{plot}" height="{plot}" fill="none" stroke="#333"/>
<text x="{cx}" y="{bottom}" text-anchor="middle">spurious accuracy (noise on core regions)</text>
<text transform="translate(16 {cy}) rotate(-90)" text-anchor="middle">core accuracy (noise on spurious regions)</text>
"##,
        cx = SIZE / 2.0,
        cy = SIZE / 2.0,
        x0 = x(0.0),
        y0 = y(0.0),
        x1 = x(1.0),
        y1 = y(1.0),
        bottom = SIZE - 16.0,
    );
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{:.0}%</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">{:.0}%</text>\n",
            x(t),
            SIZE - PAD + 16.0,
            t * 100.0,
            PAD - 6.0,
            y(t) + 4.0,
            t * 100.0
        ));
    }
    for (class, core, spurious) in points {
        // Above the diagonal: the class relies more on its core regions.
        let color = if core >= spurious { "#1f77b4" } else { "#d62728" };
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\" fill-opacity=\"0.7\"><title>class {class}: core {:.1}%, spurious {:.1}%</title></circle>\n",
            x(*spurious),
            y(*core),
            core * 100.0,
            spurious * 100.0
        ));
    }
    s.push_str("</svg>\n");
    s
}
