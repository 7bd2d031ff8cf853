//! Images between numpy and the engine.

use std::path::PathBuf;

use image::RgbImage;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use salient_engine::decode;

use crate::engine_err;

/// An image as Python gives it: a file (decoded as the CLI decodes it), or `[H, W, 3]` uint8
/// pixels (the package turns PIL images and other layouts into that).
#[derive(FromPyObject)]
pub enum ImageArg<'py> {
    Path(PathBuf),
    Pixels(PyReadonlyArray3<'py, u8>),
}

impl ImageArg<'_> {
    pub fn load(&self) -> PyResult<RgbImage> {
        match self {
            ImageArg::Path(p) => decode::load_image(p).map_err(engine_err),
            ImageArg::Pixels(a) => {
                let shape = a.shape();
                let (h, w) = (shape[0], shape[1]);
                if shape[2] != 3 {
                    return Err(pyo3::exceptions::PyValueError::new_err(format!(
                        "an image array must be [height, width, 3] RGB, not {shape:?}"
                    )));
                }
                decode::check_size(w as u32, h as u32).map_err(pyo3::exceptions::PyValueError::new_err)?;
                let pixels = a.as_array().iter().copied().collect();
                Ok(RgbImage::from_raw(w as u32, h as u32, pixels).expect("sized from the array"))
            }
        }
    }
}

/// `[H, W, 3]` uint8.
pub fn rgb_array<'py>(py: Python<'py>, img: &RgbImage) -> PyResult<Bound<'py, PyAny>> {
    let (w, h) = img.dimensions();
    Ok(PyArray1::from_slice(py, img.as_raw()).reshape([h as usize, w as usize, 3])?.into_any())
}

/// `[H, W]` float32.
pub fn gray_array<'py>(py: Python<'py>, values: Vec<f32>, side: usize) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, values).reshape([side, side])?.into_any())
}

/// A `(resize, crop)` view from Python, checked as a stored view is.
pub fn view_arg(view: (u32, u32)) -> PyResult<salient_engine::preprocess::View> {
    salient_engine::preprocess::View::from_text(&format!("{},{}", view.0, view.1)).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "view {view:?}: expected (resize, crop) with 16 ≤ crop ≤ resize, e.g. (256, 224)"
        ))
    })
}
