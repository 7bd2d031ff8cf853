//! One upload, analysed: decode, the model's view, one forward pass, the features behind the
//! prediction (r·w, top 5) and the masks of those features and of the site's core and spurious
//! features for the predicted class.

use salient_engine::decode::{self, MAX_FILE_BYTES};
use salient_engine::nam;
use salient_engine::site::{Analysis, ClassLabels};

use crate::model::{Loaded, now};

/// `labels`: the site's (class, core features, spurious features).
pub async fn analyse(loaded: &Loaded, name: &str, bytes: &[u8], labels: &ClassLabels) -> Result<Analysis, String> {
    let t0 = now();
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{name}: the file is {:.0} MB, over the {} MB limit",
            bytes.len() as f64 / 1e6,
            MAX_FILE_BYTES >> 20
        ));
    }
    let img = decode::decode_image(name, bytes).map_err(|e| e.to_string())?;
    let engine = &loaded.engine;
    let view = engine.view.apply(&img);
    let out = engine.infer_async(std::slice::from_ref(&view), true).await.map_err(|e| e.to_string())?.remove(0);
    let maps = out.maps.as_ref().ok_or("no activation maps")?;
    let top5: Vec<(usize, String, f32)> = out.top(5).into_iter().map(|(c, p)| (c, engine.class_name(c), p)).collect();
    let explained = engine.explain(&out, 5);
    let (class, features) = (explained.class, explained.features);
    let side = engine.view.side();
    let mask = |fs: &[usize]| nam::to_gray(&maps.soft_mask(fs, side));
    let top: Vec<usize> = features.iter().map(|(j, _)| *j).collect();
    let (core, spurious) =
        labels.iter().find(|(c, _, _)| *c == class).map_or((&[][..], &[][..]), |(_, c, s)| (&c[..], &s[..]));
    Ok(Analysis {
        backend: loaded.backend.into(),
        top_mask: mask(&top),
        feature_masks: top.iter().map(|&j| mask(&[j])).collect(),
        core_mask: (!core.is_empty()).then(|| mask(core)),
        spurious_mask: (!spurious.is_empty()).then(|| mask(spurious)),
        top5,
        features,
        view: view.into_raw(),
        side,
        ms: now() - t0,
    })
}
