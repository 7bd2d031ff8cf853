//! The Salient ImageNet dataset layout, as `salient build` writes it and as existing loaders
//! (the paper's `SalientImageNet` class and its third-party copies) read it:
//!
//! ```text
//! DATASET/
//!   wordnet_dict.py                  {class index: 'wnid'}, a Python dict literal
//!   index.jsonl                      one MaskRecord per line (what `eval` and the explorer read)
//!   <wnid>/image_names_map.csv       header: the class's features; column j: its images, best first
//!   <wnid>/feature_<j>/<image>.JPEG  224×224 grayscale soft mask (the paper's format)
//!   <wnid>/feature_<j>/<image>.png   the same mask, lossless
//! ```
//! Image names carry no extension (`n02281406_10006`); `source` in the index says where the
//! image itself is, relative to the images root.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::annotations::{Annotations, Label};
use crate::error::Error;
use crate::fsutil;

pub const INDEX_FILE: &str = "index.jsonl";
pub const WORDNET_DICT_FILE: &str = "wordnet_dict.py";
pub const NAMES_MAP_FILE: &str = "image_names_map.csv";

/// One mask of the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskRecord {
    pub class: usize,
    pub wnid: String,
    pub feature: usize,
    pub label: Label,
    /// The image's place among the feature's top images of the class (0 = highest activation).
    pub position: usize,
    /// The feature's rank among the class's features (1 = most important), when the
    /// annotations give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Image name without extension.
    pub image: String,
    /// The image file, relative to the images root.
    pub source: String,
    /// r_j(x): the feature's value on the image.
    pub activation: f32,
    /// The PNG mask, relative to the dataset root.
    pub mask: String,
    /// SHA-256 of the PNG mask's bytes.
    pub sha256: String,
}

/// `<wnid>/feature_<j>/<image>.<ext>`.
pub fn mask_path(wnid: &str, feature: usize, image: &str, ext: &str) -> String {
    format!("{wnid}/feature_{feature}/{image}.{ext}")
}

/// Parses `index.jsonl`; errors give the line. Every name and path in a record is checked to
/// stay inside its root ([`MaskRecord::check`]): an index is data, and data does not choose
/// which files are read or written.
pub fn parse_index(name: &str, text: &str) -> Result<Vec<MaskRecord>, Error> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let at = || format!("{name}, line {}", i + 1);
            let record: MaskRecord =
                serde_json::from_str(l).map_err(|e| Error::Invalid(format!("{}: not a mask record ({e})", at())))?;
            record.check().map_err(|m| Error::Invalid(format!("{}: {m}", at())))?;
            Ok(record)
        })
        .collect()
}

impl MaskRecord {
    /// Checks what a record names: `wnid` and `image` are plain file names, `source` and
    /// `mask` relative paths that stay inside their roots (see [`crate::fsutil::check_relative`]).
    pub fn check(&self) -> Result<(), String> {
        use crate::fsutil::{check_name, check_relative};
        check_name(&self.wnid).map_err(|m| format!("`wnid`: {m}"))?;
        check_name(&self.image).map_err(|m| format!("`image`: {m}"))?;
        check_relative(&self.source).map_err(|m| format!("`source`: {m}"))?;
        check_relative(&self.mask).map_err(|m| format!("`mask`: {m}"))?;
        Ok(())
    }
}

/// `index.jsonl` text for `records` (one compact JSON object per line).
pub fn index_text(records: &[MaskRecord]) -> String {
    records.iter().map(|r| serde_json::to_string(r).expect("plain data") + "\n").collect()
}

/// `wordnet_dict.py`: `{0: 'n01440764', 1: ...}` for the classes present.
pub fn wordnet_dict_py(classes: &BTreeMap<usize, String>) -> String {
    let items: Vec<String> = classes.iter().map(|(i, w)| format!("{i}: '{w}'")).collect();
    format!("{{{}}}\n", items.join(", "))
}

/// Reads a `wordnet_dict.py` literal back (digits, quotes, colons and commas only).
pub fn parse_wordnet_dict(name: &str, text: &str) -> Result<BTreeMap<usize, String>, Error> {
    let body = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}'));
    let fail = || Error::Invalid(format!("{name}: not a {{index: 'wnid'}} dictionary"));
    let body = body.ok_or_else(fail)?;
    body.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (k, v) = item.split_once(':').ok_or_else(fail)?;
            let k = k.trim().parse().map_err(|_| fail())?;
            let v = v.trim().trim_matches(|c| c == '\'' || c == '"').to_owned();
            crate::fsutil::check_name(&v).map_err(|m| Error::Invalid(format!("{name}: class {k}: {m}")))?;
            Ok((k, v))
        })
        .collect()
}

/// The masks of the paper's release (`wordnet_dict.py`, `<wnid>/image_names_map.csv`, JPEG
/// masks; no index): one record per image of each labelled feature, in the map's order, with
/// the feature's rank from the labels. The release lists no activations (`NAN`) and no digests.
/// Every name read is checked before it becomes a path.
pub fn release_records(dir: &Path, labels: &Annotations) -> Result<Vec<MaskRecord>, Error> {
    let dict_path = dir.join(WORDNET_DICT_FILE);
    let wnids = parse_wordnet_dict(&fsutil::shown(&dict_path), &fsutil::read_text(&dict_path)?)?;
    let mut records = Vec::new();
    for (&class, wnid) in &wnids {
        let map_path = dir.join(wnid).join(NAMES_MAP_FILE);
        if !map_path.exists() {
            continue;
        }
        let name = fsutil::shown(&map_path);
        let fail = |m: String| Error::Invalid(format!("{name}: {m}"));
        let text = fsutil::read_text(&map_path)?;
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        let header: Vec<usize> = reader
            .headers()
            .map_err(|e| fail(e.to_string()))?
            .iter()
            .map(|h| h.trim().parse().map_err(|_| fail(format!("header {:?} is not a feature", fsutil::escape(h)))))
            .collect::<Result<_, _>>()?;
        let mut columns: Vec<Vec<String>> = vec![Vec::new(); header.len()];
        for row in reader.records() {
            let row = row.map_err(|e| fail(e.to_string()))?;
            for (c, cell) in row.iter().enumerate().take(header.len()) {
                if !cell.trim().is_empty() {
                    columns[c].push(cell.trim().to_owned());
                }
            }
        }
        for (feature, names) in header.into_iter().zip(columns) {
            let Some(pair) = labels.pair(class, feature) else { continue };
            for (position, image) in names.into_iter().enumerate() {
                fsutil::check_name(&image).map_err(fail)?;
                records.push(MaskRecord {
                    class,
                    wnid: wnid.clone(),
                    feature,
                    label: pair.label,
                    position,
                    rank: pair.rank,
                    source: format!("{wnid}/{image}.JPEG"),
                    mask: mask_path(wnid, feature, &image, "JPEG"),
                    image,
                    activation: f32::NAN,
                    sha256: String::new(),
                });
            }
        }
    }
    Ok(records)
}

/// `image_names_map.csv`: one column per feature (header: the feature index), its images in
/// order; shorter columns are padded with empty cells.
pub fn names_map_csv(columns: &[(usize, Vec<String>)]) -> String {
    let rows = columns.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
    let header: Vec<String> = columns.iter().map(|(f, _)| f.to_string()).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    crate::table::csv(
        &header,
        (0..rows).map(|r| columns.iter().map(move |(_, c)| c.get(r).cloned().unwrap_or_default())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordnet_dict_round_trips() {
        let m = BTreeMap::from([(0, "n01440764".to_owned()), (325, "n02281406".to_owned())]);
        let text = wordnet_dict_py(&m);
        assert_eq!(text, "{0: 'n01440764', 325: 'n02281406'}\n");
        assert_eq!(parse_wordnet_dict("w", &text).unwrap(), m);
        assert!(parse_wordnet_dict("w", "import os").is_err());
    }

    #[test]
    fn names_map_pads_short_columns() {
        let csv = names_map_csv(&[(5, vec!["a".into(), "b".into()]), (9, vec!["c".into()])]);
        assert_eq!(csv, "5,9\na,c\nb,\n");
    }

    #[test]
    fn index_round_trips_and_errors_name_the_line() {
        let r = MaskRecord {
            class: 3,
            wnid: "w".into(),
            feature: 7,
            label: Label::Spurious,
            position: 0,
            rank: Some(2),
            image: "w_1".into(),
            source: "w/w_1.JPEG".into(),
            activation: 1.5,
            mask: mask_path("w", 7, "w_1", "png"),
            sha256: "00".into(),
        };
        let text = index_text(&[r.clone(), r.clone()]);
        assert_eq!(parse_index("i", &text).unwrap(), vec![r.clone(), r]);
        let e = parse_index("index.jsonl", &(text.clone() + "{oops\n")).unwrap_err().to_string();
        assert!(e.starts_with("index.jsonl, line 3"), "{e}");
        for (field, value) in
            [("mask", "/etc/shadow"), ("wnid", "../../../../tmp/x"), ("source", "a/../../b"), ("image", "a/b")]
        {
            let mut bad: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            bad[field] = value.into();
            let e = parse_index("index.jsonl", &bad.to_string()).unwrap_err().to_string();
            assert!(e.starts_with(&format!("index.jsonl, line 1: `{field}`")), "{e}");
        }
    }
}
