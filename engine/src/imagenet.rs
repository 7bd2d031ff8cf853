//! The ImageNet-1k class list: index, WordNet id and name.

use std::sync::OnceLock;

const TSV: &str = include_str!("../data/imagenet_classes.tsv");

/// `(wnid, name)` for class indices 0..1000 (sorted-wnid order, as ImageFolder assigns them).
pub fn classes() -> &'static [(&'static str, &'static str)] {
    static CLASSES: OnceLock<Vec<(&str, &str)>> = OnceLock::new();
    CLASSES.get_or_init(|| TSV.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('\t')).collect())
}

/// The ImageNet class index of a WordNet id (`n01440764` → 0).
pub fn index_of(wnid: &str) -> Option<usize> {
    classes().binary_search_by(|(w, _)| w.cmp(&wnid)).ok()
}

/// Display name of class `index` for a model with `num_classes` outputs: ImageNet's names for
/// 1000-way models, `class <index>` otherwise.
pub fn class_name(num_classes: usize, index: usize) -> String {
    match classes().get(index) {
        Some((_, name)) if num_classes == 1000 => (*name).to_owned(),
        _ => format!("class {index}"),
    }
}

/// `sulphur butterfly (325)` for ImageNet models, `class 3` otherwise.
pub fn class_label(num_classes: usize, index: usize) -> String {
    let name = class_name(num_classes, index);
    if num_classes == 1000 { format!("{name} ({index})") } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousand_sorted_classes() {
        assert_eq!(classes().len(), 1000);
        assert_eq!(classes()[0], ("n01440764", "tench"));
        assert_eq!(index_of("n02281406"), Some(325));
        assert_eq!(class_name(1000, 325), "sulphur butterfly");
        assert_eq!(class_name(10, 3), "class 3");
    }
}
