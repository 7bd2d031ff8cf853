//! `salient.Model`: a checkpoint loaded as the CLI loads it; predict, explain, mask, attack.

use std::path::PathBuf;
use std::sync::Mutex;

use image::RgbImage;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray4, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use salient_engine::attack::AttackOptions;
use salient_engine::engine::{block_on, to_images};
use salient_engine::importance::top_k;
use salient_engine::{Backend, Engine};
use salient_pipeline::eval::{Classify, EngineClassifier};

use crate::convert::{ImageArg, gray_array, rgb_array};
use crate::{engine_err, to_py};

/// A classifier of the ResNet family, loaded from any checkpoint format the CLI reads.
///
/// `Model()` loads what `salient` would: `$SALIENT_WEIGHTS`, else the file `salient fetch-model`
/// saved, else the built-in model of the synthetic benchmark (with a warning).
#[pyclass(frozen, subclass, module = "salient")]
pub struct Model {
    engine: Mutex<Engine>,
    /// SHA-256 of the weights.
    #[pyo3(get)]
    fingerprint: String,
    #[pyo3(get)]
    source: String,
    #[pyo3(get)]
    class_names: Vec<String>,
    /// `(resize, crop)`: the view of an image the model sees.
    #[pyo3(get)]
    view: (u32, u32),
    #[pyo3(get)]
    num_features: usize,
}

impl Model {
    pub fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn views(&self, py: Python<'_>, images: &[ImageArg<'_>]) -> PyResult<Vec<RgbImage>> {
        let view = self.engine().view;
        let loaded = images.iter().map(ImageArg::load).collect::<PyResult<Vec<_>>>()?;
        Ok(py.detach(|| loaded.iter().map(|img| view.apply(img)).collect()))
    }

    fn check_feature(&self, feature: usize) -> PyResult<()> {
        if feature >= self.num_features {
            return Err(PyValueError::new_err(format!(
                "feature {feature} does not exist: this model has {} features (0–{})",
                self.num_features,
                self.num_features - 1
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (weights=None, backend="auto"))]
    fn new(py: Python<'_>, weights: Option<PathBuf>, backend: &str) -> PyResult<Self> {
        let weights =
            weights.or_else(|| std::env::var_os("SALIENT_WEIGHTS").filter(|v| !v.is_empty()).map(PathBuf::from));
        let backend: Backend =
            backend.parse().map_err(|e: salient_engine::Error| PyValueError::new_err(e.to_string()))?;
        let (engine, fingerprint) = py
            .detach(|| {
                let engine = salient_pipeline::model::load(weights.as_deref(), backend)?;
                let fingerprint = salient_pipeline::model::fingerprint(weights.as_deref())?;
                Ok::<_, salient_pipeline::Error>((engine, fingerprint))
            })
            .map_err(to_py)?;
        Ok(Model {
            fingerprint,
            source: engine.source.clone(),
            class_names: engine.class_names.clone(),
            view: (engine.view.resize, engine.view.crop),
            num_features: engine.config.feature_dim(),
            engine: Mutex::new(engine),
        })
    }

    fn __repr__(&self) -> String {
        format!("salient.Model({:?}, {} classes)", self.source, self.class_names.len())
    }

    /// The view of each image the model sees (Resize then CenterCrop, as Pillow computes them):
    /// `[crop, crop, 3]` uint8 arrays.
    fn view_of<'py>(&self, py: Python<'py>, images: Vec<ImageArg<'py>>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.views(py, &images)?.iter().map(|v| rgb_array(py, v)).collect()
    }

    /// Logits `[N, classes]` (float32) of `images`, `[N, 3, crop, crop]` float32 in [0, 1]: the
    /// form `noise_eval` hands a classifier.
    fn classify<'py>(&self, py: Python<'py>, images: PyReadonlyArray4<'py, f32>) -> PyResult<Bound<'py, PyAny>> {
        let shape = images.shape().to_vec();
        let side = self.view.1 as usize;
        if shape[1] != 3 || shape[2] != side || shape[3] != side {
            return Err(PyValueError::new_err(format!(
                "images must be [N, 3, {side}, {side}] (this model's view), not {shape:?}"
            )));
        }
        let n = shape[0];
        let data: Vec<f32> = images.as_array().iter().copied().collect();
        let logits = py
            .detach(|| if n == 0 { Ok(Vec::new()) } else { EngineClassifier(&self.engine()).logits(data, n, side) })
            .map_err(to_py)?;
        let classes = self.class_names.len();
        Ok(PyArray1::from_vec(py, logits).reshape([n, classes])?.into_any())
    }

    /// The `top` most probable classes of each image, as `(class, name, probability)`.
    #[pyo3(signature = (images, top=5))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        images: Vec<ImageArg<'py>>,
        top: usize,
    ) -> PyResult<Vec<Vec<(usize, String, f32)>>> {
        let views = self.views(py, &images)?;
        let outputs = py.detach(|| self.engine().infer(&views, false)).map_err(engine_err)?;
        Ok(outputs
            .iter()
            .map(|o| o.top(top).into_iter().map(|(c, p)| (c, self.class_names[c].clone(), p)).collect())
            .collect())
    }

    /// Which neural features drive the prediction of each image (or of `target`), and where they
    /// look: a dict per image with `class`, `name`, `probability` and `features`, the `top`
    /// features by r·w, each with `feature`, `importance`, `activation` and `mask` (`[crop,
    /// crop]` float32 in [0, 1], the method's soft mask).
    #[pyo3(signature = (images, top=5, target=None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        images: Vec<ImageArg<'py>>,
        top: usize,
        target: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, pyo3::types::PyDict>>> {
        use pyo3::types::PyDict;
        if let Some(t) = target
            && t >= self.class_names.len()
        {
            return Err(PyValueError::new_err(format!(
                "class {t} does not exist: this model has {} classes",
                self.class_names.len()
            )));
        }
        let views = self.views(py, &images)?;
        let side = self.view.1 as usize;
        let explained = py
            .detach(|| {
                let engine = self.engine();
                let outputs = engine.infer(&views, true)?;
                Ok::<_, salient_engine::Error>(
                    outputs
                        .into_iter()
                        .map(|o| {
                            let class = target.unwrap_or(o.top1().0);
                            let probability = salient_engine::importance::softmax(&o.logits)[class];
                            let scores = engine.contributions(&o, class);
                            let maps = o.maps.as_ref().expect("maps were asked for");
                            let features: Vec<(usize, f32, f32, Vec<f32>)> = top_k(&scores, top)
                                .into_iter()
                                .map(|(j, importance)| (j, importance, o.features[j], maps.soft_mask(&[j], side)))
                                .collect();
                            (class, probability, features)
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .map_err(engine_err)?;
        explained
            .into_iter()
            .map(|(class, probability, features)| {
                let d = PyDict::new(py);
                d.set_item("class", class)?;
                d.set_item("name", &self.class_names[class])?;
                d.set_item("probability", probability)?;
                let fs = features
                    .into_iter()
                    .map(|(feature, importance, activation, mask)| {
                        let f = PyDict::new(py);
                        f.set_item("feature", feature)?;
                        f.set_item("importance", importance)?;
                        f.set_item("activation", activation)?;
                        f.set_item("mask", gray_array(py, mask, side)?)?;
                        Ok(f)
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                d.set_item("features", fs)?;
                Ok(d)
            })
            .collect()
    }

    /// The soft mask of `feature` (or of several: their pixelwise max) on each image:
    /// `[crop, crop]` float32 in [0, 1].
    fn mask<'py>(
        &self,
        py: Python<'py>,
        images: Vec<ImageArg<'py>>,
        features: Vec<usize>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        for &f in &features {
            self.check_feature(f)?;
        }
        let views = self.views(py, &images)?;
        let side = self.view.1 as usize;
        let masks = py
            .detach(|| {
                let outputs = self.engine().infer(&views, true)?;
                Ok::<_, salient_engine::Error>(
                    outputs
                        .iter()
                        .map(|o| o.maps.as_ref().expect("asked for").soft_mask(&features, side))
                        .collect::<Vec<_>>(),
                )
            })
            .map_err(engine_err)?;
        masks.into_iter().map(|m| gray_array(py, m, side)).collect()
    }

    /// The feature attack: gradient ascent on `feature` from each image's view (`steps` steps of
    /// L2 length `step_size`, the method's 100 and 10 by default): per image a dict with `image`
    /// (`[crop, crop, 3]` uint8) and the feature's value `before` and `after`.
    #[pyo3(signature = (images, feature, steps=100, step_size=10.0))]
    fn attack<'py>(
        &self,
        py: Python<'py>,
        images: Vec<ImageArg<'py>>,
        feature: usize,
        steps: usize,
        step_size: f32,
    ) -> PyResult<Vec<Bound<'py, pyo3::types::PyDict>>> {
        self.check_feature(feature)?;
        if !step_size.is_finite() || step_size < 0.0 {
            return Err(PyValueError::new_err(format!("step_size must be a non-negative number, not {step_size}")));
        }
        let views = self.views(py, &images)?;
        let (attacked, before, after) = py
            .detach(|| {
                let engine = self.engine();
                let a = engine.attack(engine.batch(&views), feature, AttackOptions { steps, step_size }, |_| {});
                let before = block_on(salient_engine::engine::host(a.before))?;
                let after = block_on(salient_engine::engine::host(a.after))?;
                Ok::<_, salient_engine::Error>((block_on(to_images(a.images))?, before, after))
            })
            .map_err(engine_err)?;
        attacked
            .iter()
            .zip(before.into_iter().zip(after))
            .map(|(img, (before, after))| {
                let d = pyo3::types::PyDict::new(py);
                d.set_item("image", rgb_array(py, img)?)?;
                d.set_item("before", before)?;
                d.set_item("after", after)?;
                Ok(d)
            })
            .collect()
    }
}
