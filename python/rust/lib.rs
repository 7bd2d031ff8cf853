//! `salient._salient`: the engine and the pipeline's noise test for Python. The `salient`
//! package (python/salient/) wraps it: PIL images and torch tensors are converted there, so
//! this module sees numpy arrays and paths only.

mod convert;
mod dataset;
mod model;
mod noise;
mod progress;

use pyo3::prelude::*;

pyo3::create_exception!(_salient, SalientError, pyo3::exceptions::PyException, "A Salient operation failed.");

/// A pipeline error as a Python exception with the same message: `ValueError` for arguments
/// that do not fit, `SalientError` for data and files.
pub(crate) fn to_py(e: salient_pipeline::Error) -> PyErr {
    let message = salient_engine::fsutil::escape(&e.to_string());
    match e {
        salient_pipeline::Error::Usage(_) => pyo3::exceptions::PyValueError::new_err(message),
        _ => SalientError::new_err(message),
    }
}

pub(crate) fn engine_err(e: salient_engine::Error) -> PyErr {
    to_py(e.into())
}

#[pymodule]
fn _salient(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SalientError", m.py().get_type::<SalientError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Model>()?;
    m.add_class::<dataset::Dataset>()?;
    m.add_function(wrap_pyfunction!(noise::noise_eval, m)?)?;
    m.add_function(wrap_pyfunction!(noise::spuriosity_gap, m)?)?;
    Ok(())
}
