//! `noise_eval` for any Python callable: the pipeline's noise test, the same seeded noise and
//! the same report as `salient eval`.

use std::path::PathBuf;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use salient_pipeline::eval::{Classify, EvalOutput, EvalParams, Tables, Unit, evaluate};

use crate::dataset::Dataset;
use crate::progress::Bar;
use crate::to_py;

/// A Python callable from `[N, 3, S, S]` float32 images in [0, 1] to `[N, classes]` float32
/// logits (the package's wrapper converts torch tensors and other arrays). The first Python
/// exception it raises is kept, to be raised again as itself.
pub(crate) struct PyClassifier {
    callable: Py<PyAny>,
    raised: Option<PyErr>,
}

impl Classify for PyClassifier {
    fn logits(&mut self, images: Vec<f32>, n: usize, side: usize) -> salient_pipeline::Result<Vec<f32>> {
        let called = Python::attach(|py| -> PyResult<Vec<f32>> {
            let x = PyArray1::from_vec(py, images).reshape([n, 3, side, side])?;
            let out = self.callable.bind(py).call1((x,))?;
            let logits: PyReadonlyArray2<f32> = out.extract().map_err(|_| {
                PyValueError::new_err(format!(
                    "it must return float32 logits [{n}, classes], not {}",
                    out.get_type().name().map(|t| t.to_string()).unwrap_or_default()
                ))
            })?;
            if logits.shape()[0] != n {
                return Err(PyValueError::new_err(format!(
                    "it returned logits for {} images, given {n}",
                    logits.shape()[0]
                )));
            }
            Ok(logits.as_array().iter().copied().collect())
        });
        called.map_err(|e| {
            let message = Python::attach(|py| e.value(py).to_string());
            self.raised.get_or_insert(e);
            salient_pipeline::Error::Classifier(message)
        })
    }
}

/// See `salient.noise_eval` (python/salient/__init__.py) for the parameters.
#[pyfunction]
#[pyo3(signature = (classify, dataset, sigma, trials, seed, batch_size, mask_quirk, view, class_names, out, resume, model_id, progress))]
#[allow(clippy::too_many_arguments)]
pub fn noise_eval<'py>(
    py: Python<'py>,
    classify: Py<PyAny>,
    dataset: &Dataset,
    sigma: f32,
    trials: u32,
    seed: u64,
    batch_size: usize,
    mask_quirk: bool,
    view: (u32, u32),
    class_names: Option<Vec<String>>,
    out: Option<PathBuf>,
    resume: bool,
    model_id: String,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let view = crate::convert::view_arg(view)?;
    if view != dataset.view {
        return Err(PyValueError::new_err(format!(
            "the classifier sees {}×{} views of {} px images, but the dataset was opened with view=({}, {})",
            view.crop, view.crop, view.resize, dataset.view.resize, dataset.view.crop
        )));
    }
    let Some((images, _)) = &dataset.images else {
        return Err(PyValueError::new_err(
            "the noise test needs the images: open the dataset with images=<ImageNet-layout folder>",
        ));
    };
    let params = EvalParams { sigma, trials, seed, mask_quirk, batch_size, view };
    let mut classifier = PyClassifier { callable: classify, raised: None };
    let output = out.as_deref().map(|dir| EvalOutput { dir, resume, model: model_id.clone(), annotations: None });
    let bar = Bar::new(progress);
    let result = py.detach(|| {
        evaluate(&dataset.set, images, &mut classifier, &params, class_names.as_deref(), output.as_ref(), &bar)
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => return Err(classifier.raised.take().unwrap_or_else(|| to_py(e))),
    };
    // The summary travels as summary.json's text (the package parses it): one layout, the CLI's.
    let d = PyDict::new(py);
    d.set_item("summary_json", report.summary_json())?;
    let table = |header: &[&str], rows: &[Vec<String>]| -> PyResult<Vec<Bound<'py, PyDict>>> {
        rows.iter()
            .map(|row| {
                let r = PyDict::new(py);
                for (k, v) in header.iter().zip(row) {
                    match v.parse::<f64>() {
                        Ok(x) if *k != "class_name" && *k != "feature_label" => {
                            if k.ends_with("index") || k.ends_with("rank") {
                                r.set_item(*k, x as i64)?
                            } else {
                                r.set_item(*k, x)?
                            }
                        }
                        _ => r.set_item(*k, v)?,
                    }
                }
                Ok(r)
            })
            .collect()
    };
    let t = &report.tables;
    let tables = PyDict::new(py);
    tables.set_item("noise_in_core_features", table(&Tables::CORE_NOISE, &t.core_noise)?)?;
    tables.set_item("noise_in_spurious_features", table(&Tables::SPURIOUS_NOISE, &t.spurious_noise)?)?;
    tables.set_item("noise_in_single_feature", table(&Tables::SINGLE, &t.single)?)?;
    tables.set_item("rcs_per_class", table(&Tables::RCS, &t.rcs)?)?;
    tables.set_item("rcs_per_class_paper", table(&Tables::RCS_PAPER, &t.rcs_paper)?)?;
    d.set_item("tables", tables)?;
    let unit = |u: &Unit| -> PyResult<Bound<'py, PyDict>> {
        let x = PyDict::new(py);
        x.set_item("images", u.images)?;
        x.set_item("clean", u.clean)?;
        x.set_item("noisy", u.noisy.clone())?;
        Ok(x)
    };
    let classes = report
        .results
        .iter()
        .map(|r| {
            let c = PyDict::new(py);
            c.set_item("class", r.class)?;
            c.set_item("core_noise", r.core_noise.as_ref().map(unit).transpose()?)?;
            c.set_item("spurious_noise", r.spurious_noise.as_ref().map(unit).transpose()?)?;
            if let Some(g) = &r.core_vs_rest {
                let x = PyDict::new(py);
                x.set_item("images", g.images)?;
                x.set_item("clean", g.clean)?;
                x.set_item("noise_on_core", g.noise_on_core.clone())?;
                x.set_item("noise_on_rest", g.noise_on_rest.clone())?;
                x.set_item("core_accuracy", g.core_accuracy())?;
                x.set_item("spurious_accuracy", g.spurious_accuracy())?;
                c.set_item("core_vs_rest", x)?;
            }
            c.set_item("skipped", r.skipped.iter().map(|s| (s.image.clone(), s.reason.clone())).collect::<Vec<_>>())?;
            Ok(c)
        })
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("classes", classes)?;
    Ok(d)
}

/// See `salient.spuriosity_gap` (python/salient/__init__.py) for the parameters. Returns
/// summary.json's text.
#[pyfunction]
#[pyo3(signature = (classify, run, annotations, out, k, view, batch_size, model_id, progress))]
#[allow(clippy::too_many_arguments)]
pub fn spuriosity_gap(
    py: Python<'_>,
    classify: Py<PyAny>,
    run: PathBuf,
    annotations: PathBuf,
    out: PathBuf,
    k: usize,
    view: (u32, u32),
    batch_size: usize,
    model_id: String,
    progress: bool,
) -> PyResult<String> {
    let view = crate::convert::view_arg(view)?;
    let params = salient_pipeline::spuriosity::SpuriosityParams {
        run,
        annotations,
        k,
        out,
        model: Some(model_id),
        view,
        batch_size,
    };
    let mut classifier = PyClassifier { callable: classify, raised: None };
    let bar = Bar::new(progress);
    let result = py.detach(|| salient_pipeline::spuriosity::spuriosity(&params, Some(&mut classifier), &bar));
    match result {
        Ok(summary) => Ok(summary.text()),
        Err(e) => Err(classifier.raised.take().unwrap_or_else(|| to_py(e))),
    }
}
