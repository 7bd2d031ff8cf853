//! A copy of the paper's release layout for the tests: `wordnet_dict.py`, and per class
//! `<wnid>/image_names_map.csv` with `<wnid>/feature_<j>/<image>.JPEG` masks — 224×224 gray
//! JPEGs made as the paper made them (a 7×7 map, divided by its max, bilinearly upsampled) —
//! for the (class, feature) pairs of an MTurk CSV, so that any labels file lays out its dataset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use salient_engine::nam;

/// The paper's MTurk labels (never part of the repository): `SALIENT_MTURK_CSV`, else beside the
/// project in `../shared/salient_imagenet/`. Panics with what is missing.
pub fn paper_mturk_csv() -> PathBuf {
    let path = std::env::var_os("SALIENT_MTURK_CSV").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/salient_imagenet/discover_spurious_features.csv")
    });
    assert!(
        path.exists(),
        "{} is missing: give the paper's discover_spurious_features.csv with SALIENT_MTURK_CSV",
        path.display()
    );
    path
}

/// The (class, wnid, feature) pairs of an MTurk CSV, in file order.
pub fn mturk_pairs(csv: &str) -> Vec<(usize, String, usize)> {
    let mut seen = Vec::new();
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.splitn(6, ',').collect();
        let (Some(wnid), Some(class), Some(feature)) = (cells.get(1), cells.get(2), cells.get(3)) else { continue };
        let pair = (class.parse().unwrap(), (*wnid).to_owned(), feature.parse().unwrap());
        if seen.last() != Some(&pair) && !seen.contains(&pair) {
            seen.push(pair);
        }
    }
    seen
}

/// An MTurk CSV for `pairs` (five workers each, reasons with commas and quotes): spurious when
/// `feature % 5 == 0`.
pub fn mturk_csv(pairs: &[(usize, &str, usize)]) -> String {
    let mut s = String::from(
        "WorkerId,Input.wordnet_id,Input.class_index,Input.feature_index,Input.feature_rank,Answer.main,Answer.confidence,Answer.reasons\n",
    );
    let mut rank: BTreeMap<usize, usize> = BTreeMap::new();
    for &(class, wnid, feature) in pairs {
        let r = rank.entry(class).or_default();
        *r += 1;
        for worker in 0..5 {
            let answer = if feature % 5 == 0 && worker < 3 { "background" } else { "main_object" };
            s.push_str(&format!("{},{wnid},{class},{feature},{r},{answer},{}.0,\"worker {worker} on {feature}: the focus, \"\"clearly\"\", is here\"\n", 100 + worker, 3 + worker % 3));
        }
    }
    s
}

/// A 7×7 map in [0, 1] with its max at 1, different for every (class, feature, image).
pub fn release_map(class: usize, feature: usize, image: usize) -> Vec<f32> {
    let mut state = (class as u64 * 1_000_003 + feature as u64 * 7919 + image as u64 * 104_729) | 1;
    let mut v: Vec<f32> = (0..49)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 1000) as f32 / 999.0
        })
        .collect();
    let max = v.iter().copied().fold(0.0, f32::max);
    v.iter_mut().for_each(|x| *x /= max);
    v
}

/// Writes the release layout under `root` for `pairs` with `per_feature` images each (named
/// `<wnid>_<k>`, shared between a class's features as in the paper's data).
pub fn make_release_layout(root: &Path, pairs: &[(usize, String, usize)], per_feature: usize) {
    let mut by_class: BTreeMap<usize, (String, Vec<usize>)> = BTreeMap::new();
    for (class, wnid, feature) in pairs {
        by_class.entry(*class).or_insert_with(|| (wnid.clone(), Vec::new())).1.push(*feature);
    }
    let dict: Vec<String> = by_class.iter().map(|(c, (w, _))| format!("{c}: '{w}'")).collect();
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("wordnet_dict.py"), format!("{{{}}}\n", dict.join(", "))).unwrap();
    for (class, (wnid, features)) in &by_class {
        let dir = root.join(wnid);
        let mut csv = features.iter().map(usize::to_string).collect::<Vec<_>>().join(",") + "\n";
        for k in 0..per_feature {
            csv += &features
                .iter()
                .map(|f| format!("{wnid}_{}", (k + f) % (per_feature + 2)))
                .collect::<Vec<_>>()
                .join(",");
            csv.push('\n');
        }
        for &feature in features {
            let fdir = dir.join(format!("feature_{feature}"));
            std::fs::create_dir_all(&fdir).unwrap();
            for k in 0..per_feature {
                let image = format!("{wnid}_{}", (k + feature) % (per_feature + 2));
                let mask = nam::to_gray(&nam::upsample_bilinear(&release_map(*class, feature, k), 7, 7, 224, 224));
                let gray = image::GrayImage::from_raw(224, 224, mask).unwrap();
                let mut bytes = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 75).encode_image(&gray).unwrap();
                std::fs::write(fdir.join(format!("{image}.JPEG")), bytes).unwrap();
            }
        }
        std::fs::write(dir.join("image_names_map.csv"), csv).unwrap();
    }
}
