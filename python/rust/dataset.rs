//! `salient.Dataset`: the masks of a `salient build` output or of the paper's released Salient
//! ImageNet, one item per (image, feature) pair.

use std::path::PathBuf;

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use salient_engine::annotations::Bounds;
use salient_engine::preprocess::View;
use salient_engine::{decode, fsutil, imagenet};
use salient_pipeline::masks::MaskSet;

use crate::convert::{gray_array, rgb_array};
use crate::to_py;

/// A Salient dataset: `dataset[i]` is a dict with the image's view (`image`, `[crop, crop, 3]`
/// uint8), the feature's soft mask on it (`mask`, `[crop, crop]` float32 in [0, 1]), `class`,
/// `wnid`, `class_name`, `feature`, `rank`, `label` (`"core"` or `"spurious"`), `name` and
/// `source` (the image file). `len()` and indexing make it a map-style
/// `torch.utils.data.Dataset` without importing torch.
#[pyclass(frozen, module = "salient", sequence)]
pub struct Dataset {
    pub set: MaskSet,
    /// The images root (ImageNet layout), confining the sources the index names; without it,
    /// items hold masks only.
    pub images: Option<(PathBuf, fsutil::Root)>,
    pub view: View,
    /// `(class, feature position, image position)` of each item.
    items: Vec<(usize, usize, usize)>,
}

#[pymethods]
impl Dataset {
    /// `path`: a `salient build` output, or the paper's release (then `annotations` gives the
    /// labels: its MTurk CSV or a Salient labels CSV). `images`: the images, ImageNet layout
    /// (without them, items hold masks only: the release ships no photos).
    /// `view`: `(resize, crop)` of the classifier the masks are for (ImageNet's 256, 224).
    #[new]
    #[pyo3(signature = (path, images=None, annotations=None, view=(256, 224)))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        images: Option<PathBuf>,
        annotations: Option<PathBuf>,
        view: (u32, u32),
    ) -> PyResult<Self> {
        let view = crate::convert::view_arg(view)?;
        let images = match images {
            Some(p) if !p.is_dir() => {
                return Err(PyValueError::new_err(format!("{}: not a folder of images", fsutil::shown(&p))));
            }
            Some(p) => Some((p.clone(), fsutil::Root::new(&p).map_err(crate::engine_err)?)),
            None => None,
        };
        let bounds = Bounds { classes: 1000, features: usize::MAX };
        let set = py.detach(|| MaskSet::open(&path, annotations.as_deref(), bounds)).map_err(to_py)?;
        let mut items = Vec::new();
        for (&class, c) in &set.classes {
            for (fi, f) in c.features.iter().enumerate() {
                items.extend((0..f.images.len()).map(|ii| (class, fi, ii)));
            }
        }
        Ok(Dataset { set, images, view, items })
    }

    fn __len__(&self) -> usize {
        self.items.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "salient.Dataset({:?}: {} masks, {} classes)",
            self.set.root.display().to_string(),
            self.items.len(),
            self.set.classes.len()
        )
    }

    /// `(resize, crop)`: the view its images are cut to (the masks' size is the crop).
    #[getter]
    fn view(&self) -> (u32, u32) {
        (self.view.resize, self.view.crop)
    }

    /// The classes it holds, as `(class, wnid)`.
    #[getter]
    fn classes(&self) -> Vec<(usize, String)> {
        self.set.classes.iter().map(|(c, m)| (*c, m.wnid.clone())).collect()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyDict>> {
        let n = self.items.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(PyIndexError::new_err(format!("index {index} is out of range for {n} masks")));
        }
        let (class, fi, ii) = self.items[i as usize];
        let c = &self.set.classes[&class];
        let f = &c.features[fi];
        let r = &f.images[ii];
        let side = self.view.crop;
        let (view, mask) = py
            .detach(|| {
                let view = match &self.images {
                    Some((_, root)) => {
                        let path = root.join(&r.source, "the dataset's index")?;
                        Some(self.view.apply(&decode::load_image(&path)?))
                    }
                    None => None,
                };
                Ok::<_, salient_pipeline::Error>((view, self.set.load_mask(r, side)?))
            })
            .map_err(to_py)?;
        let d = PyDict::new(py);
        if let Some(view) = &view {
            d.set_item("image", rgb_array(py, view)?)?;
        }
        d.set_item(
            "mask",
            gray_array(py, mask.as_raw().iter().map(|v| f32::from(*v) / 255.0).collect(), side as usize)?,
        )?;
        d.set_item("class", class)?;
        d.set_item("wnid", &c.wnid)?;
        d.set_item("class_name", class_name(class, &c.wnid))?;
        d.set_item("feature", f.feature)?;
        d.set_item("rank", f.rank)?;
        d.set_item("label", f.label.as_str())?;
        d.set_item("name", &r.name)?;
        d.set_item("source", &r.source)?;
        Ok(d)
    }
}

/// ImageNet's name when `wnid` is ImageNet's class `class`, else the folder name.
fn class_name(class: usize, wnid: &str) -> String {
    match imagenet::classes().get(class) {
        Some((w, name)) if *w == wnid => (*name).to_owned(),
        _ => wnid.to_owned(),
    }
}
